"""``python -m kling_ui``: the command line (``kling_ui/cli``)."""

from kling_ui.cli import main

raise SystemExit(main())
