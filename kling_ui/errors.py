"""The failures kling-ui knows about, and the words a person reads for each.

Every exception the package raises on purpose is a ``KlingUIError``; the page shows
``err.user_message`` and nothing else. The tree, shallow so a caller can catch at the
level it cares about. Each branch says what is true of the job it was raised for::

    KlingUIError
    ├── InputError                 bad image, prompt or setting: nothing was sent
    │   └── RatioOutOfRange        an image too wide or too tall: crop or pad would fit it
    ├── APIStatusError             the API answered with an error: no job was made by it
    │   ├── BadRequestError        400: the API rejected a field
    │   ├── AuthenticationError    401: missing or wrong key
    │   ├── OutOfCreditsError      403: top up the account
    │   ├── NotFoundError          404: wrong path, or unknown generation id
    │   ├── RateLimitError         429: too many requests (retried for polls)
    │   └── ServerError            5xx on a poll, 503 on a create: the API or its upstream failed
    ├── APIConnectionError         the API could not be reached: nothing was accepted
    ├── OutcomeUnknown             a create left us and we can't tell whether it was accepted
    ├── GenerationFailed           the job ended in ``error`` (nothing is charged)
    ├── GenerationTimeout          we stopped watching; the job may still finish
    └── DownloadError              the finished video could not be fetched or is not an MP4

Messages never contain the API key: they are built from our own words, the vendor's
``message`` and its request id, and ``redact`` scrubs any key that slips into vendor text.
"""

from __future__ import annotations

import re

# A Bearer token or an AIML-style key in free text; used to scrub vendor messages.
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._\-~+/=]{6,}"),
    re.compile(r"(?i)((?:key|token|authorization|secret)\"?\s*[:=]\s*\"?)[^\s\",}]{6,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),
]


def redact(text: str, *secrets: str | None) -> str:
    """Remove the given secrets, and anything shaped like a bearer token, from text.

    Without regard to case: a vendor that upper- or lower-cases what it echoes (a status
    word, a header name's value) still echoes the key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = re.sub(re.escape(secret), "[redacted]", text, flags=re.IGNORECASE)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "[redacted]", text)
    return text


class KlingUIError(Exception):
    """Base of every error kling-ui raises on purpose.

    ``user_message`` is the plain-text sentence for a person: what happened and what
    to do next. ``vendor_message`` and ``request_id`` are what the API said, when it said
    anything; they are shown beside our words, never instead of them.
    """

    default_message = "Something went wrong."

    def __init__(
        self,
        user_message: str | None = None,
        *,
        vendor_message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.base_message = user_message or self.default_message
        self.vendor_message = redact(vendor_message) if vendor_message else None
        self.request_id = request_id
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        parts = [self.base_message]
        if self.vendor_message:
            parts.append(f"The API said: {self.vendor_message}")
        if self.request_id:
            parts.append(f"(request id {self.request_id})")
        return " ".join(parts)


class InputError(KlingUIError):
    default_message = "That input can't be used."


class RatioOutOfRange(InputError):
    """An image outside the allowed aspect ratios, which a crop or a pad would fit. Where the
    choice is made differs (the page's Crop and Pad, the command line's ``--fit``), so the
    facts are kept apart from the remedy, and each surface names its own."""

    remedy = "Choose crop or pad to fit it, or use another image."

    def __init__(self, facts: str, remedy: str | None = None) -> None:
        self.facts = facts
        super().__init__(f"{facts} {remedy or self.remedy}")


class LimitReached(KlingUIError):
    """One visitor's share of this server is used up (nothing was sent)."""

    default_message = "You have as many jobs running here as one person may. Wait for one to end."


class APIStatusError(KlingUIError):
    default_message = "The API returned an error."


class BadRequestError(APIStatusError):
    default_message = "The API rejected the request. Check the fields below and try again."


class AuthenticationError(APIStatusError):
    default_message = (
        "The API key was missing or not accepted. Enter a valid AIML API key and try again."
    )


class OutOfCreditsError(APIStatusError):
    default_message = (
        "Your AIML API account is out of credits. Top up your balance, then try again."
    )


class NotFoundError(APIStatusError):
    default_message = "The API does not know that address or generation id. Check the id."


class RateLimitError(APIStatusError):
    default_message = "The API is limiting requests right now. Wait a minute and try again."


class ServerError(APIStatusError):
    default_message = (
        "The API had a server problem (it may be under maintenance). Try again in a few minutes."
    )


class APIConnectionError(KlingUIError):
    default_message = (
        "Could not reach the API. Check your internet connection and try again; "
        "nothing was submitted."
    )


class OutcomeUnknown(KlingUIError):
    """A create whose request left us, without an answer that says what became of it.

    Built from what happened (``cause``); the rest of the sentence is always the same, so a
    person is told the one safe next step in the same words wherever it arises.
    """

    CONSEQUENCE = (
        "so we can't tell whether the generation was accepted. Check your AIML API dashboard "
        "before you try again, so you don't pay twice."
    )

    def __init__(
        self, cause: str = "The connection broke after the request was sent", **kwargs: str | None
    ) -> None:
        super().__init__(f"{cause}, {self.CONSEQUENCE}", **kwargs)


class GenerationFailed(KlingUIError):
    default_message = (
        "The generation failed at the vendor. Failed generations are not charged; "
        "adjust the prompt or image and try again."
    )


class GenerationTimeout(KlingUIError):
    default_message = (
        "Stopped watching: the job took longer than expected. It may still finish at the "
        "vendor; resume it from the history or by its id later."
    )


class DownloadError(KlingUIError):
    default_message = (
        "The video was generated but could not be downloaded. Resume the job to try the "
        "download again."
    )
