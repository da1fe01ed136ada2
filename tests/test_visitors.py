"""Issue 23 item 1: visitors can't be minted. A fresh browser (a new owner token) is free to
make, so every per-visitor limit is also counted per client address (by default 3 visitors'
worth), new browsers an address may bring in an hour are limited, the jobs waiting here are
capped, and the fair queue ranks addresses before owners. The handlers are called as Gradio
calls them, each browser with its own token and a request from its address; the simulator is
the vendor over real HTTP."""

from __future__ import annotations

import secrets
import time

import gradio as gr
import pytest

from kling_ui import errors
from kling_ui.addresses import address_key
from kling_ui.config import Settings
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.ui import Handlers
from kling_ui.web import client_address

pytestmark = pytest.mark.timeout(180)

KEY = "sk-visitors-key-1"
HOME, ELSEWHERE = "203.0.113.9", "198.51.100.4"


def wait_until(check, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class Browser:
    """A fresh browser profile (its own owner token) at ``address``."""

    def __init__(self, handlers: Handlers, address: str = HOME) -> None:
        self.handlers, self.token = handlers, secrets.token_urlsafe(24)
        self.request = gr.Request(client={"host": address, "port": 40000}, headers={})

    def generate(self, photo: str, seconds: int = 5):
        return self.handlers.generate(photo, "Waves.", "", seconds, True, "", "reject",
                                      self.token, request=self.request)  # fmt: skip

    def last(self, photo: str, seconds: int = 5) -> str:
        return list(self.generate(photo, seconds))[-1][1]


@pytest.fixture
def make(simulator, tmp_path):
    services = []

    def make(**limits) -> Handlers:
        settings = Settings(base_url=simulator.url, api_key=KEY, data_dir=tmp_path,
                            poll_interval=0.05, **limits)  # fmt: skip
        services.append(GenerationService(settings))
        return Handlers(services[-1])

    yield make
    for service in services:
        service.close()


def test_fresh_browsers_from_one_address_share_its_videos_an_hour(make, simulator, photo):
    handlers = make(visitor_jobs_per_hour=1)  # the address: 3 an hour
    for _ in range(3):
        assert Browser(handlers).last(photo).startswith("Status: completed")
    refused = Browser(handlers).last(photo)
    assert "Each address may make 3 videos an hour" in refused and simulator.creates == 3
    assert Browser(handlers, ELSEWHERE).last(photo).startswith("Status: completed")


def test_fresh_browsers_from_one_address_share_its_budget(make, simulator, photo):
    handlers = make(visitor_daily_budget_usd=0.70, address_daily_budget_usd=1.40)
    for _ in range(2):
        assert Browser(handlers).last(photo).startswith("Status: completed")
    refused = Browser(handlers).last(photo)
    assert "Each address may spend $1.40 a day" in refused and simulator.creates == 2


def test_fresh_browsers_from_one_address_share_its_unfinished_jobs(make, simulator, photo):
    handlers = make(visitor_max_jobs=1)  # the address: 3 at once
    simulator.script_outcome(*["never"] * 5)
    watching = [Browser(handlers).generate(photo) for _ in range(3)]
    for updates in watching:
        next(updates)
    refused = Browser(handlers).last(photo)
    assert "jobs from your address" in refused and "may have 3 at once" in refused
    for updates in watching:
        updates.close()
    wait_until(lambda: simulator.creates == 3)  # the key's 3 slots: the fourth job waits
    other = next(Browser(handlers, ELSEWHERE).generate(photo))[1]
    assert not other.startswith("Status: refused"), other  # waits its turn for the key
    assert handlers.service.ledger.waiting() == 1


def test_fresh_browsers_from_one_address_share_its_watched_jobs(make, simulator, photo):
    handlers = make(visitor_streams=1, address_streams=2)
    simulator.script_outcome(*["never"] * 4)
    watching = [Browser(handlers).generate(photo) for _ in range(2)]
    for updates in watching:
        next(updates)
    refused = Browser(handlers).last(photo)
    assert "being watched from your address" in refused
    for updates in watching:
        updates.close()


def test_an_address_brings_in_only_so_many_new_browsers_an_hour(make, photo):
    handlers = make(address_new_browsers_per_hour=2, visitor_jobs_per_hour=1,
                    address_jobs_per_hour=0)  # fmt: skip
    home = gr.Request(client={"host": HOME, "port": 1}, headers={})
    tokens = [handlers.restore("[]", "UTC|0", [], "", home)[-1] for _ in range(3)]
    assert all(tokens[:2]) and tokens[2] == ""  # the third is known by its address only
    again = handlers.restore("[]", "UTC|0", [], tokens[0], home)
    assert again[-1] == again[-2] == tokens[0]  # a browser already admitted stays itself
    forged = handlers.restore("[]", "UTC|0", [], secrets.token_urlsafe(24), home)
    assert forged[-1] == ""  # a token the client wrote itself is a new browser too
    other = handlers.restore("[]", "UTC|0", [], "", gr.Request(client={"host": ELSEWHERE}))
    assert other[-1]
    # Past the limit, the new sessions are one visitor: the address.
    first = list(handlers.generate(photo, "Waves.", "", 5, True, "", "reject", "", request=home))
    assert first[-1][1].startswith("Status: completed")
    second = list(handlers.generate(photo, "Waves.", "", 5, True, "", "reject", "", request=home))
    assert "1 video an hour" in second[-1][1]


def test_jobs_waiting_here_are_capped_in_all(make, simulator, photo):
    handlers = make(max_active_per_key=1, max_waiting=2)
    simulator.script_outcome(*["never"] * 5)
    service = handlers.service
    service.submit(photo, Request.make("One."), takes=1, owner=service.visitor(None, "192.0.2.1"))
    wait_until(lambda: simulator.creates == 1)
    service.submit(photo, Request.make("Two."), takes=2, owner=service.visitor(None, "192.0.2.2"))
    refused = list(Browser(handlers, "192.0.2.3").generate(photo))[-1][1]
    assert "2 videos waiting to be sent" in refused and simulator.creates == 1


def test_a_newcomer_is_not_ranked_behind_many_fresh_identities(make, simulator, photo):
    """One key, one slot: 6 fresh browsers from one address each queue a job (none ever
    served), then a newcomer from another address: the newcomer goes second, not seventh."""
    service = make(max_active_per_key=1).service
    simulator.script_outcome(*["never"] * 8)
    first = service.submit(photo, Request.make("First."), owner=service.visitor(None, "192.0.2.50"))
    wait_until(lambda: simulator.creates == 1)
    for n in range(6):
        token = secrets.token_urlsafe(24)
        service.submit(photo, Request.make(f"Minted {n}."), owner=service.visitor(token, HOME))
    service.submit(photo, Request.make("Newcomer."), owner=service.visitor(None, ELSEWHERE))
    for made in (2, 3):
        gid = next(j for j in simulator.jobs.values() if j.ended_at is None).id
        simulator.complete_now(gid)
        wait_until(lambda n=made: simulator.creates == n)
    sent = sorted((j for j in service.ledger.recent(20) if j.sent_at), key=lambda j: j.sent_at)
    assert [j.prompt for j in sent][:3] == ["First.", "Minted 0.", "Newcomer."], first


def session_request(user: str = "", address: str = HOME, name: str = "") -> gr.Request:
    """A page's request whose session holds Gradio's sign-in with Hugging Face (as its
    OAuth keeps it, in a cookie it signs: the account's ``sub`` and its user name), or
    none."""
    from starlette.requests import Request

    info = {"sub": user, "preferred_username": name or user}
    oauth = {"oauth_info": {"userinfo": info,
                            "expires_at": time.time() + 3600}} if user else {}  # fmt: skip
    scope = {"type": "http", "method": "GET", "path": "/", "root_path": "", "scheme": "http",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1:7860")], "app": None,
             "client": (address, 5000), "server": ("127.0.0.1", 7860),
             "session": oauth}  # fmt: skip
    return gr.Request(request=Request(scope))


def test_a_user_signed_in_with_hugging_face_is_one_visitor_in_every_browser(make, photo):
    handlers = make()
    laptop, phone = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    on_laptop = handlers.restore("[]", "UTC|0", [], laptop, session_request("ada"))
    on_phone = handlers.restore("[]", "UTC|0", [], phone, session_request("ada", ELSEWHERE))
    assert on_laptop[-1] == on_phone[-1] not in (laptop, phone)  # the user, not the browser
    assert (on_laptop[-2], on_phone[-2]) == (laptop, phone)  # each browser's own token kept
    gid = list(handlers.generate(photo, "Waves.", "", 5, True, "", "reject", on_laptop[-1],
                                 request=session_request("ada")))[-1][0]  # fmt: skip
    job = handlers.service.entry(gid)
    assert handlers.service.visible(job, handlers.service.visitor(on_phone[-1], None))
    someone = handlers.restore("[]", "UTC|0", [], phone, session_request("grace"))[-1]
    signed_out = handlers.restore("[]", "UTC|0", [], phone, session_request())[-1]
    assert len({someone, signed_out, on_laptop[-1]}) == 3 and signed_out == phone
    assert not handlers.service.visible(job, handlers.service.visitor(someone, None))


def test_a_signed_in_user_is_known_by_their_account_not_by_their_name(make):
    """A Hugging Face user name can be changed and then taken by someone else: the visitor
    is the account (OIDC ``sub``), so a rename keeps the history and a new holder of the
    old name gets none of it (review 1, item 9)."""
    handlers = make()
    browser = secrets.token_urlsafe(24)

    def visitor(sub: str, name: str) -> str:
        return handlers.restore("[]", "UTC|0", [], browser, session_request(sub, name=name))[-1]

    ada = visitor("6123abcd", "ada")
    assert visitor("6123abcd", "ada-lovelace") == ada  # renamed: the same visitor
    assert visitor("6999eeee", "ada") not in (ada, browser, "")  # the name, taken: another


def test_the_sign_in_button_shows_only_where_a_spaces_oauth_is_set_up(monkeypatch, tmp_path):
    from gradio import oauth

    from kling_ui.ui import build_ui, callers

    def buttons(settings: Settings) -> int:
        service = GenerationService(settings, start=False)
        try:
            page = build_ui(service, browser_secret="s")
            return sum(isinstance(b, gr.LoginButton) for b in page.blocks.values())
        finally:
            service.close()

    space = Settings(on_space=True, data_dir=tmp_path, require_user_key=True)
    assert not callers.hf_sign_in_ready(True) and buttons(space) == 0
    for name in ("OAUTH_CLIENT_ID", "OAUTH_CLIENT_SECRET", "OPENID_PROVIDER_URL"):
        monkeypatch.setattr(oauth, name, "set")
    # Without Gradio's OAuth extra its launch would fail: the page is built without it.
    monkeypatch.setattr(callers, "oauth_installed", lambda: False)
    assert not callers.hf_sign_in_ready(True) and buttons(space) == 0
    monkeypatch.setattr(callers, "oauth_installed", lambda: True)
    assert callers.hf_sign_in_ready(True)
    assert not callers.hf_sign_in_ready(False)  # on a laptop: the machine's own account


@pytest.mark.parametrize(
    ("given", "counted"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("203.0.113.9:41000", "203.0.113.9"),  # a proxy that appends the port (Azure)
        (" 203.0.113.9 ", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # IPv4 on an IPv6 socket
        ("[::ffff:203.0.113.9]:443", "203.0.113.9"),
        ("2001:db8:1:2::5", "2001:db8:1:2::/64"),  # an IPv6 client holds its whole /64
        ("[2001:DB8:1:2:ffff::9]:443", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("2001:db8:1:3::5", "2001:db8:1:3::/64"),
        ("unknown", "unknown"),
        ("", ""),
    ],
)
def test_an_address_is_counted_without_its_port_and_ipv6_by_its_network(given, counted):
    assert address_key(given) == counted
    scope = {"client": ("10.0.0.1", 5000), "headers": [(b"x-forwarded-for", given.encode())]}
    assert client_address(scope, True) == (counted or "10.0.0.1")  # the uploads' limits


def test_ipv6_networks_are_as_wide_as_the_setting_says():
    assert address_key("2001:db8:1:2::5", 48) == "2001:db8:1::/48"
    assert address_key("2001:db8:1:2::5", 128) == "2001:db8:1:2::5"


def forwarded(handlers: Handlers, address: str) -> Browser:
    """A fresh browser whose address our proxy wrote in X-Forwarded-For as given."""
    browser = Browser(handlers, "10.0.0.1")
    browser.request = gr.Request(client={"host": "10.0.0.1", "port": 1},
                                 headers={"x-forwarded-for": address})  # fmt: skip
    return browser


def test_ports_ipv4_mapped_forms_and_an_ipv6_network_are_one_address(make, simulator, photo):
    """Review 1, item 5: each connection's port, "::ffff:" or another address of a /64
    made a new address, with limits of its own."""
    handlers = make(visitor_jobs_per_hour=1, address_jobs_per_hour=1, trust_proxy=True)
    assert forwarded(handlers, "203.0.113.9:41000").last(photo).startswith("Status: completed")
    for same in ("203.0.113.9:41001", "::ffff:203.0.113.9"):
        assert "Each address may make 1 video an hour" in forwarded(handlers, same).last(photo)
    assert forwarded(handlers, "2001:db8:1:2::5").last(photo).startswith("Status: completed")
    refused = forwarded(handlers, "[2001:db8:1:2:ffff::9]:443").last(photo)
    assert "Each address may make 1 video an hour" in refused
    assert forwarded(handlers, "2001:db8:1:3::5").last(photo).startswith("Status: completed")
    assert simulator.creates == 3


def test_one_address_keeps_only_its_share_waiting_and_room_for_others(make, simulator, photo):
    """Review 1, item 6: a few addresses filled the app's whole waiting room (3 x 48 each
    against 500), and everyone else was refused. Each address may have its share waiting,
    and that much of the room stays for addresses with nothing waiting."""
    handlers = make(max_active_per_key=1, max_waiting=4, address_max_waiting=2)
    simulator.script_outcome(*["never"] * 8)
    service = handlers.service
    service.submit(photo, Request.make("Sent."), owner=service.visitor(None, "192.0.2.9"))
    wait_until(lambda: simulator.creates == 1)
    service.submit(photo, Request.make("Busy."), takes=2, owner=service.visitor(None, "192.0.2.1"))
    again = Browser(handlers, "192.0.2.1").generate(photo)
    refused = next(again)[1]
    again.close()
    assert "one address may have 2 waiting at once" in refused
    other = service.visitor(None, "192.0.2.2")
    service.submit(photo, Request.make("Other."), owner=other)  # 3 waiting
    with pytest.raises(errors.LimitReached, match="3 videos waiting to be sent"):
        service.submit(photo, Request.make("Again."), owner=service.visitor(None, "192.0.2.2"))
    newcomer = Browser(handlers, ELSEWHERE).generate(photo)
    assert not next(newcomer)[1].startswith("Status: refused")
    newcomer.close()
    assert service.ledger.waiting() == 4 and simulator.creates == 1


def test_a_browser_returning_after_the_hour_keeps_its_history_at_a_busy_address(make, photo):
    """Review 1, item 7: a browser that owns jobs was a new browser again once the address
    had brought its hour's new ones (here after a restart, which forgets who was seen): its
    jobs vanished from Your videos. Only never-seen browsers are limited."""
    limits = dict(address_new_browsers_per_hour=1, visitor_jobs_per_hour=0)
    handlers = make(**limits)
    home = gr.Request(client={"host": HOME, "port": 1}, headers={})
    mine = handlers.restore("[]", "UTC|0", [], "", home)[-1]
    gid = list(handlers.generate(photo, "Waves.", "", 5, True, "", "reject", mine, request=home))[
        -1
    ][0]
    handlers.service.close()
    handlers = make(**limits)  # the same ledger, a new process: nothing remembered
    assert handlers.restore("[]", "UTC|0", [], "", home)[-1]  # the hour's one new browser
    back = handlers.restore("[]", "UTC|0", [], mine, home)
    assert back[-1] == back[-2] == mine
    assert handlers.service.visible(
        handlers.service.entry(gid), handlers.service.visitor(mine, None)
    )
    forged = handlers.restore("[]", "UTC|0", [], secrets.token_urlsafe(24), home)
    assert forged[-1] == ""  # a token that owns nothing is a new browser: over the limit


def test_the_browsers_remembered_are_bounded_across_all_addresses(make):
    """Review 1, item 8: the table of browsers seen grew with every address and was pruned
    only where an address came back. One table, least recently seen forgotten first."""
    handlers = make(address_new_browsers_per_hour=1, browsers_kept=40)
    tokens = []
    for n in range(120):
        request = gr.Request(client={"host": f"198.18.{n // 250}.{n % 250}", "port": 1})
        tokens.append(handlers.restore("[]", "UTC|0", [], "", request)[-1])
    assert all(tokens)
    table = handlers.service.access.browsers
    assert len(table) <= 40 and table.places <= 40
    last = gr.Request(client={"host": "198.18.0.119", "port": 1})
    assert handlers.restore("[]", "UTC|0", [], tokens[-1], last)[-1] == tokens[-1]
