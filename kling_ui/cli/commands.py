"""The subcommands: each checks with the app's own code, then sends and watches through the
same service, runner and ledger as the app, so a job started here shows in the app (resume
it by id) and a job from the app shows here.

This process runs only the jobs it is given (``pick_up=False``): an app running on the same
data folder keeps running its own. The arguments become one ``Request`` (``request_from``),
passed whole; jobs are read through the service's public methods (``job``, ``recent``,
``paused``), never its ledger or runner; exit codes come from a job's typed reason
(``states.Reason``). Imports the package's modules and ``display``; never gradio.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from .. import errors
from ..config import MODEL, Settings
from ..history import Job
from ..images import prepare_image
from ..jobs import Progress
from ..pricing import PriceBook, dollars, offline
from ..request import REFERENCE, Request
from ..service import (
    DEMO,
    MAX_TAKES,
    GenerationService,
    Planned,
    check_frames,
    plan_takes,
    quote_many,
)
from ..simulator import DemoSimulator
from ..states import PHASE_OF_STATE, Reason
from .batchfile import plan, read_rows
from .display import Display, clock, printable

DONE, FAILED, BAD_INPUT, REFUSED, UNKNOWN = 0, 1, 2, 3, 4
# The words a refusal for the key or the money starts with: only for what keeps no typed
# reason (a ledger row from before it was typed, a pause); exit 3, other refusals are 1.
KEY_OR_MONEY = (
    errors.AuthenticationError.default_message,
    errors.OutOfCreditsError.default_message,
)
SUBMIT_GRACE = 20.0  # seconds a Ctrl-C waits for a create already sent to answer


@dataclass
class Cli:
    """One run of the command line: its settings, its output streams, its service."""

    settings: Settings
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    interactive: bool = False  # stdin is a terminal: ask before spending
    fancy: bool | None = None  # progress bars (None: when stderr is a terminal)
    handed: list[str] = field(default_factory=list)  # jobs given to the runner by this run
    _service: GenerationService | None = field(default=None, repr=False)

    # --- the service ----------------------------------------------------------------------

    def service(self, *, run: bool = True) -> GenerationService:
        """The app's service; with ``run``, its runner started for the jobs given to it."""
        if self._service is None:
            s = self.settings
            demo = DemoSimulator(s.data_dir, s.demo_schedule) if s.demo_mode else None
            self._service = GenerationService(s, demo=demo, start=run, pick_up=False)
        return self._service

    def close(self) -> None:
        if self._service is None:
            return
        busy = [j for j in self._jobs(self.handed) if j.state in ("submitting", "downloading")]
        if busy:
            self.say(
                "Finishing the step under way (a create's answer or a download) before "
                "quitting; Ctrl-C again quits now, and resume picks the job up again."
            )
        self._service.close()
        if self._service.demo is not None:
            self._service.demo.stop()

    def _jobs(self, job_ids: list[str]) -> list[Job]:
        service = self.service(run=False)
        return [j for j in (service.job(i) for i in job_ids) if j is not None]

    def stopped(self, saved: dict[str, Path] | None = None) -> int:
        """Ctrl-C once jobs were the runner's: those not sent yet are cancelled (nothing is
        charged for them), the others go on; each is named with how to resume it."""
        signal.signal(signal.SIGINT, self._quit_now)
        cancelled = [
            j for j in self._jobs(self.handed)
            if j.state == "queued_here" and self.service(run=False).cancel(j.job_id)
        ]  # fmt: skip
        if cancelled:
            self.say(
                f"{len(cancelled)} video{'s' if len(cancelled) > 1 else ''} not sent yet "
                "cancelled: nothing is charged for them."
            )
        return self._outcome(self.handed, saved or {}, interrupted=True)

    def _quit_now(self, signum: int, frame: object) -> None:
        """A second Ctrl-C: the ids, then out at once (a step under way is cut off; the
        ledger has the job, and resume finds a create's answer in the vendor's log)."""
        for job in self._jobs(self.handed):
            if not job.final:
                gid = job.shown_id
                self.say(f"{gid}: resume it with: python -m kling_ui resume {gid}")
        self.err.flush()
        os._exit(UNKNOWN)

    def say(self, text: str) -> None:
        print(printable(text), file=self.err, flush=True)

    def mode_line(self) -> None:
        if self.settings.demo_mode:
            self.say(
                "kling-ui: demo mode (no AIMLAPI_KEY set): videos are simulated by a local "
                "stand-in for the API; nothing is charged."
            )
        else:
            self.say(
                f"kling-ui: live: videos are made at {self.settings.base_url} with AIMLAPI_KEY."
            )

    # --- generate, batch -------------------------------------------------------------------

    def generate(self, args: Any) -> int:
        if args.model and args.model.strip() != MODEL:  # one this app offers (and knows)
            self.service(run=not args.dry_run).offer().schema(args.model)
        request = request_from(args)
        for n, path in enumerate(args.references, 1):  # prepared with the frames
            request = request.with_image(path, f"{REFERENCE}{n}")
        if not 1 <= args.takes <= MAX_TAKES:
            raise errors.InputError(f"--takes must be 1 to {MAX_TAKES}, not {args.takes}.")
        planned, prepared = plan_takes(
            args.image, request, args.takes, fit=args.fit, end_image=args.end_image
        )
        if prepared is not None and prepared.adjusted:
            self.say(f"The image was {prepared.adjusted}.")
        return self._send(planned, args)

    def extend(self, args: Any) -> int:
        """The next part of a finished video from its last frame; what is saved is the whole
        chain, stitched. ``--model``: any model that starts from an image."""
        if args.model and args.model.strip() != MODEL:  # one this app offers (and knows)
            self.service(run=not args.dry_run).offer().schema(args.model)
        request = request_from(args)
        check_frames(request, "frame", continuing=True)  # one that goes on from a frame
        start = self.service().continue_from(self._full_id(args.id))
        self.say(start.words(request.duration, page=False))
        prepared = prepare_image(start.frame, fit=args.fit)
        plan = Planned(
            request.with_image(prepared.data_uri), {"take": 1}, parent_id=start.parent.job_id
        )
        return self._send([plan], args)

    def batch(self, args: Any) -> int:
        """A CSV file of videos, one model for all of them (``--model``, ``--set``)."""
        model = (args.model or "").strip() or MODEL
        if model != MODEL:  # one this app offers (and knows)
            self.service(run=not args.dry_run).offer().schema(model)
        rows = read_rows(Path(args.file), default_duration=args.duration, model=model,
                         options=_options(args.options))  # fmt: skip
        planned = plan(rows, fit=args.fit)
        self.say(f"{args.file}: {len(rows)} rows, {len(planned)} videos, every row checked.")
        return self._send(planned, args)

    def _send(self, planned: list[Planned], args: Any) -> int:
        demo = self.settings.demo_mode
        if args.dry_run:
            book = PriceBook(self.settings, offline=True)  # no request at all
            self.say(f"Price: {quote_many(offline(book), planned)[2]}{_free(demo)}")
            self.say("Dry run: everything checked; nothing was sent.")
            return DONE
        service = self.service()
        backend = service.backend_for(None)
        _, usd, words = quote_many(partial(service.estimate, backend=backend), planned)
        self.say(f"Price: {words}{_free(backend.name == DEMO)}")
        if backend.name != DEMO and not args.yes and self.interactive:
            low = service.low_balance(None, planned[0].request, len(planned))
            if not self._confirm(len(planned), usd, low):
                self.say("Nothing was sent.")
                return BAD_INPUT
        out = _check_out(Path(args.out))
        with deferred_interrupt():  # the rows and the handing over: one step, not half
            result = service.queue_many(planned, backend)
            self.handed = [item["job_id"] for item in result["items"]]
        return self.watch(self.handed, out)

    def _confirm(self, count: int, usd: float | None, low: str | None) -> bool:
        if low:
            self.say(low)
        what = f"{count} video{'s' if count > 1 else ''}"
        cost = f" for {dollars(usd)}" if usd is not None else ""
        self.err.write(f"Send {what}{cost} with your AIML API key? [y/N] ")
        self.err.flush()
        try:
            answer = input()
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")

    # --- watching ---------------------------------------------------------------------------

    def watch(self, job_ids: list[str], out: Path) -> int:
        """Show each job until it ends, save each video into ``out`` as it lands (its path on
        stdout), and say what became of each. Ctrl-C stops the watching, never a job."""
        service = self.service()
        self._out = out
        deadline = time.monotonic() + self.settings.watch_deadline
        labels = _labels(service, job_ids)
        saved: dict[str, Path] = {}
        interrupted = False
        with Display(self.err, fancy=self.fancy) as display:
            try:
                while self._look(job_ids, labels, saved, out, display):
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.25)
            except KeyboardInterrupt:
                interrupted = True
                signal.signal(signal.SIGINT, self._quit_now)
                self._let_creates_answer(job_ids, display)
        self.handed = job_ids
        return self.stopped(saved) if interrupted else self._outcome(job_ids, saved, False)

    def _look(
        self,
        job_ids: list[str],
        labels: dict[str, str],
        saved: dict[str, Path],
        out: Path,
        display: Display,
    ) -> bool:
        """One look at every job; True while any is still running."""
        service = self.service()
        running = False
        for job_id in job_ids:
            job = service.job(job_id)
            if job is None:
                continue  # an adopted id the vendor did not know
            update = service.progress(job)
            display.show(job_id, labels[job_id], update)
            if job.state == "done" and update.video_path and job_id not in saved:
                self._keep(job, update.video_path, out, saved, display)
            running = running or not (update.final or update.phase == "paused")
        return running

    def _keep(
        self,
        job: Job,
        video: Path,
        out: Path,
        saved: dict[str, Path],
        display: Display | None = None,
    ) -> None:
        """A finished video copied into ``out``, its path on stdout (above the progress bars
        while they are drawn); where it can't be written, where the video is kept instead
        (the job is done either way)."""
        try:
            saved[job.job_id] = _save(video, out)
        except OSError as exc:
            where = f"could not save into {out} ({exc.strerror}); it is at {video}"
            (display.say if display else self.say)(f"{job.shown_id}: {where}")
            saved[job.job_id] = video
        if display is not None:
            display.result(str(saved[job.job_id]), self.out)
        else:
            print(saved[job.job_id], file=self.out, flush=True)

    def _let_creates_answer(self, job_ids: list[str], display: Display) -> None:
        """After Ctrl-C: a create already sent is given a moment to answer, so its id can be
        printed (a second Ctrl-C quits at once; the id is found again on resume)."""
        service = self.service()

        def sending() -> bool:
            jobs = (service.job(j) for j in job_ids)
            return any(j is not None and j.state == "submitting" for j in jobs)

        if not sending():
            return
        display.say(
            f"Waiting up to {SUBMIT_GRACE:.0f} s for the API's answer to the request already "
            "sent, so its id can be printed (Ctrl-C again quits now; resume finds the job "
            "all the same)."
        )
        until = time.monotonic() + SUBMIT_GRACE
        while sending() and time.monotonic() < until:
            time.sleep(0.1)

    def _outcome(self, job_ids: list[str], saved: dict[str, Path], interrupted: bool) -> int:
        """Say what became of each job, and the exit code: the worst of theirs."""
        service = self.service()
        codes = []
        for job_id in job_ids:
            job = service.job(job_id)
            if job is None:
                self.say("The API does not know this generation id; nothing was kept.")
                codes.append(BAD_INPUT)
                continue
            update = service.progress(job)
            if job.state == "done" and job_id not in saved and update.video_path:
                self._keep(job, update.video_path, getattr(self, "_out", Path(".")), saved)
            paused = service.paused(job_id)
            code = job_code(job, paused, service.paused_for(job_id))
            if job.state == "done" and job_id not in saved:
                self.say(
                    f"{job.shown_id}: made, but its video file is no longer kept here (ended "
                    "jobs are removed after a while); your AIML API dashboard may still have it."
                )
                code = UNKNOWN
            elif code in (UNKNOWN, REFUSED) and not job.final:
                self.say(_not_ended(job, interrupted, paused))
            codes.append(code)
        return max(codes, key=[DONE, FAILED, REFUSED, BAD_INPUT, UNKNOWN].index, default=DONE)

    # --- by id ------------------------------------------------------------------------------

    def resume(self, args: Any) -> int:
        service = self.service()
        any_id = self._full_id(args.id)
        known = service.entry(any_id)
        key = self.settings.api_key if known and known.key_ref.startswith("typed:") else None
        job = service.take_up(any_id, key)
        return self.watch([job.job_id], Path(args.out))

    def status(self, args: Any) -> int:
        service = self.service(run=False)
        job = service.entry(self._full_id(args.id))
        if job is None:
            raise errors.NotFoundError(
                f"No job with the id {args.id} is in this ledger ({self.settings.ledger_name})."
            )
        update = service.progress(job)
        answer = _job_dict(job, update)
        if args.json:
            print(json.dumps(answer, indent=2), file=self.out)
        else:
            for name, value in answer.items():
                if value not in (None, ""):
                    print(f"{name + ':':<16} {printable(value)}", file=self.out)
        code = job_code(job, service.paused(job.job_id), service.paused_for(job.job_id))
        return UNKNOWN if job.state == "done" and not update.video_path else code

    def history(self, args: Any) -> int:
        service = self.service(run=False)
        jobs = service.recent(args.limit)
        if args.json:
            answer = [_job_dict(j, service.progress(j)) for j in jobs]
            print(json.dumps(answer, indent=2), file=self.out)
            return DONE
        if not jobs:
            self.say(f"No jobs yet in {self.settings.ledger_name}.")
        for job in jobs:
            print(printable(_history_line(job)), file=self.out)
        return DONE

    def models(self, args: Any) -> int:
        """The video models offered (the vendor's catalogue, or the bundled list, said on
        stderr): one a line (id, kind, the images it takes, price with its defaults)."""
        offer = self.service(run=False).offer()
        if args.json:
            print(json.dumps(offer.listing(), indent=2), file=self.out)
            return DONE
        if offer.note:
            self.say(offer.note)
        for item in offer.listing()["models"]:
            images = "+".join(item["inputs"]) or "text only"
            cost = item["price"]["words"] if item["price"] else "price not listed"
            line = f"{item['id']:<48} {item['kind']:<15} {images:<22} {cost}"
            print(printable(line), file=self.out)
        return DONE

    def _full_id(self, typed: str) -> str:
        """A short id (as ``history`` prints it) becomes the whole id when only one matches."""
        typed = (typed or "").strip()
        if len(typed) >= 36 or not typed:
            return typed
        found = {
            j.job_id for j in self.service(run=False).recent(1000)
            if j.job_id.removeprefix("kui-").startswith(typed.removeprefix("kui-"))
            or (j.generation_id or "").startswith(typed)
        }  # fmt: skip
        if len(found) > 1:
            raise errors.InputError(f"{typed} starts {len(found)} ids: give more of it.")
        if not found:
            raise errors.NotFoundError(
                f"No job whose id starts with {typed} is in this ledger "
                f"({self.settings.ledger_name})."
            )
        return found.pop()


