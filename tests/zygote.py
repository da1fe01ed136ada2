"""App processes forked from a Python that has already imported Gradio, for the tests.

Each test that needs the app in a process of its own (to SIGKILL it, restart it, run three
of it) used to start ``python app.py``, and every start paid Gradio's import again: about
4 CPU-seconds, a third of the suite's CPU on a 2-core machine. Here a zygote (``python
tests/zygote.py``) imports Gradio and the app's other libraries once per test process, then
forks a child for each app asked of it. The child takes the asked environment, folder,
arguments and log, and runs ``tests/apprunner.py app.py --port 0 ...`` as ``python`` would:
a real process with its own pid, killed or stopped by signals as before.

Only the app's own settings may differ between apps forked from one zygote (``AIMLAPI_``,
``KLING_UI_``, ``SPACE_ID``): Gradio reads ``GRADIO_*``, ``TMPDIR`` and the like when it is
imported, so an app asked with other differences gets a zygote of its own (``zygote_for``).
``KLING_UI_TEST_ZYGOTE=0`` turns the forking off. The benchmarks never use it: they measure
``python app.py`` as a person starts it.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import select
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

OFF_ENV = "KLING_UI_TEST_ZYGOTE"
# What the app reads when it starts, not at import (Gradio reads SPACE_ID when asked).
READ_AT_START = ("AIMLAPI_", "KLING_UI_", "SPACE_ID")
PRELOAD = ("gradio", "gradio_client", "PIL.Image", "av", "requests", "psycopg", "psycopg_pool")


class Forked:
    """A process the zygote forked, with what ``apprunner.Server`` uses of ``Popen``. This
    process is not its parent, so a pidfd tells when it has ended and carries the signals;
    its exit status is the zygote's to collect, and ``poll`` gives -1 once it has ended."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._fd = os.pidfd_open(pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self._ended(0)

    def wait(self, timeout: float | None = None) -> int:
        if self._ended(timeout) is None:
            raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
        return -1

    def _ended(self, timeout: float | None) -> int | None:
        if self.returncode is None and select.select([self._fd], [], [], timeout)[0]:
            self.returncode = -1
            os.close(self._fd)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if self.returncode is None:
            signal.pidfd_send_signal(self._fd, signum)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


class Zygote:
    """``python tests/zygote.py`` started with ``env``: asked for an app, it forks one."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._lock = threading.Lock()
        self._proc = subprocess.Popen(
            [sys.executable, __file__],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def fork(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> Forked:
        """``argv`` as ``python`` would take it after the interpreter (the script first)."""
        job = {"argv": argv, "env": env, "cwd": str(cwd), "log": str(log)}
        with self._lock:
            assert self._proc.stdin and self._proc.stdout
            self._proc.stdin.write(json.dumps(job) + "\n")
            self._proc.stdin.flush()
            answer = self._proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the zygote has gone (exit {self._proc.poll()})")
        return Forked(json.loads(answer)["pid"])

    def close(self) -> None:
        """Its children are left alone: each test stops its own."""
        if self._proc.stdin:
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


_zygotes: dict[frozenset, Zygote] = {}
_zygotes_lock = threading.Lock()


def zygote_for(env: dict[str, str]) -> Zygote | None:
    """This process's zygote for apps with ``env``, started at first use; None when forking
    is off or ``env`` differs from the zygote's in more than the app's own settings."""
    if os.environ.get(OFF_ENV, "") == "0" or not hasattr(os, "pidfd_open"):
        return None
    base = {k: v for k, v in env.items() if not k.startswith(READ_AT_START)}
    key = frozenset(base.items())
    with _zygotes_lock:
        if key not in _zygotes:
            if not _zygotes:
                atexit.register(_close_all)
            _zygotes[key] = Zygote(base)
        return _zygotes[key]


def _close_all() -> None:
    for zygote in _zygotes.values():
        zygote.close()


# --- the zygote's own side ---------------------------------------------------------------


def _reap(*_: Any) -> None:
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _serve() -> None:
    """Imports the libraries, then forks one child per line read, answering its pid."""
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, _reap)
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(job)  # never returns
        sys.stdout.write(json.dumps({"pid": pid}) + "\n")
        sys.stdout.flush()


def _child(job: dict[str, Any]) -> None:
    """Becomes ``python SCRIPT ARGS...`` (the job's argv) with the job's environment, folder
    and log, then exits as that program would (its atexit work done)."""
    code: Any = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.chdir(job["cwd"])
        os.environ.clear()
        os.environ.update(job["env"])
        log = os.open(job["log"], os.O_WRONLY | os.O_APPEND)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the zygote's reader had its lines
        script = job["argv"][0]
        sys.argv = list(job["argv"])
        sys.path[0] = str(Path(script).resolve().parent)  # as ``python script`` has it
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code
    except BaseException:  # noqa: BLE001 - printed to the log, as Python would
        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code if isinstance(code, int) else (0 if code is None else 1))


if __name__ == "__main__":
    _serve()
