"""The create request as code a person can run outside the app: cURL and Python (requests).

Owns the two snippets ("copy as code"). Each is built from a request (``Request``, checked
where it was made), so a snippet never holds what the page would refuse, and its body is
the request's own (``Request.body``), so the two can't drift apart. What a snippet must
never hold, and why:

- the API key: it is read from ``$AIMLAPI_KEY`` when the code runs, like the base URL from
  ``$AIMLAPI_BASE_URL`` (the app's own variables), so a pasted snippet leaks nothing;
- an image's Base64: megabytes in a clipboard help no one, so each image (the first frame,
  and the last where the model takes one; none for a model that makes video from text) is
  a file named at the top, encoded when the code runs;
- a person's text unquoted: it is JSON-encoded, then shell-quoted (or written as a Python
  literal), so quotes, ``$HOME``, backticks, backslashes and newlines arrive byte for byte.
  Characters that don't print (bidi marks, zero-width joiners) are written as escapes, so
  what the code does is what it shows.

Ours keeps its header; another model's names it. Imports ``config``, ``request``, ``rules``
and ``errors`` only: no gradio, no Pillow, no HTTP.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import PurePath
from typing import Any

from . import errors
from .config import CREATE_PATH, DEFAULT_BASE_URL
from .request import KLING, Request, spec_of
from .rules import NO_IMAGE

# The types the page takes, by the name's ending: the data URI must say which it is.
MIME_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
}
# What a job's images are called in its snippet: the page keeps the JPEGs it sent.
JOB_IMAGE = "image.jpg"
JOB_LAST_FRAME = "last-frame.jpg"
# Each image role's variable in the code (its file), and its data URI's in Python.
VARIABLES = {"image": ("IMAGE", "image_url"), "last_frame": ("LAST_FRAME", "last_frame_url")}
# A job id is named in a comment only if it can't end the comment (no newline, no quote).
_SAFE_ID = re.compile(r"[\w.:/-]{1,200}")
# The address, from the same variable as the app's (its default when unset).
SHELL_URL = f'"${{AIMLAPI_BASE_URL:-{DEFAULT_BASE_URL}}}{CREATE_PATH}"'
# The first lines of both, short enough for a narrow box.
HEADER = (
    "# The create request of kling-ui: Kling v2.6 Pro, image to video.\n"
    "# Needs AIMLAPI_KEY set (AIMLAPI_BASE_URL too, if not the AIML API).\n"
    "# It prints the answer, whose id is the generation id.\n"
    "# The page sends a prepared copy of the image (a JPEG within the\n"
    "# API's limits); this sends the file as it is."
)


def mime_type(image_name: str) -> str:
    """The image's type for its data URI, from its name's ending (the page names every
    upload, webcam and clipboard ones too, with one)."""
    if not (image_name or "").strip():
        raise errors.InputError(NO_IMAGE)
    kind = MIME_TYPES.get(PurePath(image_name).suffix.lower())
    if kind is None:
        raise errors.InputError(
            "The code needs the image's type from its name, which should end in .jpg, .png, "
            ".webp, .gif or .bmp. Upload the image under such a name, then copy again."
        )
    return kind


def images_of(request: Request, image_name: str, last_name: str = "") -> dict[str, str]:
    """The images the code sends, by role, with their files' names: those the request's
    model takes and that are given (or that it needs: a missing one is said in words)."""
    spec = spec_of(request.model)
    given = {"image": image_name, "last_frame": last_name}
    return {
        role: given.get(role, "")
        for role in spec.roles
        if (given.get(role) or "").strip() or role in spec.needs()
    }


def request_body(image_name: str, request: Request, last_name: str = "") -> dict[str, Any]:
    """The create's body with every field checked; each image's field (``image_url``, and
    the model's last frame's) is the data URI's start only (``data:image/png;base64,``),
    the rest is the file's when the code runs. A model that makes video from text: none.
    Reference images are left out (the page's note says so)."""
    request = request.without_references()
    for role, name in images_of(request, image_name, last_name).items():
        if role == "last_frame" and not (name or "").strip():
            raise errors.InputError(
                f"{request.model} needs a last frame too: add one under Last frame."
            )
        request = request.with_image(f"data:{mime_type(name)};base64,", role)
    return request.body()


def _header(request: Request, images: dict[str, str]) -> str:
    """The first lines: ours as they always were; another model's names it."""
    if request.model == KLING.model:
        return HEADER
    lines = [f"# The create request of kling-ui: {request.model}.", *HEADER.splitlines()[1:3]]
    if images:
        lines += ["# The page sends prepared copies of the images (JPEGs within the",
                  "# API's limits); this sends the files as they are."]  # fmt: skip
    return "\n".join(lines)


def _fields_of_images(request: Request, images: dict[str, str]) -> dict[str, str]:
    """Each image's body field, by role."""
    spec = spec_of(request.model)
    return {role: spec.field_for(role) for role in images}


# --- cURL -------------------------------------------------------------------------------


def _json(value: Any) -> str:
    """JSON as a person can read it (their own letters), with what doesn't print escaped."""
    return "".join(_escape(ch) for ch in json.dumps(value, ensure_ascii=False))


def _escape(ch: str) -> str:
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON has no \U: a surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _json_around_images(body: dict[str, Any], fields: list[str]) -> list[str]:
    """The body as JSON text around each image's Base64 (which the shell writes between
    them), one piece more than ``fields``: every pair is encoded on its own, so no text can
    be mistaken for the place an image goes."""
    pieces: list[str] = []
    text = "{"
    for n, (key, value) in enumerate(body.items()):
        pair = f"{_json(key)}: {_json(value)}"
        sep = ", " if n else ""
        if key in fields:
            pieces.append(text + sep + pair[:-1])  # the URI's start, still open
            text = '"'
        else:
            text += sep + pair
    return [*pieces, text + "}"]


def curl_snippet(
    image_name: str, request: Request, *, sent_by: str = "", last_name: str = ""
) -> str:
    """The create as a shell command (bash, zsh, sh): the body is written by ``printf``
    around each image's Base64 (portable ``base64 | tr -d '\\n'``, not GNU's ``-w0``) and
    piped to curl, so no image passes through a command line. ``--fail-with-body`` (curl
    7.76 or later): an HTTP error prints the API's answer and exits non-zero, so a script
    that runs it can tell a refused request from a created job. ``last_name``: the last
    frame's file, for a model that takes one."""
    images = images_of(request, image_name, last_name)
    body = request_body(image_name, request, last_name)
    fields = _fields_of_images(request, images)
    pieces = _json_around_images(body, list(fields.values()))
    files = [f"{VARIABLES[role][0]}={shlex.quote(name)}" for role, name in images.items()]
    writes = [f"  printf '%s' {shlex.quote(pieces[0])}"]
    for role, piece in zip(images, pieces[1:], strict=True):
        writes += [f'  base64 < "${VARIABLES[role][0]}" | tr -d \'\\n\'',
                   f"  printf '%s' {shlex.quote(piece)}"]  # fmt: skip
    return "\n".join(
        [
            _header(request, images),
            *([_image_comment(sent_by)] if images else []),
            *files,
            "{",
            *writes,
            f"}} | curl -sS --fail-with-body -w '\\n' {SHELL_URL} \\",
            '  -H "Authorization: Bearer $AIMLAPI_KEY" \\',
            "  -H 'Content-Type: application/json' \\",
            "  --data-binary @-",
            "",
        ]
    )


# --- Python -----------------------------------------------------------------------------


def python_snippet(
    image_name: str, request: Request, *, sent_by: str = "", last_name: str = ""
) -> str:
    """The create as a Python script with requests. Strings are Python literals (``repr``:
    exact, and what doesn't print is escaped); each image is encoded when it runs."""
    images = images_of(request, image_name, last_name)
    body = request_body(image_name, request, last_name)
    by_field = {field: role for role, field in _fields_of_images(request, images).items()}
    # Each image's value is its variable above; every other is a literal.
    pairs = [
        (key, VARIABLES[by_field[key]][1] if key in by_field else _literal(value))
        for key, value in body.items()
    ]
    files, uris = [], []
    for role, name in images.items():
        path, uri = VARIABLES[role]
        files.append(f"{path} = Path({_literal(name)})")
        uris.append(f'{uri} = "data:{mime_type(name)};base64," + '
                    f"base64.b64encode({path}.read_bytes()).decode()")  # fmt: skip
    imports = ["import base64", "import os", "from pathlib import Path"] if images else [
        "import os"
    ]  # fmt: skip
    return "\n".join(
        [
            _header(request, images),
            "# And requests: pip install requests",
            *imports,
            "",
            "import requests",
            "",
            *([_image_comment(sent_by)] if images else []),
            *files,
            f'BASE_URL = os.environ.get("AIMLAPI_BASE_URL", "{DEFAULT_BASE_URL}")',
            "",
            *uris,
            "body = {",
            *(f"    {json.dumps(key)}: {value}," for key, value in pairs),
            "}",
            "response = requests.post(",
            f'    BASE_URL.rstrip("/") + "{CREATE_PATH}",',
            "    headers={",
            '        "Authorization": "Bearer " + os.environ["AIMLAPI_KEY"],',
            '        "Content-Type": "application/json",',
            "    },",
            "    json=body,",
            "    timeout=60,",
            ")",
            "print(response.text)",
            "response.raise_for_status()",
            "",
        ]
    )


def _literal(value: Any) -> str:
    """A Python literal of ``value`` (``repr``: exact, what doesn't print escaped), in
    double quotes where that needs no escape, as the rest of the script is written."""
    text = repr(value)
    if isinstance(value, str) and text.startswith("'") and not {"'", '"'} & set(value):
        return f'"{text[1:-1]}"'
    return text


def _image_comment(sent_by: str) -> str:
    if not sent_by:
        return "# The image to send (its path, if it is not in this folder):"
    job = f"\n# (job {sent_by})" if _SAFE_ID.fullmatch(sent_by) else ""
    return (
        "# The image that job sent (Remix puts it back in the form), saved\n"
        f"# under this name, or its path here:{job}"
    )


SNIPPETS = {"curl": curl_snippet, "python": python_snippet}
LANGUAGES = {"curl": "shell", "python": "python"}
