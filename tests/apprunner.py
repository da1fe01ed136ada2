"""Running the app as a person does, for the tests: ``python app.py`` on a free port.

One place for the free-port helper and the subprocess runner that the browser, restart
and fault suites share.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppProcess:
    """``python app.py --port P [flags]`` in a subprocess, ready when ``/`` answers 200.

    The environment is the test's own less any ``AIMLAPI_``, ``KLING_UI_`` and ``GRADIO_``
    variables, plus ``KLING_UI_DATA_DIR`` and ``env``; output goes to a log beside the
    data directory.
    """

    def __init__(
        self,
        data_dir: Path,
        *flags: str,
        env: dict[str, str] | None = None,
        cwd: Path = ROOT,
        timeout: float = 90,
    ) -> None:
        self.port = free_port()
        self.data_dir = Path(data_dir)
        self.url = f"http://127.0.0.1:{self.port}/"
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIMLAPI_", "KLING_UI_", "GRADIO_"))
        }
        full_env.update(KLING_UI_DATA_DIR=str(data_dir), **(env or {}))
        self.log_path = Path(data_dir).parent / f"app-{self.port}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(self.port), *flags],
            cwd=cwd,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app.py exited early:\n{self.log()}")
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"app.py did not answer within {timeout:g} s:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as in a crash."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
