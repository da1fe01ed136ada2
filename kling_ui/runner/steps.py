"""One job's steps, each run by the runner's scheduler: the create, a lost create's lookup,
polling, the download, and ending the job.

- ``queued_here``: sent when its API key has a free slot (at most ``max_active_per_key`` jobs
  at the vendor per key; fair turns between owners and addresses); a create turned away
  (429/503) waits its turn again.
- ``submitting``: the create carries ``X-Client-Request-Id`` = our job id, written before
  sending. Its answer gives the generation id (``submitted``); a lost answer makes the job
  ``unknown``; a refusal, ``not_created`` with its ``states.Reason``.
- ``unknown`` (and ``submitting`` found after a crash): the job is looked up in the vendor's
  usage log (``GET /v2/logs``) by that id, with backoff, for ``lookup_window`` seconds: found,
  it carries on as ``submitted`` (recovered); not found, ``not_created``. Never a second create.
- ``submitted``/``queued``/``generating``: polled, sparsely while the job is young (before
  about the shortest run this ledger has seen, once it has seen enough runs to trust that),
  every ``poll_interval`` after.
- ``downloading``: the video goes to the videos folder, its poster frame beside it (made
  once, here; a video that gives none is still done); a refused or broken download is tried
  again with a fresh link from a new poll, then kept for its owner to resume (paused);
  ``expired`` when the vendor no longer has the job.

A batch item's prepared image waits in a file of its own (``pending/<job id>.json``, written
whole by ``files.write_atomic``) until it is sent, so a restart can still send it.

``JobSteps`` is the runner's half that talks to the vendor; the scheduling half
(``runner.Runner``) gives it ``_schedule``, ``_changed``, ``_park`` and ``_forget``.
Imports ``client``, ``config``, ``errors``, ``files``, ``history``, ``jobs``, ``media``,
``pricing``, ``request`` and ``states``; never gradio.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import errors
from ..client import AIMLClient, Sessions, reported_charge
from ..config import Settings
from ..files import write_atomic
from ..history import Job, Ledger
from ..jobs import parse_generation
from ..media import make_poster, poster_from
from ..provenance import stamp_job
from ..request import SENDABLE, Request, spec_of
from ..states import AT_VENDOR, Reason, State

log = logging.getLogger(__name__)

LOOKUP_FIRST_WAIT = 2.0  # seconds before the first look in the usage log; then doubling
DOWNLOAD_TRIES = 3


@dataclass(frozen=True)
class Backend:
    """Where one job's requests go, and with which key (``key_ref`` names it, never shows it)."""

    name: str  # "demo" or "live"
    settings: Settings
    api_key: str = field(repr=False)
    key_ref: str = ""


