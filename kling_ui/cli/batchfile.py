"""A batch file: CSV rows of ``image,prompt[,negative_prompt,duration,generate_audio,takes]``.

Every row is checked with the page's own rules before anything is sent, and the first bad
row refuses the whole file, named by its line number. An image is a path (relative to the
file's folder) or an https link, left empty for a model that makes video from text; a
header row (starting ``image``), blank rows and rows starting with ``#`` are skipped. Each
row becomes one ``Request`` (made here, where its input enters) for the file's model (one a
batch), with the model's other fields the command gave (``options``), which win over a
row's own. Imports ``errors``, ``images``, ``request``, ``service``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..images import prepare_image
from ..request import KLING, Request, spec_of
from ..service import MAX_BATCH, MAX_TAKES, Planned

COLUMNS = ("image", "prompt", "negative_prompt", "duration", "generate_audio", "takes")
YES = frozenset({"", "1", "true", "yes", "y", "on"})
NO = frozenset({"0", "false", "no", "n", "off"})


@dataclass(frozen=True)
class Row:
    line: int
    image: str
    request: Request  # checked; its image is added when prepared (``plan``)
    takes: int


def read_rows(
    path: Path,
    *,
    default_duration: int = 5,
    model: str = KLING.model,
    options: Mapping[str, object] | None = None,
) -> list[Row]:
    """The file's rows, each checked (not the images yet: ``plan`` does those), each a
    request for ``model`` with ``options``."""
    spec = spec_of(model)
    if "last_frame" in spec.needs():
        raise errors.InputError(
            f"{spec.model} needs a last frame for each video: make them one at a time."
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise errors.InputError(f"There is no file {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise errors.InputError(f"Could not read {path} as UTF-8 text ({exc}).") from None
    rows: list[Row] = []
    # Strict: a stray quote is an error named by its line, not rows run together.
    reader = csv.reader(text.splitlines(keepends=True), strict=True)
    first = True
    for line, cells in _lines(reader):
        cells = [c.strip() for c in cells]
        if not any(cells) or cells[0].startswith("#"):
            continue
        if first and cells[0].lower() == "image":
            first = False
            continue
        first = False
        rows.append(_row(line, cells, path.parent, default_duration, spec.model, options))
    if not rows:
        raise errors.InputError(f"{path} has no rows: write image,prompt on each line.")
    total = sum(r.takes for r in rows)
    if total > MAX_BATCH:
        raise errors.InputError(
            f"{path} asks for {total} videos; the most at once is {MAX_BATCH}. Split it."
        )
    return rows


def _lines(reader) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line it starts on; a row the CSV reader can't read, named."""
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise errors.InputError(f"Line {line}: this is not a CSV row ({exc}).") from None
        yield line, cells


def _row(
    line: int, cells: list[str], folder: Path, default_duration: int, model: str,
    options: Mapping[str, object] | None,
) -> Row:  # fmt: skip
    try:
        if any("\n" in c or "\r" in c for c in cells):
            raise errors.InputError(
                "a cell runs over more than one line (a quote not closed?): keep each row on "
                "one line."
            )
        if len(cells) < 2 or len(cells) > len(COLUMNS):
            raise errors.InputError(
                f"expected 2 to {len(COLUMNS)} columns ({','.join(COLUMNS)}), found {len(cells)}."
            )
        cells = cells + [""] * (len(COLUMNS) - len(cells))
        image, prompt, negative, duration, audio, takes = cells
        spec = spec_of(model)
        if not image and "image" in spec.needs():
            raise errors.InputError("the image is missing.")
        if image and "image" not in spec.roles:
            raise errors.InputError(
                f"{spec.model} makes video from text only: leave the image column empty."
            )
        given = {"negative_prompt": negative, "duration": duration or default_duration,
                 "generate_audio": _yes(audio)}  # fmt: skip
        request = Request.for_model(prompt, model, given, options)
        return Row(line, _where(image, folder) if image else "", request, _takes(takes))
    except errors.InputError as exc:
        raise errors.InputError(f"Line {line}: {_lower_first(exc.base_message)}") from None


def plan(rows: list[Row], *, fit: str = "reject") -> list[Planned]:
    """Each row's image prepared (once per image) and its takes spelled out."""
    prepared: dict[str, str] = {}
    planned = []
    for row in rows:
        if row.image and row.image not in prepared:
            try:
                prepared[row.image] = prepare_image(row.image, fit=fit).data_uri  # type: ignore[arg-type]
            except errors.RatioOutOfRange as exc:  # its remedy is the caller's to word
                raise errors.RatioOutOfRange(f"Line {row.line}: {exc.facts}") from None
            except errors.InputError as exc:
                raise errors.InputError(f"Line {row.line}: {exc.base_message}") from None
        for take in range(1, row.takes + 1):
            about = {
                "line": row.line,
                "image": row.image,
                "prompt": row.request.prompt,
                "take": take,
            }
            sent = row.request.with_image(prepared[row.image]) if row.image else row.request
            planned.append(Planned(sent, about))
    return planned


def _where(image: str, folder: Path) -> str:
    if image.lower().startswith(("https://", "http://")):
        return image
    path = Path(image).expanduser()
    return str(path if path.is_absolute() else folder / path)


def _yes(word: str) -> bool | str:
    low = word.lower()
    if low in YES:
        return True
    if low in NO:
        return False
    return word  # Request.make says what is wrong with it


def _takes(word: str) -> int:
    if not word:
        return 1
    if word.isdigit() and 1 <= int(word) <= MAX_TAKES:
        return int(word)
    raise errors.InputError(f"takes must be 1 to {MAX_TAKES}, not {word!r}.")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != text[:2].upper() else text
