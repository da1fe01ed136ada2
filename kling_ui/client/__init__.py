"""The only package that speaks HTTP to the vendor, one module a job:

    api.py         the API's calls: create, poll, usage log (``AIMLClient``), the price
                   catalogue and the balance (``read_catalogue``, ``read_balance``), and
                   ``download_video``
    transport.py   the sessions' retry policy (``urllib3`` ``Retry``; the create repeated only
                   when provably not accepted) and the one place a status becomes our error
    parsers.py     one parser per vendor answer: its JSON in, our typed value out
    video_host.py  the video host: public addresses only, pinned, no credentials, one
                   deadline for the whole download (``VideoHost`` and its watchdog)

Dependencies run api -> video_host -> transport -> parsers; ``from kling_ui.client import X``
is the way in for everyone else. Imports ``config``, ``errors``, ``files``, ``request`` and
``rules``; never gradio or Pillow.
"""

from .api import AIMLClient, Sessions, download_video, read_balance, read_catalogue
from .parsers import reported_charge
from .transport import HTTPSession, create_retry, poll_retry, quiet_session
from .video_host import TooLarge, TooSlow, VideoHost, _Deadline

__all__ = [
    "AIMLClient",
    "HTTPSession",
    "Sessions",
    "TooLarge",
    "TooSlow",
    "VideoHost",
    "_Deadline",
    "create_retry",
    "download_video",
    "poll_retry",
    "quiet_session",
    "read_balance",
    "read_catalogue",
    "reported_charge",
]
