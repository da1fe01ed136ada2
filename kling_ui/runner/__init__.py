"""The job runner, one per app process: ``from kling_ui.runner import Runner, Backend``.

``runner`` holds ``Runner`` (what the service asks, and the scheduling), ``leases`` one
runner a job across processes, ``steps`` a job's steps at the vendor (create, lookup,
polling, download, ending it). Imports its own modules only.
"""

from .leases import Wait
from .runner import Runner, wait_on
from .steps import Backend, video_filename, video_path_for

__all__ = ["Backend", "Runner", "Wait", "video_filename", "video_path_for", "wait_on"]
