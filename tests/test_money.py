"""Issue 12 through the app: the price before Generate, the charge after, the balance, and
budgets for the server's own key. The simulator is the vendor over real HTTP: it quotes the
price in its catalogue, keeps a balance per key, and reports each job's charge. (The price
book alone, the catalogue's cache and its fallback table: tests/test_pricing.py.)"""

from __future__ import annotations

import time

import pytest
from apprunner import app_in_process, user_client
from test_ui import Tab

from kling_ui.config import BadSetting, Settings, settings_from_env
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault, Schedule
from kling_ui.ui import Handlers

pytestmark = pytest.mark.timeout(180)

SERVER_KEY = "sk-money-server-key-1"
TYPED = "sk-money-typed-key-2"
DAY = 86400.0


class Clock:
    """Wall-clock time that a test can move on by whole days."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def clock() -> Clock:
    return Clock()


def service_for(simulator, tmp_path, clock, **settings) -> GenerationService:
    options = {"base_url": simulator.url, "api_key": SERVER_KEY, "data_dir": tmp_path,
               "poll_interval": 0.05, **settings}  # fmt: skip
    return GenerationService(Settings(**options), clock=clock)


def run(service, photo, *, owner="browser:a", key=None, seconds=5, audio=True):
    asked = Request.make("Waves.", duration=seconds, generate_audio=audio)
    return list(service.generate(photo, asked, api_key=key, owner=owner))[-1]


def test_the_price_of_every_request_through_the_api(tmp_path):
    """`/estimate(duration, generate_audio, count)`, as the catalogue quotes it."""
    with app_in_process(tmp_path, Schedule(0.1, 0.2), api_key=SERVER_KEY) as app:
        client = user_client(app.url, 1)
        cases = [(5, True, 1, 0.70), (10, True, 1, 1.40), (5, False, 1, 0.35),
                 (10, False, 1, 0.70), (10, True, 12, 16.80), (5, False, 3, 1.05)]  # fmt: skip
        for duration, audio, count, usd in cases:
            answer = client.predict(duration, audio, count, api_name="/estimate")
            assert answer["usd"] == pytest.approx(usd), (duration, audio, count, answer)
            assert answer["usd_per_second"] == pytest.approx(0.14 if audio else 0.07)
            assert answer["source"] == "catalogue" and answer["as_of"]
        assert client.predict(10, True, 12, api_name="/estimate")["words"] == (
            "10 s with audio: $1.40; batch of 12: $16.80"
        )
        assert "error" in client.predict(7, True, 1, api_name="/estimate")


def test_the_charge_is_recorded_after_completion_and_a_failed_job_costs_nothing(
    simulator, tmp_path, photo, clock
):
    service = service_for(simulator, tmp_path, clock)
    try:
        done = run(service, photo, seconds=10)
        job = service.entry(done.generation_id)
        assert job.estimate_usd == pytest.approx(1.40)
        assert job.charged_usd == pytest.approx(simulator.charge(done.generation_id))
        assert service.status(done.generation_id)["charged_usd"] == pytest.approx(1.40)
        simulator.script_outcome("error")
        failed = run(service, photo)
        assert failed.phase == "failed" and failed.charged_usd == 0
        job = service.entry(failed.generation_id)
        assert job.estimate_usd == pytest.approx(0.70) and job.charged_usd == 0
        assert simulator.balance(SERVER_KEY) == pytest.approx(100 - 1.40)
    finally:
        service.close()


def test_the_daily_budget_refuses_with_nothing_sent_and_renews_the_next_day(
    simulator, tmp_path, photo, clock
):
    service = service_for(simulator, tmp_path, clock, daily_budget_usd=1.50)
    try:
        assert run(service, photo).phase == "completed"
        assert run(service, photo, owner="browser:b").phase == "completed"  # $1.40 of $1.50
        with pytest.raises(Exception, match=r"daily budget .* is \$1\.50") as refused:
            run(service, photo, owner="browser:c")
        assert "midnight UTC" in str(refused.value) and simulator.creates == 2
        # A batch that would pass it is refused whole.
        with pytest.raises(Exception, match="daily budget"):
            service.batch([photo], "One.", takes=1, owner="browser:c")
        # A typed key is its owner's money: not counted, not refused.
        assert run(service, photo, owner="browser:c", key=TYPED).phase == "completed"
        assert simulator.creates == 3
    finally:
        service.close()
    # The budget survives a restart (it lives in the ledger), and renews the next UTC day.
    again = service_for(simulator, tmp_path, clock, daily_budget_usd=1.50)
    try:
        with pytest.raises(Exception, match="daily budget"):
            run(again, photo)
        clock.offset += DAY
        assert run(again, photo).phase == "completed" and simulator.creates == 4
    finally:
        again.close()


def test_each_visitor_has_a_budget_and_a_number_of_jobs_an_hour(simulator, tmp_path, photo, clock):
    service = service_for(simulator, tmp_path, clock, visitor_daily_budget_usd=1.10,
                          visitor_jobs_per_hour=2)  # fmt: skip
    try:
        assert run(service, photo, owner="browser:a").phase == "completed"  # $0.70
        with pytest.raises(Exception, match=r"\$1\.10 a day .* used \$0\.70"):
            run(service, photo, owner="browser:a")  # $1.40 would pass $1.10
        assert run(service, photo, owner="browser:a", audio=False).phase == "completed"
        assert run(service, photo, owner="browser:b").phase == "completed"  # not held back
        clock.offset += DAY  # a new day, and more than an hour later
        for _ in range(2):
            assert run(service, photo, owner="browser:a", audio=False).phase == "completed"
        with pytest.raises(Exception, match="2 videos an hour"):
            run(service, photo, owner="browser:a", audio=False)
        clock.offset += 3600
        assert run(service, photo, owner="browser:a", audio=False).phase == "completed"
        assert simulator.creates == 6
    finally:
        service.close()


def test_a_balance_below_the_price_asks_for_a_second_press(simulator, tmp_path, photo):
    settings = Settings(base_url=simulator.url, api_key=SERVER_KEY, data_dir=tmp_path,
                        poll_interval=0.05)  # fmt: skip
    service = GenerationService(settings)
    service.balance_fresh = 0.0  # every click reads the balance anew
    tab = Tab(Handlers(service))
    simulator.set_balance(0.50, key=SERVER_KEY)
    five = {"duration": 5, "generate_audio": True}  # the form's fields a price reads
    assert "balance $0.50 (below the price)" in tab.price_view(five, "")
    (only,) = list(tab.generate(photo, "Waves.", "", 5, True, ""))
    assert only[1].startswith("Status: not sent") and "balance is $0.50" in only[1]
    assert "Press Generate again" in only[1] and simulator.creates == 0
    *_, last = list(tab.generate(photo, "Waves.", "", 5, True, ""))
    assert last[1].startswith("Status: completed") and simulator.creates == 1
    # A batch too: its price is all its videos'.
    refused = tab.batch([photo], "One.\nTwo.", "", 5, True, 1, "")
    assert refused["items"] == [] and "Press Queue the batch again" in refused["error"]
    assert len(tab.batch([photo], "One.\nTwo.", "", 5, True, 1, "")["items"]) == 2
    # The balance endpoint down never blocks a click.
    simulator.script_outage("billing", Fault.drop())
    *_, last = list(tab.generate(photo, "Waves.", "", 5, True, ""))
    assert last[1].startswith("Status: completed") and simulator.creates >= 3


def test_the_status_and_the_history_show_price_and_charge(simulator, tmp_path, photo):
    settings = Settings(base_url=simulator.url, api_key=SERVER_KEY, data_dir=tmp_path,
                        poll_interval=0.05)  # fmt: skip
    tab = Tab(Handlers(GenerationService(settings)))
    simulator.script_outcome("never")
    updates = tab.generate(photo, "Waves.", "", 10, True, "")
    first = next(updates)
    assert "Cost: price $1.40 (estimate" in first[1]
    history, shown, _, _ = tab.sync(first[0], [], "UTC|0")
    assert "· $1.40 est. ·" in shown[0]
    updates.close()
    *_, done = list(tab.generate(photo, "Waves.", "", 5, False, ""))
    assert "Cost: $0.35" in done[1]
    simulator.script_outcome("error")
    *_, failed = list(tab.generate(photo, "Waves.", "", 5, True, ""))
    assert "Cost: $0.00 (no video was made" in failed[1]
    _, shown, _, _ = tab.sync(failed[0], history, "UTC|0")
    assert "· $0.00 ·" in shown[0]


def test_a_space_shares_its_key_within_a_daily_budget(simulator, tmp_path):
    locked = Settings(on_space=True, api_key=SERVER_KEY)
    assert locked.require_user_key and locked.shared_key_locked
    budget = Settings(on_space=True, api_key=SERVER_KEY, daily_budget_usd=5.0,
                      base_url=simulator.url, data_dir=tmp_path)  # fmt: skip
    assert not budget.require_user_key and budget.shared_key_in_use
    # Its visitors are never told the owner's balance.
    simulator.set_balance(0.10, key=SERVER_KEY)
    service = GenerationService(budget, start=False)
    five = {"duration": 5, "generate_audio": True}
    assert service.low_balance("", five) is None
    assert "balance" not in Handlers(service).price_view(five, "")


@pytest.mark.parametrize("name", ["KLING_UI_DAILY_BUDGET_USD", "KLING_UI_VISITOR_DAILY_BUDGET_USD",
                                  "KLING_UI_VISITOR_JOBS_PER_HOUR"])  # fmt: skip
@pytest.mark.parametrize("raw", ["$10", "-1", "2.5x", "ten"])
def test_a_budget_that_cant_be_read_stops_the_app_instead_of_lifting_the_limit(name, raw):
    with pytest.raises(BadSetting, match=name):
        settings_from_env({name: raw})
    if name == "KLING_UI_VISITOR_JOBS_PER_HOUR":
        with pytest.raises(BadSetting):
            settings_from_env({name: "2.5"})


def test_a_zero_catalogue_price_counts_as_the_tables_against_a_budget(
    simulator, tmp_path, photo, clock
):
    """A catalogue that quotes $0 must not make the server's key free to spend."""
    simulator.script_pricing({"kind": "variants", "currency": "USD", "variants": [
        {"when": {"generate_audio": True}, "price": 0, "unit": "second", "per": 1}]})  # fmt: skip
    service = service_for(simulator, tmp_path, clock, daily_budget_usd=1.50)
    try:
        the_tables = pytest.approx(0.70)
        assert service.estimate({"duration": 5, "generate_audio": True}).usd == the_tables
        assert run(service, photo).phase == "completed"
        assert run(service, photo, owner="browser:b").phase == "completed"
        with pytest.raises(Exception, match="daily budget"):
            run(service, photo, owner="browser:c")
        assert simulator.creates == 2
    finally:
        service.close()


