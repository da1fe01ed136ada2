"""The only package that speaks HTTP to the vendor, one module a job:

    api.py         the API's calls: create, poll, usage log, chat (``AIMLClient``), the price
                   catalogue and the balance (``read_catalogue``, ``read_balance``), and
                   ``download_video``
    transport.py   the sessions' retry policy (``urllib3`` ``Retry``; the create repeated only
                   when provably not accepted) and the one place a status becomes our error
    models.py      the catalogue's video models and each one's schema (``read_video_models``,
                   ``read_model_document``: the API's own host only, no key)
    parsers.py     one parser per vendor answer: its JSON in, our typed value out
    video_host.py  the video host: public addresses only, pinned, no credentials, one
                   deadline for the whole download (``VideoHost`` and its watchdog)

Dependencies run api -> video_host -> transport -> parsers and api -> models -> parsers;
``from kling_ui.client import X`` is the way in for everyone else. Imports ``config``,
``errors``, ``files``, ``request`` and ``rules``; never gradio or Pillow.
"""

from .api import AIMLClient, Sessions, download_video, read_balance, read_catalogue
from .models import ModelsAnswer, read_chat_models, read_model_document, read_video_models
from .parsers import ChatAnswer, ChatModel, ListedModel, reported_charge
from .transport import HTTPSession, create_retry, poll_retry, quiet_session
from .video_host import TooLarge, TooSlow, VideoHost, _Deadline

__all__ = [
    "AIMLClient",
    "ChatAnswer",
    "ChatModel",
    "HTTPSession",
    "ListedModel",
    "ModelsAnswer",
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
    "read_chat_models",
    "read_model_document",
    "read_video_models",
    "reported_charge",
]