def prompt(cli: Cli, args: Any) -> int:
    """``prompt``: the prompt helper's suggestion for the image and the prompt, on stdout
    (a negative prompt on a second line); its price on stderr."""
    model = (args.model or "").strip() or MODEL
    variant = "" if args.variant == "improve" else args.variant
    said = cli.service(run=False).improve_prompt(
        args.image, args.prompt, model, variant=variant, negative=True
    )
    print(printable(said.prompt), file=cli.out)
    if said.negative_prompt:
        print(printable(f"Negative: {said.negative_prompt}"), file=cli.out)
    cost = dollars(said.usd) if said.usd is not None else "its price not said"
    free = " (simulated: nothing is charged)" if cli.settings.demo_mode else ""
    cli.say(f"Suggested by {said.model} for {cost}{free}. Nothing else was sent.")
    return DONE


def request_from(args: Any) -> Request:
    """The request a command's arguments ask for, checked once here (``InputError`` in
    words) and passed whole from then on; its image is added when prepared. ``--model``
    and ``--set`` (generate's): the model and its other fields, which win over
    --negative-prompt, --duration and --no-audio (``Request.for_model``)."""
    given = {"negative_prompt": args.negative_prompt, "duration": args.duration,
             "generate_audio": not args.no_audio}  # fmt: skip
    model = (getattr(args, "model", "") or "").strip() or MODEL
    return Request.for_model(args.prompt, model, given, _options(getattr(args, "options", [])))


