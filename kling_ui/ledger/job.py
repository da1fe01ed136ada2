"""One job as the ledger keeps it (``Job``, a frozen row), our ids for jobs, and the error
for a step the job's machine doesn't have.

A row keeps the request whole (``Job.request``: the JSON of ``request.Request``, or, for a
row from before schema 4, its prompt, negative_prompt, duration and generate_audio
columns) and the typed reason a job made no video (``states.Reason``). Imports ``states``
and ``request`` only.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from ..request import Request
from ..states import FINAL, UNPAID, Reason


class IllegalTransition(ValueError):
    """A state change the job's machine does not allow (a bug of ours, never the user's)."""


SHORT_ID = 8  # characters in a short id (``Job.short_id``); fewer find nothing
SHORT = re.compile(rf"[A-Za-z0-9:._-]{{{SHORT_ID},80}}")


def new_job_id() -> str:
    """Our id for a job, sent as ``X-Client-Request-Id`` (1-128 of ``A-Za-z0-9._:-``)."""
    return "kui-" + uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """One job as the ledger keeps it."""

    job_id: str
    generation_id: str | None
    batch_id: str | None
    created_at: float
    updated_at: float
    backend: str
    key_ref: str
    prompt: str
    negative_prompt: str
    duration: int
    generate_audio: bool
    state: str
    message: str = ""
    reason: Reason | None = None  # how a job that made no video ended (None: it made one)
    credits: float | None = None
    video_path: str | None = None
    recovered: bool = False
    sent_at: float | None = None  # when its create was last sent
    submitted_at: float | None = None
    queued_at: float | None = None
    generating_at: float | None = None
    finished_at: float | None = None
    # Who made it: "browser:<hash>" (a page), "address:<hash>" (a program), "" (in-process),
    # or "legacy" (made before jobs had owners; the first browser that shows it claims it).
    owner: str = ""
    video_token: str | None = None  # the video's address is /media/<token>.mp4
    estimate_usd: float | None = None  # the price when it was sent (None: not known in advance)
    charged_usd: float | None = None  # what the vendor reported it cost (0 when it failed)
    parent_id: str | None = None  # the job it continues (from that job's last frame)
    lease_owner: str | None = None  # the runner that runs it now ("host:pid:token")
    lease_until: float | None = None  # when that runner's hold lapses unless renewed
    # Where it was asked from: "address:<hash>" of the client's address (behind our
    # proxies), "" when not known (in-process, or made before addresses were kept). Every
    # per-visitor limit is counted per address too: fresh browsers are cheap to make.
    address: str = ""
    # The ``request`` column: the request as JSON (None in rows from before schema 4, in
    # rows an older replica wrote during a rolling upgrade, and for an adopted id).
    request_json: str | None = field(default=None, repr=False)

    @property
    def request(self) -> Request:
        """What was asked, whole: from the stored JSON, else from the old columns."""
        if self.request_json:
            return Request.from_json(self.request_json)
        return Request.from_columns(
            {"prompt": self.prompt, "negative_prompt": self.negative_prompt,
             "duration": self.duration, "generate_audio": self.generate_audio}
        )  # fmt: skip

    @property
    def cost_usd(self) -> float | None:
        """What the job counts as spending: the charge once known, else the price at submit;
        nothing for a job that made no video at the vendor (failed, refused, cancelled). A
        charge of $0 for a video is taken as not known (the price stands): a budget must
        never count a video as free."""
        unpaid = self.state in UNPAID
        if self.charged_usd is not None and (self.charged_usd > 0 or unpaid):
            return self.charged_usd
        if unpaid:
            return 0.0
        return self.estimate_usd

    @property
    def shown_id(self) -> str:
        """The id a person sees: the vendor's once there is one, else ours."""
        return self.generation_id or self.job_id

    @property
    def short_id(self) -> str:
        """The job's one short id: the first 8 characters of our id after its "kui-" (it
        exists from the row's first moment, before the vendor's id; ``Ledger.find_short``
        finds the job by it, or by the first characters of the vendor's)."""
        return self.job_id.split("-", 1)[-1][:SHORT_ID]

    @property
    def final(self) -> bool:
        return self.state in FINAL

    def timings(self, now: float) -> tuple[float, float, float]:
        """(elapsed, queued, generating) seconds, from the first time each phase was seen.

        The job waits from its create until it is first seen generating; it generates until
        it is first seen finished. Phases nobody saw count as the one before them, so the
        three always add up.
        """
        start = self.submitted_at if self.submitted_at is not None else self.created_at
        end = self.finished_at if self.finished_at is not None else now
        start_gen = self.generating_at if self.generating_at is not None else end
        elapsed = max(0.0, end - start)
        queued = max(0.0, min(start_gen, end) - start)
        return elapsed, queued, max(0.0, elapsed - queued)


# The jobs table's columns that are Job's fields by the same name (``request`` is read into
# ``request_json``).
COLUMNS = tuple(f for f in Job.__dataclass_fields__ if f != "request_json")


def job_of(row: dict) -> Job:
    """A database row as a ``Job`` (extra columns, such as PostgreSQL's ``seq``, ignored)."""
    data = {k: v for k, v in row.items() if k in COLUMNS}
    data["generate_audio"] = bool(data["generate_audio"])
    data["recovered"] = bool(data["recovered"])
    data["reason"] = Reason.read(data.get("reason"))
    return Job(**data, request_json=row.get("request"))
