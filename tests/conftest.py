"""Shared fixtures: the simulator on a free loopback port, fast enough for tests; the app
launched in this process; a photo to upload; a fake clock; a port that refuses connections;
a short temporary folder for programs that put sockets in theirs.

And how the suite runs in parallel (pytest-xdist, ``--dist loadgroup`` in pyproject.toml):
``pytest_collection_modifyitems`` keeps a file's tests on one worker when they share a
fixture wider than a test, and puts the longest work first."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import apprunner
import pytest
from apprunner import LiveApp, app_in_process
from browsing import browser, chromium, page  # noqa: F401  (fixtures for every suite)
from gradio_client import Client
from pg import pg_cluster, pg_url  # noqa: F401  (a throwaway PostgreSQL, for those that ask)
from PIL import Image

from kling_ui.simulator import Schedule, Simulator

APP_KEY = "sk-app-server-key-5d1e"
SHARED_SCOPES = ("module", "class", "package")


def _shares_a_fixture(item: pytest.Item) -> bool:
    """Whether the test uses a fixture made once for several tests of its file."""
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.values() if info else ()
    return any(d and d[-1].scope in SHARED_SCOPES for d in defs)


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """For pytest-xdist: a file whose tests share an app, a simulator or a browser (module
    fixtures) is one group, run on one worker, so it starts them once; other tests spread
    one by one. Longest work first, so that the last minutes are not one long file on one
    worker while the other idles: files with slow or browser tests, then the other groups,
    then the tests that spread (``--no-loadscope-reorder`` keeps this order). A file's
    tests keep their order."""
    files: dict[str, list[pytest.Item]] = {}
    for item in items:
        files.setdefault(item.nodeid.split("::")[0], []).append(item)
    grouped = {name for name, tests in files.items() if any(map(_shares_a_fixture, tests))}
    for name in grouped:
        for test in files[name]:
            test.add_marker(pytest.mark.xdist_group(name))

    def longest_first(name: str) -> int:
        if any(t.get_closest_marker("browser") or t.get_closest_marker("slow")
               for t in files[name]):  # fmt: skip
            return 0
        return 1 if name in grouped else 2

    items[:] = [t for name in sorted(files, key=longest_first) for t in files[name]]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto``: one worker per core. The tests mostly wait, and one more worker than
    the cores filled the 2-core CI machine's CPU (8.2-8.9 min against 10.9 before the zygote
    and the leaner browser); but the browser tests, which wait on a page's next step, then
    failed now and then for want of CPU (two in a fresh clone's run, one a race of the page
    itself that one worker per core had never shown), and two per core failed more: a
    suite that passes every time comes first. ``PYTEST_XDIST_AUTO_NUM_WORKERS`` decides
    when set."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # xdist's own hook reads it
    return len(os.sched_getaffinity(0))


class FakeClock:
    """A clock for ``clock=`` and its ``sleep`` for ``sleep=``: sleeping moves it on at once."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="session", autouse=True)
def _cheap_http_clients() -> Iterator[None]:
    """gradio_client's many short-lived httpx clients share SSL contexts (CPU only)."""
    with apprunner.shared_ssl_contexts():
        yield


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections, held for the test: a server asked to use it
    later can still take it (``apprunner.refusing_port``)."""
    with apprunner.refusing_port() as port:
        yield port


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A folder of the test's own with a short path, in the system's temporary folder, that
    other users may pass through (mode 711), removed after: a ``TMPDIR`` for programs that
    put sockets there (a socket's path has at most 107 bytes; Chromium's and PostgreSQL's
    go under ``TMPDIR``) or run PostgreSQL as its own user (``pg.Cluster``)."""
    folder = Path(tempfile.mkdtemp(prefix="kling-"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def photo(tmp_path_factory) -> str:
    """A plain 800x600 JPEG that every check accepts, for tests whose point is not the picture.
    One file for the session: nothing writes to it."""
    path = tmp_path_factory.mktemp("photo") / "photo.jpg"
    Image.new("RGB", (800, 600), (40, 160, 90)).save(path, quality=90)
    return str(path)


@pytest.fixture
def simulator():
    with Simulator(schedule=Schedule(queued_s=0.2, generating_s=0.3)) as sim:
        yield sim


@pytest.fixture(scope="module")
def _app_module(tmp_path_factory) -> Iterator[LiveApp]:
    """The whole page, launched in this process, with the simulator as its API."""
    data_dir = tmp_path_factory.mktemp("app-data")
    schedule = Schedule(queued_s=0.4, generating_s=0.8)
    with app_in_process(data_dir, schedule, api_key=APP_KEY, poll_interval=0.2) as app:
        yield app


@pytest.fixture
def live_app(_app_module):
    _app_module.sim.reset()
    return _app_module


@pytest.fixture(scope="module")
def client(_app_module) -> Client:
    """gradio_client on this module's app, its jobs sped up for the module (0.05 s queued,
    0.15 s generating); videos are left on the server (``download_files=False``)."""
    _app_module.sim.set_schedule(Schedule(queued_s=0.05, generating_s=0.15))
    return Client(_app_module.url, verbose=False, download_files=False)
