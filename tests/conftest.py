"""Shared fixtures: the simulator on a free loopback port, fast enough for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from apprunner import free_port
from browsing import browser, chromium, page  # noqa: F401  (fixtures for every suite)

from kling_ui.simulator import Schedule, Simulator

APP_KEY = "sk-app-server-key-5d1e"


@pytest.fixture
def simulator():
    with Simulator(schedule=Schedule(queued_s=0.2, generating_s=0.3)) as sim:
        yield sim


@dataclass
class LiveApp:
    url: str
    sim: Simulator
    service: object
    data_dir: Path


@pytest.fixture(scope="module")
def _app_module(tmp_path_factory):
    """The whole page, launched in this process, with the simulator as its API."""
    from kling_ui.config import Settings
    from kling_ui.service import GenerationService
    from kling_ui.ui import build_ui, launch_options

    data_dir = tmp_path_factory.mktemp("app-data")
    with Simulator(schedule=Schedule(queued_s=0.4, generating_s=0.8)) as sim:
        settings = Settings(
            base_url=sim.url,
            api_key=APP_KEY,
            data_dir=data_dir,
            poll_interval=0.2,
            retry_backoff=0.01,
            retry_after_cap=0.05,
        )
        service = GenerationService(settings)
        page = build_ui(service, browser_secret="test-secret")
        page.queue(default_concurrency_limit=None)
        page.launch(
            server_name="127.0.0.1",
            server_port=free_port(),
            prevent_thread_lock=True,
            **launch_options(service),
            quiet=True,
        )
        try:
            yield LiveApp(page.local_url, sim, service, data_dir)
        finally:
            page.close()


@pytest.fixture
def live_app(_app_module):
    _app_module.sim.reset()
    return _app_module