def _options(pairs: list[str]) -> dict[str, str]:
    """``--set FIELD=VALUE`` pairs, each value as text (the model's spec reads it)."""
    options = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise errors.InputError(f"--set takes FIELD=VALUE, like --set seed=7; not {pair!r}.")
        options[name.strip()] = value.strip()
    return options


def job_code(job: Job, paused: bool = False, why: Reason | None = None) -> int:
    """A job's exit code: done, failed (at the vendor, or refused as a request), refused for
    its key or money (at create, or paused by a poll the key was refused for), or not ended
    (yet, as far as this process knows). Read from the job's typed reason."""
    if job.state == "done":
        return DONE
    if not job.final:
        return REFUSED if paused and why is Reason.KEY_OR_MONEY else UNKNOWN
    if job.state == "not_created" and _refused_for_key_or_money(job):
        return REFUSED
    return FAILED


def _refused_for_key_or_money(job: Job) -> bool:
    """A create refused for the key or the balance (``Reason.KEY_OR_MONEY``). A row from
    before that reason was typed says "refused" and only its message tells: read as before."""
    if job.reason is Reason.KEY_OR_MONEY:
        return True
    return job.reason in (None, Reason.REFUSED) and job.message.startswith(KEY_OR_MONEY)


def _not_ended(job: Job, interrupted: bool, paused: bool) -> str:
    gid = job.shown_id
    if paused:
        why = f"{gid}: paused: {job.message.rstrip('.')}"
    elif interrupted:
        why = f"{gid}: stopped watching; the job goes on at the vendor (nothing was cancelled)"
    else:
        why = f"{gid}: still running at the vendor after the watching deadline"
    return f"{why}. Resume it with: python -m kling_ui resume {gid}"