def video_filename(prompt: str, generation_id: str) -> str:
    """A file name a person recognises: words of the prompt, then the start of the id."""
    text = unicodedata.normalize("NFKD", prompt or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-") or "video"
    short = re.sub(r"[^a-zA-Z0-9]", "", generation_id.split(":", 1)[0])[:8] or "job"
    return f"kling-{slug}-{short}.mp4"


def video_path_for(settings: Settings, job: Job) -> Path:
    return settings.videos_dir / video_filename(job.prompt, job.shown_id)


class JobSteps:
    """The steps of a job at the vendor; ``Runner`` is the one class made from it."""

    settings: Settings
    ledger: Ledger
    _sessions: Sessions
    _clock: Callable[[], float]
    _backends: dict[str, Backend]  # key_ref -> backend, typed keys included
    _requests: dict[str, Request]  # job_id -> what to send
    _urls: dict[str, str]  # job_id -> the finished video's (signed) link
    _tries: dict[str, int]  # job_id -> lookups or downloads tried (-1: adopted, unconfirmed)
    _looked: dict[str, float]  # job_id -> when its usage-log look last worked
    _shortest: dict[str, float | None]  # backend -> its shortest run, once trusted
    _parked: dict[str, Reason | None]  # jobs waiting for their owner, and why (typed)
    _slots: threading.Lock
    _schedule: Callable[[str, float], None]
    _changed: Callable[[str], None]
    _park: Callable[..., None]
    _forget: Callable[[str], None]
    _backend_for_ref: Callable[[str, str], Backend | None]

    def _client(self, job: Job) -> AIMLClient:
        backend = self._backends[job.key_ref]
        sessions = self._sessions if backend.name == "live" else None
        return AIMLClient(backend.api_key, backend.settings, sessions)

    def _note(self, job_id: str, message: str) -> None:
        """A new message for the job, at the runner's clock (so ``updated_at`` is on the same
        clock as ``created_at`` and ``finished_at``)."""
        self.ledger.note(job_id, message, at=self._clock())

    def _end(self, job: Job, state: str, message: str, **changes: object) -> None:
        self.ledger.transition(job.job_id, state, at=self._clock(), message=message, **changes)
        self._forget(job.job_id)
        if state in (State.DONE, State.DOWNLOADING):
            self._shortest.pop(job.backend, None)

    # --- the create -----------------------------------------------------------------------

    def _submit(self, job: Job) -> None:
        request = self._requests.get(job.job_id) or self._load_request(job)
        if request is None:
            self._end(
                job, State.NOT_CREATED, "The image of this item was lost before it was sent.",
                reason=str(Reason.NOT_SENT),  # never sent: nothing was made, nothing is owed
            )  # fmt: skip
            return
        with self._slots, self.ledger.mutex(f"slots:{job.key_ref}"):
            if not self._turn_now(job):
                self._schedule(job.job_id, self.settings.poll_interval)
                return
            now = self._clock()
            self.ledger.transition(job.job_id, State.SUBMITTING, at=now, sent_at=now, message="")
        self._changed(job.job_id)
        try:
            response = self._client(job).create_generation(request, client_request_id=job.job_id)
        except (errors.RateLimitError, errors.ServerError) as exc:  # turned away: not created
            self.ledger.transition(
                job.job_id, State.QUEUED_HERE, at=self._clock(),
                message=f"{exc.base_message} {TURNED_AWAY}",
            )  # fmt: skip
            self._schedule(
                job.job_id, min(self.settings.retry_after_cap, 5 * self.settings.poll_interval)
            )
            return
        except errors.OutcomeUnknown as exc:
            self.ledger.transition(
                job.job_id, State.UNKNOWN, at=self._clock(), message=exc.user_message
            )
            self._schedule(job.job_id, LOOKUP_FIRST_WAIT)
            return
        except errors.KlingUIError as exc:
            self._end(job, State.NOT_CREATED, exc.user_message, reason=str(_reason(exc)))
            return
        created = parse_generation(response.payload)
        credits = created.credits if created.credits is not None else response.credits_header
        drop_request(self.settings.data_dir, job.job_id)
        self._requests.pop(job.job_id, None)
        self.ledger.transition(
            job.job_id,
            State.SUBMITTED,
            at=self._clock(),
            generation_id=created.generation_id,
            credits=credits,
            message="Submitted. Keep this id: the job can be resumed with it.",
        )
        self._schedule(job.job_id, self._poll_delay(self.ledger.get(job.job_id) or job))

    def _turn_now(self, job: Job) -> bool:
        """Whether ``job`` may be sent now: a slot of its key is free at the vendor and its
        turn has come (``_ahead``); if not, it says why (no slot) or hands the free slots to
        the jobs whose turn it is. Under the key's slots mutex."""
        active = self._active(job.key_ref)
        if active >= self.settings.max_active_per_key:
            waiting = f"Waiting for a free slot: {active} jobs of this API key are at the vendor."
            if job.message != waiting:
                self._note(job.job_id, waiting)
            return False
        free = self.settings.max_active_per_key - active
        ahead = self._ahead(job.key_ref, job.job_id)
        for other in ahead[:free] if len(ahead) >= free else []:
            self._schedule(other, 0.0)  # free slots, but they are others' turns first
        return len(ahead) < free

    def _ahead(self, key_ref: str, job_id: str) -> list[str]:
        """The waiting jobs of this key whose turn comes before ``job_id``'s, first first
        (all of them when it is not waiting): fair shares of a shared key, so one person's
        batch of 48 doesn't keep everyone else waiting behind it. The address with the
        fewest jobs at the vendor goes first (fresh browsers are cheap: a thousand made from
        one address are one address, never ahead of a newcomer from another), between equals
        the one served longest ago (or never); then the same between its owners; then the
        oldest job. A job goes when fewer are ahead of it than slots are free: the order
        matters only for slots too few for all (one that waited for its turn with slots
        to spare lost a poll interval, 50 users at once, bench 3)."""
        waiting = [w for w in self.ledger.waiting_turns(key_ref) if w[0] not in self._parked]
        order = [w[1][0] for w in sorted(enumerate(waiting), key=lambda w: (*w[1][1:], w[0]))]
        return order[: order.index(job_id)] if job_id in order else order

    def _active(self, key_ref: str) -> int:
        """Jobs of this key at the vendor, not counting those paused for their owner."""
        return len(self.ledger.ids_in(AT_VENDOR, key_ref=key_ref) - self._parked.keys())

    # --- a lost create --------------------------------------------------------------------

    def _lookup(self, job: Job) -> None:
        """Find a create whose answer was lost in the vendor's usage log, by our id.

        It is called not created only when looks that worked span ``lookup_window`` from the
        moment the create was sent: a lagging log or an unreachable one never decides it."""
        tries = self._tries.get(job.job_id, 0) + 1
        self._tries[job.job_id] = tries
        if job.state == State.SUBMITTING:  # a crash between writing the row and the answer
            job = self.ledger.transition(
                job.job_id, State.UNKNOWN, at=self._clock(),
                message=errors.OutcomeUnknown().user_message,
            )  # fmt: skip
        try:
            found = self._client(job).find_in_logs(job.job_id)
        except errors.KlingUIError as exc:
            log.info("usage log lookup for %s failed: %s", job.job_id, type(exc).__name__)
            self._note(job.job_id, f"{LOOKING} (The usage log could not be read just now.)")
            self._schedule(job.job_id, min(LOOKUP_FIRST_WAIT * 2 ** (tries - 1), 30.0))
            return
        if found:
            self._recovered(job, found)
            return
        self._looked[job.job_id] = self._clock()
        sent = job.sent_at if job.sent_at is not None else job.created_at
        if self._looked[job.job_id] - sent > self.settings.lookup_window:
            self._end(job, State.NOT_CREATED, NOT_FOUND_IN_LOG, reason=str(Reason.NOT_CREATED))
            return
        self._note(job.job_id, f"{LOOKING} (look {tries})")
        self._schedule(job.job_id, min(LOOKUP_FIRST_WAIT * 2 ** (tries - 1), 30.0))

    def _recovered(self, job: Job, generation_id: str) -> None:
        """The lost create was found: carry on with it (merging a row that adopted the same
        id by hand meanwhile, so the vendor's id stays one job)."""
        other = self.ledger.find(generation_id)
        if other is not None and other.job_id != job.job_id:
            self.ledger.forget(other.job_id)
            self._forget(other.job_id)
            self._parked.pop(other.job_id, None)
        self.ledger.transition(
            job.job_id,
            State.SUBMITTED,
            at=self._clock(),
            generation_id=generation_id,
            recovered=True,
            message="Recovered: the create's answer was lost, but the API's usage log shows "
            "the job was made. It carries on; nothing was sent twice.",
        )
        self._tries.pop(job.job_id, None)
        self._schedule(job.job_id, 0.0)

    # --- polling --------------------------------------------------------------------------

    def _poll_delay(self, job: Job) -> float:
        """Sparse while the job is young, every ``poll_interval`` from about the shortest run
        this ledger has seen (at 80% of it, so an early finish is still caught soon).

        Only once ``sparse_after_runs`` runs have finished: whatever their spread, the run
        after n others is the shortest yet with a chance of 1 in n + 1, and a job that
        beats the record ends inside its sparse stretch, noticed up to a sparse interval
        late. From 19 runs that is at most 1 job in 20, outside the p95; a ledger that
        trusted its first run noticed one job in ten 7 s late (the playback benchmark's
        p95 of 5 s)."""
        base = self.settings.poll_interval
        if job.backend not in self._shortest:
            enough = self.settings.sparse_after_runs
            runs = self.ledger.durations(job.backend, None, limit=enough) if enough else []
            trusted = len(runs) >= enough
            self._shortest[job.backend] = self.ledger.shortest_run(job.backend) if trusted else None
        shortest = self._shortest[job.backend]
        if shortest is None or job.submitted_at is None:
            return base
        dense_from = job.submitted_at + 0.8 * shortest
        left = dense_from - self._clock()
        return base if left <= 0 else min(self.settings.sparse_poll_interval, max(base, left))

    def _poll(self, job: Job) -> None:
        assert job.generation_id
        try:
            response = self._client(job).get_generation(job.generation_id)
        except (errors.RateLimitError, errors.ServerError, errors.APIConnectionError) as exc:
            self._note(job.job_id, f"{exc.user_message} Still watching.")
            self._schedule(job.job_id, self.settings.poll_interval * 2)
            return
        except errors.NotFoundError as exc:
            if self._tries.get(job.job_id) == -1:  # an adopted id the vendor doesn't know
                self.ledger.forget(job.job_id)
                self._forget(job.job_id)
                return
            # Our own job, that the API made: a 404 is the API's mistake, kept for a resume.
            self._note(job.job_id, f"{exc.user_message} Resume it to check again.")
            self._park(job.job_id)
            return
        except errors.GenerationFailed as exc:
            self._end(
                job, State.FAILED, exc.user_message, reason=str(Reason.FAILED), charged_usd=0.0
            )
            return
        except errors.KlingUIError as exc:  # a bad key: keep the job, wait for its owner
            self._note(job.job_id, f"{exc.user_message} Resume it to try again.")
            key_or_money = _reason(exc) is Reason.KEY_OR_MONEY
            self._park(job.job_id, Reason.KEY_OR_MONEY if key_or_money else None)
            return
        self._tries.pop(job.job_id, None)
        self._saw(job, parse_generation(response.payload, job.generation_id), response)

    def _saw(self, job: Job, status, response) -> None:
        credits = status.credits if status.credits is not None else response.credits_header
        changes = {"credits": credits} if credits is not None else {}
        now = self._clock()
        if status.phase == "completed":
            self._urls[job.job_id] = status.video_url or ""
            charge = reported_charge(response.payload)  # the charge lands with "completed"
            if charge is not None:
                changes["charged_usd"] = charge.usd
            self.ledger.transition(
                job.job_id, State.DOWNLOADING, at=now, message="Done at the vendor; downloading.",
                **changes,
            )  # fmt: skip
            self._schedule(job.job_id, 0.0)
            return
        if status.phase == "failed":
            vendor_text = status.error_message or status.error_name
            failure = errors.GenerationFailed(
                vendor_message=self._client(job).redact(vendor_text) if vendor_text else None
            )
            self._end(job, State.FAILED, failure.user_message, reason=str(Reason.FAILED),
                      charged_usd=0.0, **changes)  # fmt: skip  # failed generations are not charged
            return
        if status.phase in ("queued", "generating"):
            words = {"queued": "Queued at the vendor, waiting for a worker.",
                     "generating": "Generating the video."}  # fmt: skip
            # never back: a job seen generating stays so
            phase = State.GENERATING if job.state == State.GENERATING else State(status.phase)
            same = job.state == phase and job.message == words[phase]
            if not (same and changes.get("credits", job.credits) == job.credits):
                # A poll that saw nothing new writes nothing (a commit is a disk sync).
                job = self.ledger.transition(
                    job.job_id, phase, at=now, message=words[phase], **changes
                )

        else:
            shown = self._client(job).redact(status.status) if status.status else "(none)"
            self._note(
                job.job_id, f"The API reported a status we don't know ({shown!r}); still watching."
            )
        self._schedule(job.job_id, self._poll_delay(job))

    # --- the download ---------------------------------------------------------------------

    def _download(self, job: Job) -> None:
        url = self._urls.get(job.job_id)
        if not url:  # after a restart, or a link that failed: ask for a fresh one
            self._poll_for_link(job)
            return
        dest = video_path_for(self.settings, job)
        try:
            path = self._client(job).download_video(url, dest)
        except errors.DownloadError as exc:
            tries = self._tries.get(job.job_id, 0) + 1
            self._tries[job.job_id] = tries
            self._urls.pop(job.job_id, None)
            if tries >= DOWNLOAD_TRIES:  # kept for its owner: a resume tries again
                self._note(job.job_id, exc.user_message)
                self._park(job.job_id)
                return
            self._note(job.job_id, f"{exc.user_message} Trying again with a fresh link.")
            self._schedule(job.job_id, self.settings.poll_interval * tries)
            return
        _label(job, path)  # before "done", so a page that shows the video shows its poster
        self._end(
            job, State.DONE, "Done. The video is ready.", video_path=str(path),
            video_token=secrets.token_hex(16),  # 128 random bits: the video's address
        )  # fmt: skip

    def refetch(self, job: Job) -> Path | None:
        """A finished video this process can't see (another machine's disk): fetched again
        from the vendor by its id, into this process's videos folder. None when it can't be
        (no key for it here, the vendor's link gone): a job is never changed by this."""
        dest = video_path_for(self.settings, job)
        if dest.is_file():
            return dest
        backend = self._backends.get(job.key_ref) or self._backend_for_ref(job.backend, job.key_ref)
        if backend is None or not job.generation_id:
            return None
        self._backends.setdefault(job.key_ref, backend)
        try:
            client = self._client(job)
            status = parse_generation(client.get_generation(job.generation_id).payload)
            if not status.video_url:
                return None
            path = client.download_video(status.video_url, dest)
        except errors.KlingUIError as exc:
            log.warning("could not fetch %s again: %s", job.job_id, type(exc).__name__)
            return None
        _label(job, path)
        return path

    def _poll_for_link(self, job: Job) -> None:
        assert job.generation_id
        try:
            response = self._client(job).get_generation(job.generation_id)
        except errors.NotFoundError:
            self._end(job, State.EXPIRED, EXPIRED, reason=str(Reason.EXPIRED))
            return
        except errors.KlingUIError as exc:
            self._note(job.job_id, f"{exc.user_message} Still trying to fetch the video.")
            self._schedule(job.job_id, self.settings.poll_interval * 2)
            return
        status = parse_generation(response.payload, job.generation_id)
        if status.phase == "completed" and status.video_url:
            self._urls[job.job_id] = status.video_url
            self._schedule(job.job_id, 0.0)
            return
        # the vendor no longer has it
        self._end(job, State.EXPIRED, EXPIRED, reason=str(Reason.EXPIRED))

    def _load_request(self, job: Job) -> Request | None:
        """A batch item's request after a restart: the ledger's, with its waiting image."""
        request = load_request(self.settings.data_dir, job)
        if request is not None:
            self._requests[job.job_id] = request
        return request


LOOKING = (
    "The create's answer was lost; looking for the job in the API's usage log by this job's "
    "own id. Nothing will be sent twice."
)
TURNED_AWAY = "Nothing was created; this job waits its turn here and is sent again shortly."
NOT_FOUND_IN_LOG = (
    "The create's answer was lost and the API's usage log never showed the job, so it was "
    "not created. Requests that fail are not charged. If your AIML API dashboard shows it all "
    "the same, paste its generation id into Resume by id."
)
EXPIRED = (
    "The video could not be fetched before its link expired at the vendor. Check your AIML "
    "API dashboard; failed generations are not charged."
)


def _label(job: Job, path: Path) -> None:
    """A video just landed: how it was made written into it, and its poster made beside it.
    Never raises: the video is on disk, so the job is done regardless."""
    frames: list = []  # its first frame, decoded on the way: the poster's
    stamp_job(path, job, first_frame=frames.append)
    try:
        poster_from(frames[0], path) if frames else make_poster(path)
    except Exception:  # a bug of ours
        log.exception("runner: poster for %s failed", job.job_id)


def _reason(exc: errors.KlingUIError) -> Reason:
    """Why a create made no job: it never left us, the key or the balance was refused, or
    the request was."""
    if isinstance(exc, (errors.InputError, errors.APIConnectionError)):
        return Reason.NOT_SENT
    if isinstance(exc, (errors.AuthenticationError, errors.OutOfCreditsError)):
        return Reason.KEY_OR_MONEY
    return Reason.REFUSED


# --- batch items waiting in a file ----------------------------------------------------------


def pending_file(data_dir: Path, job_id: str) -> Path:
    return Path(data_dir) / "pending" / f"{job_id}.json"


def _role_files(data_dir: Path, job_id: str) -> list[Path]:
    """A waiting job's files of its images other than the first frame."""
    return sorted((Path(data_dir) / "pending").glob(f"{job_id}.*.uri"))


def save_request(data_dir: Path, job_id: str, request: Request) -> None:
    """Keep a waiting job's prepared images until it is sent (the ledger keeps the rest):
    the first frame's in the job's file, as it always was, each other one (a last frame, a
    reference image) in a file of its own."""
    path = pending_file(data_dir, job_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The image's address as it is (a data URI of 2 MB: as JSON, its escaping held the GIL
    # for 3 ms a job while 50 arrived at once, bench 3); files kept as JSON are still read.
    write_atomic(path, request.image_url)
    for role, uri in request.images.items():
        if role != "image" and uri.startswith("data:"):
            write_atomic(path.with_name(f"{job_id}.{role}.uri"), uri)


def load_request(data_dir: Path, job: Job) -> Request | None:
    """The request of a job not yet sent: the ledger's, with the images kept for it; None
    when one it needs is gone."""
    try:
        image_url = pending_file(data_dir, job.job_id).read_text()
        if image_url.startswith("{"):  # kept by an earlier version
            image_url = json.loads(image_url)["image_url"]
        request = job.request
        if image_url:
            if not isinstance(image_url, str) or not image_url.startswith(SENDABLE):
                return None
            request = request.with_image(image_url)
        for kept in _role_files(data_dir, job.job_id):
            role = kept.name[len(job.job_id) + 1 : -len(".uri")]
            request = request.with_image(kept.read_text(), role)
        needed = spec_of(request.model).needs()
    except (OSError, ValueError, KeyError, TypeError, errors.InputError):
        return None
    if any(not request.images.get(role, "").startswith(SENDABLE) for role in needed):
        return None
    return request


def drop_request(data_dir: Path, job_id: str) -> None:
    """A job's waiting images, gone once it is sent or ended."""
    pending_file(data_dir, job_id).unlink(missing_ok=True)
    for kept in _role_files(data_dir, job_id):
        kept.unlink(missing_ok=True)
