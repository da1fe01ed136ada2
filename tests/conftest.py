"""Shared fixtures: the simulator on a free loopback port, fast enough for tests."""

from __future__ import annotations

import pytest

from kling_ui.simulator import Schedule, Simulator


@pytest.fixture
def simulator():
    with Simulator(schedule=Schedule(queued_s=0.2, generating_s=0.3)) as sim:
        yield sim