def test_a_second_press_confirms_only_what_it_was_warned_of(simulator, tmp_path, photo):
    """A warning about a $0.70 video once let a $33.60 batch through: a press confirms the
    same visitor, key, price and count, and a batch asks for its own."""
    settings = Settings(base_url=simulator.url, api_key=SERVER_KEY, data_dir=tmp_path,
                        poll_interval=0.05)  # fmt: skip
    service = GenerationService(settings)
    service.balance_fresh = 0.0
    handlers = Handlers(service)
    tab, other_tab = Tab(handlers), Tab(handlers)
    simulator.set_balance(0.50, key=SERVER_KEY)
    simulator.set_balance(0.50, key=TYPED)
    (only,) = list(tab.generate(photo, "Waves.", "", 5, True, ""))
    assert only[1].startswith("Status: not sent")
    # The batch after the video's warning is warned of itself, and nothing is sent.
    refused = tab.batch([photo], "One.\nTwo.", "", 5, True, 1, "")
    assert refused["items"] == [] and "Press Queue the batch again" in refused["error"]
    # Another price (10 s), another key, another browser: each its own question.
    (only,) = list(tab.generate(photo, "Waves.", "", 10, True, ""))
    assert only[1].startswith("Status: not sent")
    (only,) = list(tab.generate(photo, "Waves.", "", 10, True, TYPED))
    assert only[1].startswith("Status: not sent")
    (only,) = list(other_tab.generate(photo, "Waves.", "", 10, True, ""))
    assert only[1].startswith("Status: not sent")
    assert simulator.creates == 0
    # The same question again is the confirmation.
    *_, last = list(tab.generate(photo, "Waves.", "", 10, True, TYPED))
    assert last[1].startswith("Status: completed") and simulator.creates == 1
    service.close()
