"""``python -m kling_ui.simulator``: serve the simulator until Ctrl-C (see ``serve.main``)."""

from . import main

main()
