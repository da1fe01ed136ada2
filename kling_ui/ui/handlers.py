"""The page's events, gathered: ``Handlers`` is every section's events in one object, as
Gradio calls them and as the tests do (plain values in, plain values out).

Each section's module holds its layout, its events' class and its ``listen`` (which wires
them): ``form`` (``FormEvents``), ``progress`` (``JobEvents``, on ``watching``'s
``Watching``), ``gallery`` (``GalleryEvents``), ``batch`` (``BatchEvents``), ``chain``
(``ChainEvents``), ``copy_code`` (``CodeEvents``), ``prices`` (``PriceEvents``),
``models`` (``ModelEvents``: the models for programs), ``studio`` (``StudioEvents``: the
model picker and a model's form), ``from_video`` (``FromVideoEvents``: settings read
from an MP4 the app made), ``compare`` (``CompareEvents``: the compare board and the
exports), ``sharing`` (``ShareEvents``: share links and Download all),
``viewer`` (``ViewerEvents``: the large viewer). What they
all need (the visitor, the service, the low-balance question, the app's address) is
``base.PageBase``.

Two kinds of job events: the API's (``generate``, ``resume``: exactly the outputs programs
know, the generation id, the status text and the video) and the page's (``*_page``: the same
stream with the progress card as a fourth output). Both run the same code.

Imports the sections' events classes; re-exports ``copy_code.ADOPTED`` (the tests').
"""

from __future__ import annotations

from .batch import BatchEvents
from .chain import ChainEvents
from .compare import CompareEvents
from .copy_code import ADOPTED, CodeEvents
from .form import FormEvents
from .from_video import FromVideoEvents
from .helper import HelperEvents
from .models import ModelEvents
from .prices import PriceEvents
from .progress import JobEvents
from .sharing import ShareEvents
from .studio import StudioEvents
from .viewer import ViewerEvents

__all__ = ["ADOPTED", "Handlers"]


class Handlers(
    FormEvents,
    JobEvents,
    BatchEvents,
    ChainEvents,
    CodeEvents,
    PriceEvents,
    ModelEvents,
    StudioEvents,
    HelperEvents,
    FromVideoEvents,
    CompareEvents,
    ShareEvents,
    ViewerEvents,
):
    """The page's event handlers, every section's (``BatchEvents`` brings the gallery's).

    ``owner_token`` is the browser's own random token (kept in its BrowserState, handed to
    each event from the session, never from the request): jobs are recorded as made by it,
    and a browser's history, Stop and batch table show only its own jobs. A program (no
    token) is known by its address. ``request`` is Gradio's, for the caller's address and
    the app's own address (the videos' links)."""
