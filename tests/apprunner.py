"""The app under test, for the tests and the benchmarks: started as a person starts it
(``python app.py`` in a subprocess) or in this process, and called through its API with
gradio_client.

Ports: nothing here picks a port by binding and closing a socket (another process may take
it in between, which parallel runs do). The app listens on port 0, the system's choice, and
says which it got: in this process Gradio's ``start_server`` is taught to read the port back
(``any_port``); a subprocess app runs as ``python tests/apprunner.py app.py --port 0 ...``,
which does the same and writes the port to ``KLING_UI_TEST_PORT_FILE``. Only ``Server`` with
``{port}`` in its argv (the benchmarks' other programs) still takes a number from
``free_port``.

The tests import it as ``apprunner`` (pytest's ``pythonpath`` has ``tests``), the
benchmarks as ``tests.apprunner`` (the repository root on ``sys.path``). It imports
nothing heavy at the top: Gradio, gradio_client and kling_ui only where they are used.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROMPT = "The meadow sways in the wind."


def free_port() -> int:
    """A port free now, by binding and closing: racy (for programs that can only take a
    number, as ``Server``'s ``{port}``); the tests' servers listen on port 0 instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def refusing_port(host: str = "127.0.0.1") -> Iterator[int]:
    """A port that refuses connections while held: bound but not listening, so no one else
    gets it, and with ``SO_REUSEADDR`` so that a server told to use it later (``http.server``
    and uvicorn set the same option) can still bind it and listen."""
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind((host, 0))
        yield held.getsockname()[1]


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
    """A Python web server in a subprocess, ready when ``url + ready_path`` answers 200
    (polled every 20 ms); ``started_s`` is the time from ``Popen`` to then.

    ``{port}`` in ``argv`` becomes a port from ``free_port``. Without it the program picks its
    own port and writes it to the file named by ``KLING_UI_TEST_PORT_FILE`` (as
    ``any_port_argv`` does). Output goes to ``log_dir/<name>-<random>.log``.
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
        zygote: Any = None,
    ) -> None:
        log_dir = Path(log_dir)
        log_dir.mkdir(parents=True, exist_ok=True)
        stem = f"{name}-{uuid.uuid4().hex[:8]}"
        self.log_path = log_dir / f"{stem}.log"
        self._log = self.log_path.open("w")
        port_file = None
        if any("{port}" in a for a in argv):
            self.port = free_port()
            argv = [a.replace("{port}", str(self.port)) for a in argv]
        else:
            port_file = log_dir / f"{stem}.port"
            env = {**(os.environ if env is None else env), PORT_FILE_ENV: str(port_file)}
        t0 = time.perf_counter()
        if zygote is not None:  # forked, with argv as the interpreter would take it
            self.proc = zygote.fork(argv[1:], env, cwd, self.log_path)
        else:
            self.proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
            )
        try:
            deadline = t0 + timeout
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{argv} exited early:\n{self.log()}")
                if port_file is not None and port_file.exists():
                    self.port = int(port_file.read_text())
                    port_file = None
                if port_file is None and http_ok(self.url + ready_path):
                    break
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{argv} did not answer in {timeout:g} s:\n{self.log()}")
                time.sleep(0.02)
            self.started_s = time.perf_counter() - t0
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

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
    """``python app.py --port {port} [flags]``, for ``Server`` (the benchmarks)."""
    return [sys.executable, str(ROOT / "app.py"), "--port", "{port}", *flags]


def any_port_argv(*flags: str) -> list[str]:
    """``python app.py --port 0 [flags]`` run through this file, which teaches Gradio port 0
    and writes the port it got to ``KLING_UI_TEST_PORT_FILE``: for ``Server``."""
    return [sys.executable, __file__, str(ROOT / "app.py"), "--port", "0", *flags]


class AppProcess(Server):
    """``python app.py --port 0 [flags]`` in a subprocess (``any_port_argv``), ready when
    ``/`` answers 200: forked from a zygote that has imported Gradio already, where the
    environment allows (``tests/zygote.py``).

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
        from zygote import zygote_for  # beside this file: the tests, not the benchmarks

        self.data_dir = Path(data_dir)
        env = clean_env(KLING_UI_DATA_DIR=str(data_dir), **(env or {}))
        super().__init__(
            any_port_argv(*flags),
            env,
            log_dir=self.data_dir.parent,
            name="app",
            cwd=cwd,
            timeout=timeout,
            zygote=zygote_for(env),
        )


PORT_FILE_ENV = "KLING_UI_TEST_PORT_FILE"


def any_port() -> None:
    """Teach Gradio's ``launch(server_port=0)`` to report the port the system gave.

    Gradio hands port 0 to uvicorn, which binds a free port, but Gradio then reports port 0
    and checks ``http://host:0/``. Wrapped, ``start_server`` reads the bound port back from
    uvicorn's socket, and writes it to ``$KLING_UI_TEST_PORT_FILE`` when that is set. Once
    per process; other ports pass through unchanged.
    """
    from gradio import http_server

    start = http_server.start_server
    if getattr(start, "any_port", False):
        return

    def start_server(*args: Any, **kwargs: Any) -> tuple[str, int, str, Any]:
        name, port, url, server = start(*args, **kwargs)
        if port == 0:
            port = server.servers[0].sockets[0].getsockname()[1]
            url = url.replace(":0/", f":{port}/")
            target = os.environ.get(PORT_FILE_ENV)
            if target:
                part = f"{target}.{os.getpid()}.part"
                Path(part).write_text(str(port))
                os.replace(part, target)
        return name, port, url, server

    start_server.any_port = True  # type: ignore[attr-defined]
    http_server.start_server = start_server


def launch_in_process(settings: Any) -> tuple[Any, Any]:
    """The page as ``app.py`` launches it, in this process on port 0 (``any_port``), for
    ``settings`` (a ``kling_ui.config.Settings``); returns ``(page, service)``.
    ``page.close()`` stops it."""
    from kling_ui.service import GenerationService
    from kling_ui.ui import build_ui, launch_options

    any_port()
    service = GenerationService(settings)
    page = build_ui(service, browser_secret="test-secret")
    page.queue(default_concurrency_limit=None)
    page.launch(
        server_name="127.0.0.1",
        server_port=0,
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


@contextlib.contextmanager
def shared_ssl_contexts() -> Iterator[None]:
    """One SSL context per setting, shared, instead of one per HTTP client: gradio_client
    opens a new httpx client for nearly every request (upload, join, each download), and
    each builds an SSL context, parsing the CA bundle again (about 30 ms of CPU), even for
    plain http on loopback. Nothing a request does changes; only the CPU it costs."""
    import threading

    import httpx._transports.default as transport

    original = transport.create_ssl_context
    made: dict[tuple, Any] = {}
    lock = threading.Lock()

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        key = (
            verify if isinstance(verify, (bool, str)) else id(verify),
            cert if cert is None or isinstance(cert, str) else id(cert),
            trust_env,
        )
        with lock:
            if key not in made:
                made[key] = original(verify=verify, cert=cert, trust_env=trust_env)
            return made[key]

    transport.create_ssl_context = shared
    try:
        yield
    finally:
        transport.create_ssl_context = original


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

    def spy(body: Any, *more: Any) -> Any:
        if isinstance(body, dict):
            bodies.append(body)
        return check(body, *more)

    monkeypatch.setattr(simulator_module, "validation_error", spy)
    return bodies


if __name__ == "__main__":
    # ``python tests/apprunner.py app.py --port 0 ...``: app.py as ``python app.py`` runs it
    # (its folder first on sys.path, its own argv), Gradio taught port 0 first.
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path[0] = str(Path(script).resolve().parent)
    any_port()
    runpy.run_path(script, run_name="__main__")
