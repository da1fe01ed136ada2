"""Share links as the ledger keeps them (the ``shares`` table): who made each, for which of
their videos, what the page may show, until when, and whether it was revoked. The link's
own signature and expiry are the service's (``service.shares``); a row is what makes a
signed link still good, so revoking one is a write here and takes effect on its next use.

Imports the ledger's ``table`` only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .table import Table


@dataclass(frozen=True)
class ShareRow:
    share_id: str
    owner: str
    created_at: float
    expires_at: float
    revoked_at: float | None
    job_ids: tuple[str, ...]  # the videos, in the board's order
    kept: str  # the job marked kept on a board ("" for none)
    shows: tuple[str, ...]  # what the page shows besides the videos: "prompt", "settings"
    kind: str = "page"  # "page": a page to watch; "zip": the videos as one download


def _row(row) -> ShareRow:
    return ShareRow(
        share_id=str(row["share_id"]),
        owner=str(row["owner"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        job_ids=tuple(json.loads(row["jobs"])),
        kept=str(row["kept"] or ""),
        shows=tuple(json.loads(row["shows"])),
        kind=str(row["kind"]),
    )


class SharesTable(Table):
    """Write and read share links."""

    def add_share(self, row: ShareRow) -> None:
        self._db.execute(
            "INSERT INTO shares (share_id, owner, created_at, expires_at, revoked_at, jobs,"
            " kept, shows, kind) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            (row.share_id, row.owner, row.created_at, row.expires_at, json.dumps(row.job_ids),
             row.kept, json.dumps(row.shows), row.kind),
        )  # fmt: skip

    def share(self, share_id: str) -> ShareRow | None:
        rows = self._db.rows("SELECT * FROM shares WHERE share_id = ?", (share_id,))
        return _row(rows[0]) if rows else None

    def shares_of(self, owner: str, now: float) -> list[ShareRow]:
        """``owner``'s page links still good at ``now``, newest first."""
        rows = self._db.rows(
            "SELECT * FROM shares WHERE owner = ? AND revoked_at IS NULL AND expires_at > ?"
            " AND kind = 'page' ORDER BY created_at DESC",
            (owner, now),
        )
        return [_row(r) for r in rows]

    def revoke_share(self, share_id: str, owner: str, when: float) -> bool:
        """Revoke ``owner``'s link ``share_id``; False when it is not theirs or not good."""
        changed = self._db.execute(
            "UPDATE shares SET revoked_at = ? WHERE share_id = ? AND owner = ?"
            " AND revoked_at IS NULL",
            (when, share_id, owner),
        )
        return bool(changed)

    def forget_shares_before(self, when: float) -> None:
        """Links that ended (expired or revoked) before ``when`` are no longer kept."""
        self._db.execute("DELETE FROM shares WHERE expires_at < ? OR revoked_at < ?", (when, when))