def _labels(service: GenerationService, job_ids: list[str]) -> dict[str, str]:
    labels = {}
    for n, job_id in enumerate(job_ids, 1):
        job = service.job(job_id)
        words = (job.prompt if job else "")[:28]
        prefix = f"{n}/{len(job_ids)} " if len(job_ids) > 1 else ""
        short = job.short_id if job else job_id.removeprefix("kui-")[:8]
        labels[job_id] = f"{prefix}{short} {words}".rstrip()
    return labels


def _check_out(out: Path) -> Path:
    """The folder the videos go to, made now: a folder that can't be, before anything is
    sent, is bad input."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise errors.InputError(f"--out {out} can't be a folder for videos: {why}.") from None
    if not os.access(out, os.W_OK):
        raise errors.InputError(f"--out {out} is a folder this user can't write to.")
    return out


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Ctrl-C held back until the block ends (then raised): writing the jobs' rows and
    handing them to the runner is one step, never half done."""
    pressed: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)
    if pressed:
        raise KeyboardInterrupt


def _save(video: Path, out: Path) -> Path:
    """Copy a finished video into ``out`` under its own name; the same file again is not
    copied twice, a different one of that name gets a number."""
    out.mkdir(parents=True, exist_ok=True)
    dest = out / video.name
    n = 2
    while dest.exists():
        if dest.stat().st_size == video.stat().st_size:
            return dest.resolve()
        dest = out / f"{video.stem}-{n}{video.suffix}"
        n += 1
    shutil.copyfile(video, dest)
    return dest.resolve()


