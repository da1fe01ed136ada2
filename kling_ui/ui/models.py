"""The video models, for programs: ``/models`` (each offered model's id, name, kind, image
inputs and price for its defaults) and ``/model_schema`` (one model's fields as their JSON
schema, its defaults and its image inputs), both the service's ``offer`` as
``Offer.listing`` and ``Offer.schema`` give them (the vendor's catalogue, kept, or the
bundled snapshot: ``source`` and ``note`` say which).

Imports ``errors`` and ``base``.
"""

from __future__ import annotations

from .. import errors
from .base import PageBase


class ModelEvents(PageBase):
    """The offered models and one model's schema."""

    def models(self) -> dict:
        """The video models this app can make videos with: for each, its id, name, kind
        (image-to-video, text-to-video or start-end), the images it takes (first_frame,
        last_frame) and its price with its defaults (null when not known). ``source`` says
        where the list came from ("catalogue": the vendor's; "snapshot": bundled with the
        app) and ``note`` why, when it is not the vendor's of now."""
        return self.service.offer().listing()

    def model_schema(self, model: str) -> dict:
        """One model's settings: ``schema`` (the JSON schema of the fields /generate's
        ``options`` may carry), ``defaults``, ``required``, the images it takes
        (``inputs``) and its kind. An unknown id answers ``error`` in words."""
        try:
            return self.service.offer().schema(model)
        except errors.KlingUIError as exc:
            return {"error": exc.user_message}
