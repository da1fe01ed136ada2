"""``python -m kling_ui.simulator``: serve the simulator until Ctrl-C (``launch.main``)."""

from .launch import main

main()
