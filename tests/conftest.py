"""Shared fixtures: the simulator on a free loopback port, fast enough for tests; the app
launched in this process; a photo to upload; a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apprunner import LiveApp, app_in_process
from browsing import browser, chromium, page  # noqa: F401  (fixtures for every suite)
from gradio_client import Client
from pg import pg_cluster, pg_url  # noqa: F401  (a throwaway PostgreSQL, for those that ask)
from PIL import Image

from kling_ui.simulator import Schedule, Simulator

APP_KEY = "sk-app-server-key-5d1e"


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


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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