def _free(demo: bool) -> str:
    return " (simulated: nothing is charged)" if demo else ""


def _job_dict(job: Job, update: Progress) -> dict[str, Any]:
    return {
        "id": job.shown_id,
        "job_id": job.job_id,
        "state": PHASE_OF_STATE.get(job.state, job.state),
        "prompt": job.prompt,
        "negative_prompt": job.negative_prompt,
        "duration_s": job.duration,
        "generate_audio": job.generate_audio,
        "created": _when(job.created_at),
        "elapsed": clock(update.elapsed),
        "price_usd": job.estimate_usd,
        "charged_usd": update.charged_usd,
        "message": job.message,
        "video": str(update.video_path) if update.video_path else None,
        "simulated": job.backend == DEMO,
        "batch_id": job.batch_id,
        "model": job.request.model,
        "options": dict(job.request.options),
    }


def _history_line(job: Job) -> str:
    cost = job.cost_usd
    money = "" if cost is None else dollars(cost)
    phase = PHASE_OF_STATE.get(job.state, job.state)
    prompt = " ".join(job.prompt.split())[:60] or "(resumed by id)"
    demo = " (demo)" if job.backend == DEMO else ""
    return (
        f"{job.short_id}  {_when(job.created_at)}  {phase:<11} {job.duration:>2} s  "
        f"{money:>7}  {prompt}{demo}"
    )


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
