"""What each field of a request must be before anything is sent: one parser per input.

Owns the rules of each field: the prompt and its limit, the negative prompt, the duration
(the page sends "5", programs 5), the audio switch, and the shape of a generation id. Each
rule raises ``InputError`` with words for a person, so nothing the vendor would reject ever
leaves us. The request itself (``request.Request``) is checked by these rules, field by
field, through its model's spec. Imports ``errors`` only.
"""

from __future__ import annotations

import re
import unicodedata

from . import errors

MAX_PROMPT_CHARS = 2500
DURATIONS = (5, 10)
# The vendor's ids: a uuid, then (usually) a colon and the model.
GENERATION_ID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(:[\w./-]{1,120})?"
)
# The words for a request without an image, wherever one is asked for (page, copy as code).
NO_IMAGE = "Add an image first: upload, paste or take a photo."
EXAMPLE_ID = "27f25c85-e9db-44e9-909a-0c3ceb35cdd9:klingai/video-v2-6-pro-image-to-video"


def _has_control_chars(text: str) -> bool:
    # C0/C1 control characters (NUL included) mean nothing in a prompt and break some
    # upstream JSON handling. Newlines and tabs are fine; so are format characters such as
    # the zero-width joiner in emoji sequences and right-to-left marks.
    return any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in text)


def _check_text(text: str, name: str, limit: int = MAX_PROMPT_CHARS) -> str:
    if any(unicodedata.category(ch) == "Cs" for ch in text):
        # A lone UTF-16 surrogate (from a broken paste or a program) can't be encoded: it
        # could be neither sent nor kept in the ledger.
        raise errors.InputError(
            f"The {name} contains a broken character (a lone surrogate, often left by a bad "
            "copy and paste). Retype that part and try again."
        )
    if _has_control_chars(text):
        raise errors.InputError(
            f"The {name} contains control characters (such as NUL). Remove them and try again."
        )
    if len(text) > limit:
        raise errors.InputError(
            f"The {name} is {len(text)} characters long; the limit is {limit}. "
            f"Shorten it by {len(text) - limit}."
        )
    return text


def check_prompt(prompt: object, limit: int = MAX_PROMPT_CHARS) -> str:
    """A prompt of at most ``limit`` characters (the model's own, where its schema says)."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise errors.InputError("Write a prompt describing the motion you want.")
    return _check_text(prompt, "prompt", limit)


def check_negative_prompt(text: object) -> str:
    if text is None:
        return ""
    if not isinstance(text, str):
        raise errors.InputError("The negative prompt must be text.")
    return _check_text(text, "negative prompt")


def parse_duration(value: object) -> int:
    """5 or 10 seconds, as the page ("5") or a program (5, 5.0) sends it; nothing else.

    ``True`` is an int in Python: it must not pass for 1 second."""
    if isinstance(value, str) and value.strip() in ("5", "10"):
        return int(value.strip())
    if isinstance(value, float) and value in (5.0, 10.0):
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in DURATIONS:
        raise errors.InputError(f"Duration must be 5 or 10 seconds, not {value!r}.")
    return value


def check_generate_audio(value: object) -> bool:
    if not isinstance(value, bool):
        raise errors.InputError('"Generate audio" must be on or off (true or false).')
    return value


def check_generation_id(value: object) -> str:
    """A pasted id, trimmed; refused when empty, overlong or holding control characters."""
    gid = value.strip() if isinstance(value, str) else ""
    if not gid:
        raise errors.InputError("Paste a generation id to resume.")
    if len(gid) > 200 or any(unicodedata.category(c)[0] in "CZ" and c != " " for c in gid):
        raise errors.InputError("That doesn't look like a generation id. Copy it again.")
    return gid


def check_new_generation_id(value: object) -> str:
    """An id we have no record of must look like the vendor's before we ask about it."""
    gid = check_generation_id(value)
    if not GENERATION_ID.fullmatch(gid):
        raise errors.InputError(
            f"That doesn't look like a generation id: they look like {EXAMPLE_ID}. "
            "Copy it again, whole."
        )
    return gid
