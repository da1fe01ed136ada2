"""Share links: a read-only page for one of a visitor's videos or their compare board, at
an address anyone with it can open until it expires or its owner revokes it.

A link is ``/share/<id>.<expiry>.<signature>``: a random id (96 bits), the moment it stops
working (Unix seconds) and an HMAC-SHA256 of both under the deployment's own secret (a file
in the data folder every replica shares, ``files.shared_secret``). A link whose signature
does not match, or whose time is up, is refused before the ledger is read; a good one is
looked up (``shares`` table) on every use, page and video alike, so a revoked link stops at
once. It shows only what its owner chose: the videos, and if asked the prompt and the model
with its settings. Never the key, never another video, never the owner's ids: the videos
are served through the link (``/share/<link>/<n>.mp4``), not by their own addresses.

"Download all" is a link of its own kind (``zip``): the visitor's finished videos as one ZIP,
streamed (``zipstream``), good for ``ZIP_MINUTES`` and never listed or shown as a page.

A visitor keeps at most ``MOST_SHARES`` links that still work. Links ended a while ago are
forgotten by the retention sweep. Imports ``files`` and the boards room; never gradio.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import errors
from ..config import Settings
from ..files import shared_secret
from ..history import Ledger
from ..ledger.shares import ShareRow
from ..provenance import plain_copy
from .boards import BoardItem, Boards

DAYS = (1, 7, 30)  # how long a link may work
MOST_SHARES = 50  # links that still work, per visitor
SHOWS = ("prompt", "settings")  # what a page may show besides the videos
PREFIX = "/share/"
# A link's token as we make it: id, until, signature (base64url). Anything else is refused
# before it is parsed (a non-ASCII digit or signature would raise in int() or compare_digest).
TOKEN = re.compile(r"([A-Za-z0-9_-]{16})\.([0-9]{1,12})\.([A-Za-z0-9_-]{24})")
ZIP_MINUTES = 15  # a "Download all" link's life
MOST_IN_ZIP = 100  # videos in one "Download all" (a browser's history keeps 100)


@dataclass(frozen=True)
class Shared:
    """What a good link shows."""

    items: list[BoardItem]
    kept: str  # the gid of the one kept ("" for none)
    shows: tuple[str, ...]
    expires_at: float


class Shares:
    """Make, list, revoke and open share links."""

    def __init__(
        self, settings: Settings, ledger: Ledger, boards: Boards, *, clock: Callable[[], float]
    ) -> None:
        self.ledger, self.boards, self._clock = ledger, boards, clock
        self._secret = shared_secret(settings.data_dir / "share-secret", 32)

    def _sign(self, share_id: str, expires: int) -> str:
        digest = hmac.new(self._secret, f"{share_id}.{expires}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()[:18]).decode()

    def create(
        self, owner: str, ids: list[str], *, kept: str = "", days: int = 7,
        shows: tuple[str, ...] = (),
    ) -> str:  # fmt: skip
        """A new link's path (``/share/<token>``) for ``owner``'s videos ``ids``."""
        if days not in DAYS:
            raise errors.InputError(f"A link works for {', '.join(map(str, DAYS))} days.")
        items = self.boards.items(ids, owner)  # only the owner's own finished videos
        if not items:
            raise errors.InputError("Pick a video in the gallery first, then share it.")
        now = self._clock()
        if len(self.ledger.shares_of(owner, now)) >= MOST_SHARES:
            raise errors.InputError(
                f"You have {MOST_SHARES} share links that still work: revoke one first."
            )
        kept_job = next((i.job_id for i in items if i.gid == kept), "")
        shown = tuple(s for s in SHOWS if s in shows)
        return self._add(owner, [i.job_id for i in items], now + days * 86400, kept_job, shown)

    def _add(self, owner: str, job_ids: list[str], until: float, kept: str = "",
             shows: tuple[str, ...] = (), kind: str = "page") -> str:  # fmt: skip
        share_id, expires = secrets.token_urlsafe(12), int(until)
        self.ledger.add_share(ShareRow(share_id, owner, self._clock(), float(expires), None,
                                       tuple(job_ids), kept, shows, kind))  # fmt: skip
        return f"{PREFIX}{share_id}.{expires}.{self._sign(share_id, expires)}"

    def download_all(self, owner: str, ids: list[str]) -> tuple[str, int]:
        """A link to ``owner``'s finished videos among ``ids`` as one ZIP (its path), and
        how many it holds; ``InputError`` when none is finished."""
        items = self.boards.finished(ids, owner, MOST_IN_ZIP)
        if not items:
            raise errors.InputError("None of the videos shown is finished: nothing to download.")
        until = self._clock() + ZIP_MINUTES * 60
        path = self._add(owner, [i.job_id for i in items], until, kind="zip")
        return f"{path}/videos.zip", len(items)

    def zip_files(self, token: str) -> list[tuple[Path, str]] | None:
        """The files of a good "Download all" link, with their names in the ZIP."""
        row = self._row(token)
        if row is None or row.kind != "zip":
            return None
        files = []
        for n, job_id in enumerate(row.job_ids, 1):
            try:
                item = self.boards.item(job_id, row.owner)
            except errors.KlingUIError:
                continue
            files.append((item.path, f"{n:03d}-{item.path.name}"))
        return files

    def mine(self, owner: str) -> list[ShareRow]:
        """``owner``'s links that still work, newest first."""
        return self.ledger.shares_of(owner, self._clock())

    def revoke(self, share_id: str, owner: str) -> bool:
        """Stop ``owner``'s link ``share_id``; False when it is not theirs or already ended."""
        return self.ledger.revoke_share(share_id, owner, self._clock())

    def _row(self, token: str) -> ShareRow | None:
        found = TOKEN.fullmatch(str(token))
        if found is None:
            return None
        share_id, expires, signature = found.groups()
        expected = self._sign(share_id, int(expires))
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        if int(expires) <= self._clock():
            return None
        row = self.ledger.share(share_id)
        if row is None or row.revoked_at is not None or int(row.expires_at) != int(expires):
            return None
        return row

    def open(self, token: str) -> Shared | None:
        """What the link ``token`` shows; None for a link that is not good (any reason)."""
        row = self._row(token)
        if row is None or row.kind != "page":
            return None
        items = []
        for job_id in row.job_ids:  # a video its owner removed, or swept, is left out
            try:
                items.append(self.boards.item(job_id, row.owner))
            except errors.KlingUIError:
                continue
        kept = next((i.gid for i in items if i.job_id == row.kept), "")
        return Shared(items, kept, row.shows, row.expires_at)

    def file(self, token: str, name: str) -> Path | None:
        """The file ``name`` (``<n>.mp4``, or ``<n>.jpg`` its poster) of a good link."""
        number, _, suffix = name.partition(".")
        if not (number.isascii() and number.isdigit() and suffix in ("mp4", "jpg")):
            return None
        row = self._row(token)
        if row is None or row.kind != "page" or not 1 <= int(number) <= len(row.job_ids):
            return None
        try:  # the one asked for only (a playing video asks again for every range)
            video = self.boards.item(row.job_ids[int(number) - 1], row.owner).path
        except errors.KlingUIError:
            return None
        if suffix == "jpg":
            return video.with_suffix(".jpg") if video.with_suffix(".jpg").is_file() else None
        # The file without the settings written in it: the page shows only what was chosen.
        return plain_copy(video)


class ShareMethods:
    """The service's public methods that are the share links' (``GenerationService``'s)."""

    shares: Shares

    def share(self, owner: str, ids: list[str], *, kept: str = "", days: int = 7,
              shows: tuple[str, ...] = ()) -> str:  # fmt: skip
        """A new share link's path for ``owner``'s videos ``ids`` (``Shares.create``)."""
        return self.shares.create(owner, ids, kept=kept, days=days, shows=shows)

    def shares_of(self, owner: str) -> list[ShareRow]:
        return self.shares.mine(owner)

    def revoke_share(self, share_id: str, owner: str) -> bool:
        return self.shares.revoke(share_id, owner)

    def open_share(self, token: str) -> Shared | None:
        return self.shares.open(token)

    def share_file(self, token: str, name: str) -> Path | None:
        return self.shares.file(token, name)

    def download_all(self, owner: str, ids: list[str]) -> tuple[str, int]:
        return self.shares.download_all(owner, ids)

    def zip_files(self, token: str) -> list[tuple[Path, str]] | None:
        return self.shares.zip_files(token)
