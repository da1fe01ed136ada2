"""The simulator started outside tests: demo mode's ``DemoSimulator`` (started on first use,
its jobs kept beside the app's data) and the command line,
``python -m kling_ui.simulator --port 8000`` (``__main__.py`` calls ``main``).

Imports ``server`` and ``jobs``.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
import uuid
from pathlib import Path

from .jobs import Schedule
from .server import Simulator

log = logging.getLogger(__name__)


class DemoSimulator:
    """The simulator that demo mode talks to: started on first use, its jobs kept in
    ``data_dir`` so they survive a restart of the app, behind a key of its own."""

    def __init__(self, data_dir: Path, schedule: tuple[float, float] = (3.0, 12.0)) -> None:
        self._state_path = Path(data_dir) / "demo-jobs.json"
        self._schedule = Schedule(*schedule)
        self._lock = threading.Lock()
        self._sim: Simulator | None = None
        self.key = "demo-" + uuid.uuid4().hex[:16]

    def base_url(self) -> str:
        with self._lock:
            if self._sim is None:
                self._sim = Simulator(
                    host="127.0.0.1",
                    port=0,
                    schedule=self._schedule,
                    state_path=self._state_path,
                    control_token=uuid.uuid4().hex,
                    scope_jobs_to_keys=False,
                    clips="zoom",  # the demo's videos move the visitor's own image
                    any_model=True,  # the demo offers every bundled model
                ).start()
                log.info("demo mode: simulator listening on %s", self._sim.url)
            return self._sim.url

    def stop(self) -> None:
        with self._lock:
            if self._sim is not None:
                self._sim.stop()
                self._sim = None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local simulator of the AIML video API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--queued", type=float, default=2.0, help="seconds a job stays queued")
    parser.add_argument("--generating", type=float, default=8.0, help="seconds it generates")
    parser.add_argument("--key", help="accept only this API key (default: any non-empty key)")
    parser.add_argument(
        "--clips", choices=("sample", "zoom"), default="sample",
        help="a finished job's video: the sample clip, or a zoom into the job's own image",
    )  # fmt: skip
    args = parser.parse_args(argv)
    sim = Simulator(
        args.host, args.port, api_key=args.key, schedule=Schedule(args.queued, args.generating),
        clips=args.clips,
    ).start()  # fmt: skip
    print(f"AIML API simulator on {sim.url} (Ctrl-C to stop)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        sim.stop()
