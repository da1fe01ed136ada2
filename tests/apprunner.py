"""The app under test, for the tests and the benchmarks: started as a person starts it
(``python app.py`` in a subprocess on a free port) or in this process, and called through
its API with gradio_client.

The tests import it as ``apprunner`` (pytest's ``pythonpath`` has ``tests``), the
benchmarks as ``tests.apprunner`` (the repository root on ``sys.path``). It imports
nothing heavy at the top: Gradio, gradio_client and kling_ui only where they are used.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "The meadow sways in the wind."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment minus the app's and Gradio's settings (``AIMLAPI_``, ``KLING_UI_``,
    ``GRADIO_``), unbuffered, plus ``extra``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIMLAPI_", "KLING_UI_", "GRADIO_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            response.read()
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


class Server:
    """A Python web server in a subprocess on a free port, ready when ``url + ready_path``
    answers 200 (polled every 20 ms); ``started_s`` is the time from ``Popen`` to then.

    ``{port}`` in ``argv`` becomes the port. Output goes to ``log_dir/<name>-<port>.log``.
    """

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        log_dir: Path,
        name: str = "server",
        cwd: Path = ROOT,
        ready_path: str = "",
        timeout: float = 120.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"{name}-{self.port}.log"
        self._log = self.log_path.open("w")
        argv = [a.replace("{port}", str(self.port)) for a in argv]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            deadline = t0 + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{argv} exited early:\n{self.log()}")
                if http_ok(self.url + ready_path):
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{argv} did not answer in {timeout:g} s:\n{self.log()}")
                time.sleep(0.02)
            self.started_s = time.perf_counter() - t0
        except BaseException:
            self.stop()
            raise

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def app_argv(*flags: str) -> list[str]:
    """``python app.py --port {port} [flags]``, for ``Server``."""
    return [sys.executable, str(ROOT / "app.py"), "--port", "{port}", *flags]


class AppProcess(Server):
    """``python app.py --port P [flags]`` in a subprocess, ready when ``/`` answers 200.

    The environment is ``clean_env`` plus ``KLING_UI_DATA_DIR`` and ``env``; output goes to
    a log beside the data directory.
    """

    def __init__(
        self,
        data_dir: Path,
        *flags: str,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        timeout: float = 90,
    ) -> None:
        self.data_dir = Path(data_dir)
        super().__init__(
            app_argv(*flags),
            clean_env(KLING_UI_DATA_DIR=str(data_dir), **(env or {})),
            log_dir=self.data_dir.parent,
            name="app",
            cwd=cwd,
            timeout=timeout,
        )


def launch_in_process(settings: Any) -> tuple[Any, Any]:
    """The page as ``app.py`` launches it, in this process on a free port, for ``settings``
    (a ``kling_ui.config.Settings``); returns ``(page, service)``. ``page.close()`` stops it."""
    from kling_ui.service import GenerationService
    from kling_ui.ui import build_ui, launch_options

    service = GenerationService(settings)
    page = build_ui(service, browser_secret="test-secret")
    page.queue(default_concurrency_limit=None)
    page.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        **launch_options(service, host="127.0.0.1"),
    )
    return page, service


@dataclass
class LiveApp:
    url: str
    sim: Any  # kling_ui.simulator.Simulator
    service: Any  # kling_ui.service.GenerationService
    data_dir: Path
    page: Any = None  # the gradio.Blocks, launched


@contextlib.contextmanager
def app_in_process(data_dir: Path, schedule: Any, **settings: Any) -> Iterator[LiveApp]:
    """``launch_in_process`` with a simulator on ``schedule`` (a ``Schedule``) as its API.

    ``settings`` are ``Settings`` fields besides the API's address and ``data_dir``; retries
    wait 0.01 s, a Retry-After at most 0.05 s and a lost create is looked for 3 s, unless
    they say otherwise.
    """
    from kling_ui.config import Settings
    from kling_ui.simulator import Simulator

    settings = {"retry_backoff": 0.01, "retry_after_cap": 0.05, "lookup_window": 3.0, **settings}
    with Simulator(schedule=schedule) as sim:
        page, service = launch_in_process(Settings(base_url=sim.url, data_dir=data_dir, **settings))
        try:
            yield LiveApp(page.local_url, sim, service, data_dir, page)
        finally:
            page.close()


# --- through the API ----------------------------------------------------------------------


def user_client(url: str, n: int, **options: Any) -> Any:
    """A ``gradio_client.Client`` for simulated user ``n``, who comes from an address of their
    own (``X-Forwarded-For``, which the server takes from a loopback proxy): the app gives
    each visitor a fair share, so many users must not all look like one."""
    from gradio_client import Client

    headers = {"X-Forwarded-For": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"}
    return Client(url, verbose=False, headers=headers, **options)


def submit(client: Any, image: str | Path | None, **changes: Any) -> Any:
    """Start one ``/generate`` call on a ``gradio_client.Client``: ``image`` (a path, or
    None for none), ``PROMPT``, 5 s with audio and no typed key, unless ``changes`` say
    otherwise. Returns the job."""
    from gradio_client import handle_file

    args = {
        "image": None if image is None else handle_file(str(image)),
        "prompt": PROMPT,
        "negative_prompt": "",
        "duration": 5,
        "generate_audio": True,
        "api_key": "",
    }
    args.update(changes)
    return client.submit(**args, api_name="/generate")


def generate(client: Any, image: str | Path | None, **changes: Any) -> list[tuple]:
    """Every (generation id, status text, video) update of one ``/generate`` call, to its end."""
    job = submit(client, image, **changes)
    job.result()
    return [tuple(o) for o in job.outputs()]


def spy_on_creates(monkeypatch: Any) -> list[dict]:
    """Every create body a simulator in this process receives from now on, image included
    (its own record cuts the image short): its body check, wrapped."""
    from kling_ui.simulator import vendor as simulator_module

    bodies: list[dict] = []
    check = simulator_module.validation_error

    def spy(body: Any) -> Any:
        if isinstance(body, dict):
            bodies.append(body)
        return check(body)

    monkeypatch.setattr(simulator_module, "validation_error", spy)
    return bodies
