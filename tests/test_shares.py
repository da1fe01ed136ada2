"""Share links, through the service and over real HTTP (the app in process, the simulator
on loopback): a link shows only what its owner chose; it stops when revoked, when expired,
or when any character of it is changed; only its owner revokes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from apprunner import app_in_process
from PIL import Image

from kling_ui import errors
from kling_ui.request import Request
from kling_ui.service import shares as shares_module
from kling_ui.simulator import Schedule

pytestmark = pytest.mark.timeout(120)

KEY = "sk-shares-test-5d2e"
FAST = Schedule(queued_s=0.05, generating_s=0.1)
ME, YOU = "browser:me", "browser:you"


class Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    data = tmp_path_factory.mktemp("shares") / "data"
    with app_in_process(data, FAST, api_key=KEY, poll_interval=0.05) as app:
        photo = data.parent / "p.png"
        Image.new("RGB", (800, 600), (30, 160, 60)).save(photo)
        made = []
        for prompt, owner in (("A secret prompt: red kites.", ME), ("Second take.", ME),
                              ("Not yours.", YOU)):  # fmt: skip
            final = list(app.service.generate(str(photo), Request.make(prompt), owner=owner))[-1]
            assert final.phase == "completed", final
            made.append(final.generation_id)
        app.made = made
        yield app


def get(live, path: str) -> requests.Response:
    return requests.get(live.url.rstrip("/") + path, timeout=10)


def test_a_link_shows_the_video_and_only_what_its_owner_chose(live):
    path = live.service.share(ME, live.made[:1], days=7)
    page = get(live, path)
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "noindex" in page.headers["x-robots-tag"]
    assert "Content-Security-Policy" in page.text and "<video" in page.text
    assert "red kites" not in page.text and "Kling" not in page.text  # not chosen: not shown
    for secret in (KEY, live.made[0], "/media/", ME):
        assert secret not in page.text
    video = get(live, path + "/1.mp4")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    job = live.service.entry(live.made[0], ME)
    plain = Path(job.video_path).with_name(Path(job.video_path).stem + ".plain.mp4")
    assert video.content == plain.read_bytes()  # the video, without its settings written in
    assert get(live, path + "/1.jpg").headers["content-type"] == "image/jpeg"
    assert get(live, path + "/2.mp4").status_code == 404  # no other video through it
    chosen = get(live, live.service.share(ME, live.made[:1], shows=("prompt", "settings")))
    assert "A secret prompt: red kites." in chosen.text and "Kling v2.6 Pro" in chosen.text


def test_a_board_link_shows_its_videos_in_order_with_the_one_kept(live):
    path = live.service.share(ME, live.made[:2], kept=live.made[1], shows=("prompt",))
    page = get(live, path).text
    assert page.index("red kites") < page.index("Second take.")
    assert page.count("<video") == 2 and page.count("★ kept") == 1
    assert "<script nonce=" in page  # synced playback
    assert get(live, path + "/2.mp4").status_code == 200


def test_a_link_is_only_for_the_owners_own_videos(live):
    with pytest.raises(errors.InputError, match="No video of yours"):
        live.service.share(ME, [live.made[2]])
    with pytest.raises(errors.InputError, match="works for 1, 7, 30 days"):
        live.service.share(ME, live.made[:1], days=365)


def test_a_revoked_link_stops_at_once_and_only_its_owner_revokes_it(live):
    path = live.service.share(ME, live.made[:1])
    share_id = path.removeprefix("/share/").split(".")[0]
    assert get(live, path + "/1.mp4").status_code == 200
    assert live.service.revoke_share(share_id, YOU) is False  # not theirs
    assert get(live, path).status_code == 200
    assert share_id in [r.share_id for r in live.service.shares_of(ME)]
    assert live.service.revoke_share(share_id, ME) is True
    assert get(live, path).status_code == 404 and "does not work" in get(live, path).text
    assert get(live, path + "/1.mp4").status_code == 404
    assert share_id not in [r.share_id for r in live.service.shares_of(ME)]
    assert live.service.revoke_share(share_id, ME) is False  # already ended


def test_a_changed_or_made_up_link_does_not_work(live):
    path = live.service.share(ME, live.made[:1])
    share_id, expires, signature = path.removeprefix("/share/").split(".")
    later = int(expires) + 86400 * 365  # a longer life, signed with the old signature
    for forged in (
        f"{share_id}.{later}.{signature}",
        f"{share_id}.{expires}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        f"{share_id[:-1]}x.{expires}.{signature}",
        "nothing",
        f"{share_id}..",
        "a" * 500,
    ):
        assert get(live, f"/share/{forged}").status_code == 404, forged
        assert get(live, f"/share/{forged}/1.mp4").status_code == 404, forged


def test_an_expired_link_does_not_work(live, monkeypatch):
    room = live.service.shares
    clock = Clock()
    monkeypatch.setattr(room, "_clock", clock)
    path = live.service.share(ME, live.made[:1], days=1)
    assert get(live, path).status_code == 200
    clock.now += 86400 + 1
    assert get(live, path).status_code == 404
    assert get(live, path + "/1.mp4").status_code == 404
    assert path.removeprefix("/share/").split(".")[0] not in [
        r.share_id for r in live.service.shares_of(ME)
    ]


def test_a_visitor_keeps_a_bounded_number_of_links(live, monkeypatch):
    monkeypatch.setattr(shares_module, "MOST_SHARES", len(live.service.shares_of(ME)) + 1)
    live.service.share(ME, live.made[:1])
    with pytest.raises(errors.InputError, match="revoke one first"):
        live.service.share(ME, live.made[:1])


def test_download_all_streams_the_owners_finished_videos_as_one_zip(live, monkeypatch):
    import io
    import zipfile

    path, count = live.service.download_all(ME, [*live.made, "unknown-id"])
    assert count == 2  # the owner's two; another's and an unknown id are left out
    answer = get(live, path)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    assert "attachment" in answer.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    names = archive.namelist()
    assert len(names) == 2 and names[0].startswith("001-") and names[1].startswith("002-")
    first = live.service.entry(live.made[0], ME)
    assert archive.read(names[0]) == Path(first.video_path).read_bytes()
    assert archive.testzip() is None
    # It is a download, not a page, and it is not among the owner's links.
    token_path = path.removesuffix("/videos.zip")
    assert get(live, token_path).status_code == 404
    assert get(live, token_path + "/1.mp4").status_code == 404
    assert token_path.removeprefix("/share/").split(".")[0] not in [
        r.share_id for r in live.service.shares_of(ME)
    ]
    # A page link is not a download either, and the download ends after its minutes.
    page_path = live.service.share(ME, live.made[:1])
    assert get(live, page_path + "/videos.zip").status_code == 404
    clock = Clock()
    monkeypatch.setattr(live.service.shares, "_clock", clock)
    clock.now += shares_module.ZIP_MINUTES * 60 + 1
    assert get(live, path).status_code == 404
    with pytest.raises(errors.InputError, match="nothing to download"):
        live.service.download_all(YOU, live.made[:2])


@pytest.mark.parametrize("where", ["sqlite", "postgresql"])
def test_the_ledger_keeps_links_in_sqlite_and_postgresql(where, tmp_path, request):
    from kling_ui.ledger import Ledger
    from kling_ui.ledger.shares import ShareRow

    place = request.getfixturevalue("pg_url") if where == "postgresql" else tmp_path / "l.db"
    ledger = Ledger(place)
    try:
        ledger.add_share(ShareRow("s1", ME, 100.0, 1000.0, None, ("j1", "j2"), "j2", ("prompt",)))
        ledger.add_share(ShareRow("s2", ME, 200.0, 300.0, None, ("j1",), "", ()))
        ledger.add_share(ShareRow("z1", ME, 250.0, 2000.0, None, ("j1",), "", (), "zip"))
        row = ledger.share("s1")
        assert row is not None and (row.job_ids, row.kept, row.shows) == (("j1", "j2"), "j2",
                                                                          ("prompt",))  # fmt: skip
        assert [r.share_id for r in ledger.shares_of(ME, 250.0)] == ["s2", "s1"]  # pages only
        assert [r.share_id for r in ledger.shares_of(ME, 400.0)] == ["s1"]  # s2 has ended
        assert ledger.revoke_share("s1", YOU, 500.0) is False
        assert ledger.revoke_share("s1", ME, 500.0) is True
        assert ledger.revoke_share("s1", ME, 501.0) is False
        assert ledger.shares_of(ME, 400.0) == []
        ledger.forget_shares_before(400.0)  # s2 ended at 300: forgotten; s1 revoked at 500
        assert ledger.share("s2") is None and ledger.share("s1") is not None
    finally:
        ledger.close()


def test_a_shared_video_carries_none_of_the_settings_its_owner_did_not_show(live):
    from kling_ui.provenance import TAG

    path = live.service.share(ME, live.made[:1])  # nothing ticked: the videos only
    served = get(live, path + "/1.mp4").content
    assert b"red kites" not in served and TAG.encode() not in served
    job = live.service.entry(live.made[0], ME)
    assert b"red kites" in Path(job.video_path).read_bytes()  # the owner's own file keeps it


@pytest.mark.parametrize(
    "token",
    ["\u00b2\u00b2.\u00b2.x", "abcdefghijklmnop.\u0661\u0662.aaaaaaaaaaaaaaaaaaaaaaaa",
     "abcdefghijklmnop.123.\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9",
     "%00", "a.b.c.d"],
)  # fmt: skip
def test_a_malformed_link_is_a_plain_404_never_a_server_error(live, token):
    from urllib.parse import quote

    for suffix in ("", "/1.mp4", "/videos.zip"):
        answer = get(live, "/share/" + quote(token, safe="") + suffix)
        assert answer.status_code == 404, (token, suffix)
        assert "does not work" in answer.text
