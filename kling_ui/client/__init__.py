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

from .api import (
    BILLING_PATH,
    CATALOGUE_PATH,
    CLIENT_REQUEST_ID,
    LOGS_PATH,
    AIMLClient,
    APIResponse,
    CatalogueAnswer,
    Sessions,
    download_video,
    read_balance,
    read_catalogue,
)
from .parsers import Charge, LogsPage, reported_charge
from .transport import (
    USER_AGENT,
    CappedRetry,
    HTTPSession,
    create_retry,
    make_session,
    poll_retry,
    quiet_session,
)
from .video_host import (
    MAX_REDIRECTS,
    Resolve,
    TooLarge,
    TooSlow,
    VideoHost,
    _Deadline,
    check_video_address,
    system_resolve,
)

__all__ = [
    "BILLING_PATH",
    "CATALOGUE_PATH",
    "CLIENT_REQUEST_ID",
    "LOGS_PATH",
    "MAX_REDIRECTS",
    "USER_AGENT",
    "AIMLClient",
    "APIResponse",
    "CappedRetry",
    "CatalogueAnswer",
    "HTTPSession",
    "Charge",
    "LogsPage",
    "Resolve",
    "Sessions",
    "TooLarge",
    "TooSlow",
    "VideoHost",
    "_Deadline",
    "check_video_address",
    "create_retry",
    "download_video",
    "make_session",
    "poll_retry",
    "quiet_session",
    "read_balance",
    "read_catalogue",
    "reported_charge",
    "system_resolve",
]
