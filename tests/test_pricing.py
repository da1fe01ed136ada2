"""The price before Generate, the balance, and the charge after: ``pricing`` against the
simulator's catalogue and billing over real loopback HTTP (nothing patched)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from conftest import FakeClock

from kling_ui import errors
from kling_ui.config import MODEL, Settings
from kling_ui.pricing import (
    BALANCE_TIMEOUT,
    CACHE_NAME,
    REFRESH_EVERY,
    RETRY_EVERY,
    TABLE_PATH,
    Charge,
    PriceBook,
    PriceTable,
    parse_pricing,
    reported_charge,
)
from kling_ui.request import Request
from kling_ui.simulator import USD_PER_SECOND, Fault, Schedule, Simulator

DAY = REFRESH_EVERY
TABLE = json.loads(TABLE_PATH.read_text())
AUTH = {"Authorization": "Bearer k"}
TABLE_USD = {True: 0.14, False: 0.07}  # the shipped table: dollars a second, audio or not


def price_book(sim, data_dir: Path, clock: FakeClock, **options) -> PriceBook:
    return PriceBook(Settings(base_url=sim.url, data_dir=data_dir), clock=clock, **options)


def asks(sim) -> list:
    """The catalogue requests the simulator received."""
    return sim.requests_to("/v1/models")


def date_of(clock: FakeClock) -> str:
    return datetime.fromtimestamp(clock(), timezone.utc).date().isoformat()


def create(sim, headers=AUTH, **changes) -> requests.Response:
    body = {"model": MODEL, "prompt": "A boat drifts.", "image_url": "https://example.com/a.jpg"}
    return requests.post(
        sim.url + "/v2/video/generations", json={**body, **changes}, headers=headers, timeout=5
    )


@pytest.fixture
def book(simulator, tmp_path, clock) -> PriceBook:
    return price_book(simulator, tmp_path, clock)


# --- the price before Generate -----------------------------------------------------------


@pytest.mark.parametrize("count", [1, 3, 12])
@pytest.mark.parametrize("generate_audio", [True, False])
@pytest.mark.parametrize("duration", [5, 10])
def test_price_of_each_duration_audio_and_count_from_the_catalogue(
    book, clock, duration, generate_audio, count
):
    each = USD_PER_SECOND[generate_audio] * duration
    estimate = book.estimate({"duration": duration, "generate_audio": generate_audio}, count)
    assert estimate.usd == pytest.approx(each * count)
    assert estimate.usd_each == pytest.approx(each)
    assert estimate.usd_per_second == pytest.approx(USD_PER_SECOND[generate_audio])
    assert (estimate.source, estimate.as_of, estimate.kind) == (
        "catalogue",
        date_of(clock),
        "variants",
    )
    audio = "with audio" if generate_audio else "without audio"
    words = f"{duration} s {audio}: ${each:.2f}"
    if count > 1:
        words += f"; batch of {count}: ${each * count:.2f}"
    assert estimate.words() == words


@pytest.mark.parametrize(
    "duration, generate_audio, count, words",
    [
        (10, True, 1, "10 s with audio: $1.40"),
        (10, True, 12, "10 s with audio: $1.40; batch of 12: $16.80"),
        (5, False, 2, "5 s without audio: $0.35; batch of 2: $0.70"),
    ],
)
def test_the_words_beside_generate(book, duration, generate_audio, count, words):
    assert (
        book.estimate({"duration": duration, "generate_audio": generate_audio}, count).words()
        == words
    )


def test_the_estimate_api_answer_has_the_documented_fields(book, clock):
    answer = book.estimate({"duration": "10", "generate_audio": True}, 12).as_dict()
    assert answer["usd"] == pytest.approx(16.8) and answer["usd_per_second"] == 0.14
    assert (answer["source"], answer["as_of"]) == ("catalogue", date_of(clock))
    assert json.loads(json.dumps(answer)) == answer


@pytest.mark.parametrize(
    "duration, generate_audio, count",
    [(7, True, 1), (True, True, 1), (5, "yes", 1), (5, True, 0), (5, True, True), (5, True, 1.5)],
)
def test_a_request_the_page_could_not_send_is_refused_in_words(
    book, duration, generate_audio, count
):
    with pytest.raises(errors.InputError):
        book.estimate({"duration": duration, "generate_audio": generate_audio}, count)


def test_a_request_is_quoted_as_its_fields_are(book):
    request = Request.make("a cat", duration=10, generate_audio=False)
    assert book.estimate(request, 3) == book.estimate({"duration": 10, "generate_audio": False}, 3)
    assert book.estimate(request).words() == "10 s without audio: $0.70"


def test_fields_left_out_take_the_models_defaults_and_unknown_ones_are_refused(book):
    assert book.estimate({}) == book.estimate({"duration": 5, "generate_audio": True})
    with pytest.raises(errors.InputError, match="no setting named 'seed'"):
        book.estimate({"duration": 5, "seed": 1})


# --- when the catalogue can't help: the shipped table ---------------------------------


def test_the_shipped_table_names_its_date_and_source():
    table = PriceTable.load()
    assert TABLE["model"] == MODEL
    assert table.as_of == TABLE["as_of"] and datetime.fromisoformat(table.as_of)
    assert "issue 12" in table.source and "catalogue" in table.source
    assert table.sheet.usd_each({"duration": 10, "generate_audio": True}) == pytest.approx(1.4)
    assert table.sheet.usd_each({"duration": 5, "generate_audio": False}) == pytest.approx(0.35)


@pytest.mark.parametrize(
    "table",
    [
        {"as_of": "2026-11-25", "pricing": {"kind": "variants", "variants": []}},
        {"as_of": "late November", "pricing": TABLE["pricing"]},
        {"pricing": TABLE["pricing"]},
    ],
    ids=["no-rates", "no-date", "undated"],
)
def test_a_table_without_a_price_or_a_date_is_refused_when_loaded(tmp_path, table):
    path = tmp_path / "table.json"
    path.write_text(json.dumps(table))
    with pytest.raises(ValueError):
        PriceTable.load(path)


def test_an_unreachable_catalogue_gives_the_table_with_its_date(tmp_path, clock):
    with Simulator() as sim:
        url = sim.url
    book = PriceBook(Settings(base_url=url, data_dir=tmp_path), clock=clock)
    estimate = book.estimate({"duration": 10, "generate_audio": True})
    assert (estimate.source, estimate.as_of) == ("table", TABLE["as_of"])
    assert estimate.usd == pytest.approx(1.4)
    assert (
        estimate.words() == f"10 s with audio: $1.40 (estimate, from the table of {TABLE['as_of']})"
    )


@pytest.mark.parametrize(
    "fault",
    [Fault.status(503), Fault.status(404), Fault.drop(), Fault.non_json(200), Fault.slow(3)],
    ids=["503", "404", "drop", "html", "slow"],
)
def test_a_failing_catalogue_gives_the_table(simulator, tmp_path, clock, fault):
    simulator.script_outage("catalogue", fault)
    book = price_book(simulator, tmp_path, clock, catalogue_timeout=(1.0, 0.5))
    started = time.monotonic()
    estimate = book.estimate({"duration": 5, "generate_audio": True}, 3)
    assert time.monotonic() - started < 2.5
    assert estimate.source == "table" and "estimate, from the table of" in estimate.words()
    assert not (tmp_path / CACHE_NAME).exists()


@pytest.mark.parametrize(
    "pricing",
    [
        None,
        {"kind": "fixed", "currency": "USD", "units": [
            {"name": "token", "measure": "output", "price": 3.25, "per": 1000000}]},
        {"kind": "variants", "currency": "USD", "dimensions": ["resolution"], "variants": [
            {"when": {"resolution": "720p"}, "price": 0.39, "unit": "second", "per": 1}]},
        {"kind": "variants", "currency": "USD", "variants": [
            {"when": {"generate_audio": True}, "price": 0.14, "unit": "second"}]},  # no per
        {"kind": "variants", "currency": "EUR", "variants": [
            {"when": {"generate_audio": True}, "price": 0.14, "unit": "second", "per": 1}]},
        {"kind": "auction", "currency": "USD"},
        {"kind": "fixed", "currency": "USD", "units": []},
        {"kind": "fixed", "currency": "USD", "units": [
            {"name": "second", "price": -1, "per": 1}]},
    ],
    ids=["none", "tokens", "resolution", "no-per", "euro", "unknown-kind", "no-units", "negative"],
)  # fmt: skip
def test_a_catalogue_with_no_usable_price_gives_the_table(simulator, book, pricing):
    simulator.script_pricing(pricing)
    assert book.estimate({"duration": 10, "generate_audio": True}).source == "table"
    assert len(asks(simulator)) == 1


@pytest.mark.parametrize(
    "pricing",
    [
        {"kind": "variants", "currency": "USD", "variants": [
            {"when": {"generate_audio": True}, "price": 0, "unit": "second", "per": 1},
            {"when": {"generate_audio": False}, "price": "0.00", "unit": "second", "per": 1}]},
        {"kind": "fixed", "currency": "USD", "units": [{"name": "second", "price": 0, "per": 1}]},
        {"kind": "variants", "currency": "USD", "variants": [
            {"when": {"generate_audio": True}, "unit": "second", "per": 1}]},  # no price
    ],
    ids=["zero-variants", "zero-fixed", "missing"],
)  # fmt: skip
def test_a_zero_or_missing_catalogue_price_is_not_known_and_the_table_answers(
    simulator, book, pricing
):
    """A $0 quote is no quote: budgets would take the video as free."""
    simulator.script_pricing(pricing)
    for audio in (True, False):
        estimate = book.estimate({"duration": 5, "generate_audio": audio})
        assert estimate.source == "table"
        assert estimate.usd == pytest.approx(TABLE_USD[audio] * 5) and estimate.usd > 0


def test_variants_that_miss_this_request_give_the_table_for_it_alone(simulator, book):
    simulator.script_pricing({"kind": "variants", "currency": "USD", "variants": [
        {"when": {"generate_audio": True}, "price": 0.2, "unit": "second", "per": 1},
    ]})  # fmt: skip
    assert book.estimate({"duration": 5, "generate_audio": True}).source == "catalogue"
    assert book.estimate({"duration": 5, "generate_audio": True}).usd == pytest.approx(1.0)
    assert book.estimate({"duration": 5, "generate_audio": False}).source == "table"


# --- the kinds of price ------------------------------------------------------------------


def test_a_variable_price_is_not_known_in_advance(simulator, book, clock):
    simulator.script_pricing("variable")
    estimate = book.estimate({"duration": 10, "generate_audio": True}, 12)
    assert (estimate.usd, estimate.usd_each, estimate.usd_per_second) == (None, None, None)
    assert (estimate.source, estimate.kind, estimate.as_of) == (
        "catalogue",
        "variable",
        date_of(clock),
    )
    assert estimate.words() == "10 s with audio: price not known in advance (a batch of 12)"
    assert estimate.as_dict()["usd"] is None


def test_a_fixed_price_is_the_same_with_or_without_audio(simulator, book):
    simulator.script_pricing("fixed")
    assert (
        book.estimate({"duration": 10, "generate_audio": True}).usd
        == book.estimate({"duration": 10, "generate_audio": False}).usd
        == pytest.approx(1.4)
    )
    assert book.estimate({"duration": 10, "generate_audio": False}).kind == "fixed"


def test_variants_are_matched_on_the_requests_own_fields(simulator, book):
    simulator.script_pricing({"kind": "variants", "currency": "USD",
        "dimensions": ["generate_audio", "duration"], "variants": [
        {"when": {"generate_audio": True, "duration": 5}, "price": 0.8, "unit": "video", "per": 1},
        {"when": {"generate_audio": True, "duration": 10}, "price": 1.5, "unit": "video", "per": 1},
        {"when": {"generate_audio": "false", "duration": "10s"}, "price": 70, "unit": "second",
         "per": 1000},
        {"when": {"generate_audio": False}, "price": 0.05, "unit": "second", "per": 1},
    ]})  # fmt: skip
    assert book.estimate({"duration": 5, "generate_audio": True}).usd == pytest.approx(0.8)
    assert book.estimate({"duration": 10, "generate_audio": True}, 2).usd == pytest.approx(3.0)
    assert book.estimate({"duration": 10, "generate_audio": True}).usd_per_second == pytest.approx(
        0.15
    )
    assert book.estimate({"duration": 10, "generate_audio": False}).usd == pytest.approx(
        0.7
    )  # the more specific variant
    assert book.estimate({"duration": 5, "generate_audio": False}).usd == pytest.approx(0.25)


@pytest.mark.parametrize(
    "block, duration, audio, usd",
    [
        ({"kind": "fixed", "units": [{"name": "second", "price": 14, "per": 100}]}, 10, True, 1.4),
        ({"kind": "fixed", "units": [{"name": "video", "price": "2.10", "per": 1},
                                     {"name": "second", "price": 0.01, "per": 1}]}, 5, True, 2.15),
        ({"kind": "variants", "variants": [
            {"when": {"generate_audio": True}, "price": 1, "unit": "second", "per": 10},
            {"when": {"generate_audio": True}, "price": 2, "unit": "second", "per": 10}]},
         5, True, 1.0),  # two equal matches: the dearer
    ],
)  # fmt: skip
def test_price_is_always_read_with_per(block, duration, audio, usd):
    sheet = parse_pricing(block)
    assert sheet is not None and sheet.usd_each(
        {"duration": duration, "generate_audio": audio}
    ) == pytest.approx(usd)


# --- the catalogue is asked at most daily, conditionally, and kept -----------------------


def test_the_catalogue_is_asked_at_most_once_a_day(simulator, book, clock):
    for _ in range(5):
        book.estimate({"duration": 5, "generate_audio": True})
    assert len(asks(simulator)) == 1
    clock.now += DAY - 1
    book.estimate({"duration": 10, "generate_audio": False}, 4)
    assert len(asks(simulator)) == 1
    clock.now += 1
    book.estimate({"duration": 5, "generate_audio": True})
    assert len(asks(simulator)) == 2


def test_the_first_ask_is_by_id_with_pricing_and_unconditional(simulator, book):
    book.estimate({"duration": 5, "generate_audio": True})
    (ask,) = asks(simulator)
    assert ask.query == {"id": MODEL, "include": "pricing"}
    assert "if-none-match" not in ask.headers and "authorization" not in ask.headers


def test_an_unchanged_catalogue_answers_304_and_the_cache_is_reused(simulator, tmp_path, clock):
    statuses: list[int] = []
    session = requests.Session()
    session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
    book = price_book(simulator, tmp_path, clock, session=session)
    book.estimate({"duration": 5, "generate_audio": True})
    etag = json.loads((tmp_path / CACHE_NAME).read_text())["etag"]
    clock.now += DAY
    estimate = book.estimate({"duration": 10, "generate_audio": True})
    assert statuses == [200, 304]
    assert asks(simulator)[-1].headers["if-none-match"] == etag
    assert (estimate.source, estimate.usd, estimate.as_of) == ("catalogue", 1.4, date_of(clock))
    kept = json.loads((tmp_path / CACHE_NAME).read_text())
    assert kept["checked_at"] == clock() and kept["etag"] == etag


def test_a_new_price_is_seen_at_the_next_daily_ask(simulator, book, clock):
    assert book.estimate({"duration": 10, "generate_audio": True}).usd == pytest.approx(1.4)
    simulator.script_pricing({"kind": "fixed", "currency": "USD", "units": [
        {"name": "second", "price": 0.2, "per": 1}]})  # fmt: skip
    assert book.estimate({"duration": 10, "generate_audio": True}).usd == pytest.approx(
        1.4
    )  # not asked again today
    clock.now += DAY
    assert book.estimate({"duration": 10, "generate_audio": True}).usd == pytest.approx(2.0)


def test_the_last_good_answer_outlives_a_restart(simulator, tmp_path, clock):
    price_book(simulator, tmp_path, clock).estimate({"duration": 5, "generate_audio": True})
    clock.now += DAY / 2
    again = price_book(simulator, tmp_path, clock).estimate(
        {"duration": 10, "generate_audio": False}
    )
    assert (again.source, again.usd) == ("catalogue", pytest.approx(0.7))
    assert len(asks(simulator)) == 1


def test_the_last_good_answer_is_kept_when_the_catalogue_goes_down(simulator, book, clock):
    when = date_of(clock)
    book.estimate({"duration": 5, "generate_audio": True})
    simulator.script_outage("catalogue", Fault.status(503))
    clock.now += DAY
    estimate = book.estimate({"duration": 10, "generate_audio": True})
    assert len(asks(simulator)) == 2
    assert (estimate.source, estimate.as_of, estimate.stale) == ("catalogue", when, False)
    clock.now += 2 * DAY
    stale = book.estimate({"duration": 10, "generate_audio": True})
    assert (
        stale.stale and stale.words() == f"10 s with audio: $1.40 (the catalogue's price of {when})"
    )


def test_a_later_answer_without_a_price_keeps_the_earlier_one(simulator, book, clock):
    book.estimate({"duration": 5, "generate_audio": True})
    simulator.script_pricing(None)
    clock.now += DAY
    assert book.estimate({"duration": 5, "generate_audio": True}).source == "catalogue"
    assert len(asks(simulator)) == 2
    book.estimate({"duration": 5, "generate_audio": True})
    assert len(asks(simulator)) == 2  # answered: asked again tomorrow, not sooner


def test_a_failed_ask_waits_before_the_next(simulator, book, clock):
    simulator.script_outage("catalogue", Fault.status(500))
    for _ in range(3):
        assert book.estimate({"duration": 5, "generate_audio": True}).source == "table"
    assert len(asks(simulator)) == 1
    clock.now += RETRY_EVERY
    simulator.script_outage("catalogue", None)
    assert book.estimate({"duration": 5, "generate_audio": True}).source == "catalogue"
    assert len(asks(simulator)) == 2


def test_many_pages_at_once_ask_the_catalogue_once(simulator, book):
    simulator.script_catalogue(Fault.slow(0.3))
    results = []
    threads = [
        threading.Thread(
            target=lambda: results.append(book.estimate({"duration": 5, "generate_audio": True}))
        )
        for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(asks(simulator)) == 1
    assert {r.source for r in results} == {"catalogue"}  # no one quoted before the answer


@pytest.mark.parametrize(
    "cache",
    [
        "{not json",
        json.dumps({"base_url": "https://elsewhere.example", "model": MODEL, "etag": None,
                    "checked_at": 1e6, "pricing": {"kind": "variable"}}),
        json.dumps({"model": MODEL, "checked_at": 1e6, "pricing": {"kind": "antique"}}),
    ],
    ids=["unreadable", "another-api", "no-usable-price"],
)  # fmt: skip
def test_a_cache_that_is_not_ours_is_ignored(simulator, tmp_path, clock, cache):
    (tmp_path / CACHE_NAME).write_text(cache)
    estimate = price_book(simulator, tmp_path, clock).estimate(
        {"duration": 5, "generate_audio": True}
    )
    assert (estimate.source, estimate.kind) == ("catalogue", "variants")
    assert len(asks(simulator)) == 1


def test_a_cache_that_cannot_be_written_still_prices(simulator, tmp_path, clock):
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    book = price_book(simulator, tmp_path, clock, cache_path=blocked / CACHE_NAME)
    assert book.estimate({"duration": 5, "generate_audio": True}).source == "catalogue"


# --- the balance ---------------------------------------------------------------------------


def test_balance_is_read_with_the_key(simulator, book):
    simulator.set_balance(25.5, key="k")
    assert book.balance("k") == 25.5
    (ask,) = simulator.requests_to("/v2/billing")
    assert ask.headers["authorization"] == "Bearer k"


def test_balance_goes_down_after_a_completed_job(simulator, book):
    simulator.set_balance(10, key="k")
    gid = create(simulator, duration=10, generate_audio=True).json()["id"]
    simulator.complete_now(gid)
    assert book.balance("k") == pytest.approx(8.6)


def test_a_failed_job_leaves_the_balance_alone(simulator, book):
    simulator.set_balance(10, key="k")
    gid = create(simulator).json()["id"]
    simulator.fail_job(gid)
    assert book.balance("k") == 10


def test_no_key_no_balance_and_nothing_asked(simulator, book):
    assert book.balance(None) is None and book.balance("") is None
    assert simulator.requests_to("/v2/billing") == []


@pytest.mark.parametrize(
    "fault",
    [Fault.status(503), Fault.status(403), Fault.drop(), Fault.non_json(200), Fault.slow(5)],
    ids=["503", "403", "drop", "html", "slow"],
)
def test_a_balance_that_cannot_be_read_is_none_quickly(simulator, tmp_path, clock, fault):
    simulator.script_outage("billing", fault)
    book = price_book(simulator, tmp_path, clock, balance_timeout=(0.5, 0.5))
    started = time.monotonic()
    assert book.balance("k") is None
    assert time.monotonic() - started < 1.5


def test_an_unreachable_billing_endpoint_is_none_and_the_default_wait_is_short(tmp_path, clock):
    with Simulator() as sim:
        url = sim.url
    book = PriceBook(Settings(base_url=url, data_dir=tmp_path), clock=clock)
    assert book.balance("k") is None
    assert sum(BALANCE_TIMEOUT) <= 5


def test_a_refused_key_has_no_balance(tmp_path, clock):
    with Simulator(api_key="right") as sim:
        book = price_book(sim, tmp_path, clock)
        assert book.balance("wrong") is None
        assert book.balance("right") == 100


# --- the charge after --------------------------------------------------------------------


def test_the_charge_is_read_from_the_completed_poll(tmp_path):
    with Simulator(schedule=Schedule(0, 0)) as sim:
        created = create(sim, duration=10, generate_audio=False)
        held = reported_charge(created.json(), created.headers)
        assert held == Charge(0.7, 1_400_000)  # the price, held at create
        polled = requests.get(
            sim.url + "/v2/video/generations",
            params={"generation_id": created.json()["id"]},
            headers=AUTH,
            timeout=5,
        )
        assert polled.json()["status"] == "completed"
        assert reported_charge(polled.json(), polled.headers) == Charge(0.7, 1_400_000)


@pytest.mark.parametrize(
    "payload, headers, charge",
    [
        (None, None, None),
        ({"meta": None}, {}, None),
        ({"meta": {"usage": {"credits_used": 2480}}}, {}, Charge(0.00124, 2480)),
        ({"meta": {"usage": {"tokens_used": 500000}}}, {}, Charge(0.25, 500000)),
        ({"meta": {"usage": {"credits_used": 2480, "usd_spent": 0.00124}}}, {},
         Charge(0.00124, 2480)),
        ({}, {"x-aimlapi-usd-spent": "0.001240000", "x-aimlapi-credits-used": "2480"},
         Charge(0.00124, 2480)),
        ({}, {"X-AIMLAPI-Credits-Used": "500000"}, Charge(0.25, 500000)),
        ({}, {"x-aimlapi-credits-used": "lots"}, None),
        ({"meta": {"usage": {"credits_used": True}}}, {}, None),
        ({"meta": {"usage": {"credits_used": 10}}}, {"x-aimlapi-credits-used": "0"},
         Charge(0.000005, 10)),  # the job's figure before the answer's own
    ],
)  # fmt: skip
def test_reported_charge_reads_meta_then_headers(payload, headers, charge):
    assert reported_charge(payload, headers) == charge


def test_pricing_speaks_no_http_of_its_own():
    """The catalogue and the balance are the client's calls; pricing keeps the money."""
    import ast

    import kling_ui.pricing

    tree = ast.parse(Path(kling_ui.pricing.__file__).read_text(encoding="utf-8"))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names] if isinstance(node, ast.Import)
            else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
            else []
        )
    }  # fmt: skip
    assert imported and not imported & {"requests", "urllib3", "httpx", "http", "socket"}
