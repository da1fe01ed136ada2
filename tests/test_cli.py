"""The command line as a person or a script runs it: ``python -m kling_ui`` in a child
process, on its environment variables, against the simulator over real HTTP (or the demo's
own simulator when no key is set). Each exit code, Ctrl-C then resume, a CSV with a bad row,
a dry run that sends nothing, and no escape codes in a pipe (bars in a terminal)."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from kling_ui import errors, media
from kling_ui.config import MODEL, settings_from_env
from kling_ui.request import Request
from kling_ui.service import GenerationService
from kling_ui.simulator import Fault, Schedule, Simulator

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-cli-test-key-7f3a"
ESC = "\x1b"


@pytest.fixture
def sim():
    with Simulator(api_key=KEY, schedule=Schedule(queued_s=0.3, generating_s=0.6)) as simulator:
        yield simulator


@pytest.fixture
def env(tmp_path, sim) -> dict[str, str]:
    """The environment of a live run against the simulator, with its own data folder."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AIMLAPI_", "KLING_UI_"))}
    return {
        **base,
        "AIMLAPI_KEY": KEY,
        "AIMLAPI_BASE_URL": sim.url,
        "KLING_UI_DATA_DIR": str(tmp_path / "data"),
        "KLING_UI_POLL_INTERVAL": "0.2",
        "PYTHONUNBUFFERED": "1",
    }


def run(env: dict[str, str], *args: str, timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kling_ui", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def start(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kling_ui", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )


def wait_for(predicate, timeout: float = 30.0) -> None:
    until = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < until, "timed out"
        time.sleep(0.05)


def test_generate_saves_the_video_and_prints_only_its_path(env, sim, photo, tmp_path):
    out = tmp_path / "videos"
    result = run(env, "generate", photo, "--prompt", "The leaves sway.", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    saved = Path(lines[0])
    assert saved.parent == out.resolve() and saved.suffix == ".mp4"
    assert saved.read_bytes()[4:8] == b"ftyp"
    assert sim.creates == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("kling-ui: live") and KEY not in result.stderr
    assert "completed" in result.stderr and "$0.70" in result.stderr
    # In a pipe: plain lines, no escape codes of a progress bar or colour.
    assert ESC not in result.stderr and ESC not in result.stdout


def test_a_terminal_gets_progress_bars(env, photo, tmp_path):
    """The same run with stderr on a terminal draws rich's bars (escape codes), and stdout,
    a pipe, still carries only the path."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_ui", "generate", photo, "-p", "Bars.", "-o", str(tmp_path)],
        cwd=ROOT,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=follower,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "no output from the command line"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=30)
    os.close(leader)
    assert proc.returncode == 0
    assert ESC.encode() in seen and "━".encode() in seen  # rich's bar
    assert Path(out.strip()).exists() and ESC not in out


CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


def screen(raw: str) -> list[str]:
    """What a terminal shows once ``raw`` is written to it, line by line (colours dropped):
    enough of a terminal for rich's bars (carriage return, erase line, cursor up)."""
    lines: list[list[str]] = [[]]
    row = col = pos = 0
    while pos < len(raw):
        code = CSI.match(raw, pos)
        if code:
            args, command = code.groups()
            pos = code.end()
            count = int(args) if args.isdigit() else 1
            if command == "A":
                row = max(0, row - count)
            elif command == "K":
                lines[row] = [] if args == "2" else lines[row][:col]
            continue
        char, pos = raw[pos], pos + 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append([])
        elif char != "\x1b":
            line = lines[row]
            line.extend(" " * (col - len(line)))
            line[col : col + 1] = [char]
            col += 1
    return ["".join(line).rstrip() for line in lines]


def run_on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str]:
    """``args`` run as a person runs them: stdout and stderr on one terminal. The exit code
    and what the terminal shows at the end."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_ui", *args],
        cwd=ROOT,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "200"},
        stdout=follower,
        stderr=follower,
        stdin=subprocess.DEVNULL,
    )
    os.close(follower)
    seen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 90)
        assert ready, "no output from the command line"
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed: the process is done
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=30), "\n".join(screen(seen.decode()))


def two_videos(photo: str, tmp_path: Path, how: str) -> list[str]:
    """The arguments of two videos of one image and prompt: ``--takes 2``, or a CSV batch
    of two rows."""
    if how == "takes":
        return ["generate", photo, "-p", "Twice.", "--takes", "2"]
    sheet = tmp_path / "two.csv"
    sheet.write_text(f"{photo},Twice.\n{photo},Twice.\n")
    return ["batch", str(sheet)]


@pytest.mark.parametrize("how", ["takes", "batch"])
def test_each_video_of_a_run_gets_its_own_path_in_a_pipe(env, sim, photo, tmp_path, how):
    out = tmp_path / "videos"
    result = run(env, *two_videos(photo, tmp_path, how), "-o", str(out))
    assert result.returncode == 0, result.stderr
    paths = result.stdout.splitlines()
    assert len(paths) == 2 and len(set(paths)) == 2, paths
    assert sorted(paths) == sorted(str(p.resolve()) for p in out.iterdir())


@pytest.mark.parametrize("how", ["takes", "batch"])
def test_each_videos_path_stays_on_a_terminal(env, sim, photo, tmp_path, how):
    """On a terminal the paths share the screen with the progress bars: each stays there,
    on a line of its own, as it is (no markup or emoji codes read in it), and the bars end
    below them."""
    out = tmp_path / "videos :cat: [bold]"
    code, shown = run_on_a_terminal(env, *two_videos(photo, tmp_path, how), "-o", str(out))
    assert code == 0, shown
    saved = sorted(str(p.resolve()) for p in out.iterdir())
    assert len(saved) == 2, saved
    lines = shown.splitlines()
    assert sorted(line for line in lines if line.startswith(str(out))) == saved, shown
    bars = [n for n, line in enumerate(lines) if "completed" in line]
    assert len(bars) == 2 and all(lines.index(p) < bars[0] for p in saved), shown


def test_bad_input_sends_nothing(env, sim, photo, tmp_path):
    result = run(env, "generate", photo, "--prompt", "   ")
    assert result.returncode == 2
    assert "Write a prompt" in result.stderr and "Traceback" not in result.stderr
    not_an_image = tmp_path / "notes.txt"
    not_an_image.write_text("hello")
    result = run(env, "generate", str(not_an_image), "--prompt", "Move.")
    assert result.returncode == 2 and "not an image" in result.stderr
    result = run(env, "generate", photo, "--prompt", "Move.", "--takes", "9")
    assert result.returncode == 2 and "--takes must be 1 to 4" in result.stderr
    assert sim.requests == []


@pytest.mark.parametrize("how", ["generate", "batch"])
def test_an_image_too_wide_names_the_fit_option(env, sim, tmp_path, how):
    """The page's words say "choose crop or pad"; here the choice is an option, so the
    message names it, and nothing is sent."""
    from PIL import Image

    wide = tmp_path / "panorama.jpg"
    Image.new("RGB", (900, 300), (40, 160, 90)).save(wide)
    sheet = tmp_path / "wide.csv"
    sheet.write_text(f"{wide},The view pans.\n")
    args = (
        ["generate", str(wide), "-p", "The view pans."]
        if how == "generate"
        else ["batch", str(sheet)]
    )
    result = run(env, *args)
    assert result.returncode == 2, result.stderr
    assert "3.00:1" in result.stderr and "--fit crop or --fit pad" in result.stderr
    assert ("Line 1:" in result.stderr) == (how == "batch")
    assert sim.requests == []
    cropped = run(env, *args, "--fit", "crop", "--dry-run")
    assert cropped.returncode == 0, cropped.stderr


def test_dry_run_checks_and_prices_with_no_request_at_all(env, sim, photo):
    result = run(env, "generate", photo, "-p", "Move.", "-d", "10", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "10 s with audio: $1.40" in result.stderr
    assert "nothing was sent" in result.stderr
    assert sim.requests == []  # not a create, not the price catalogue, not the balance


def test_a_key_the_api_refuses_exits_3(env, sim, photo):
    result = run({**env, "AIMLAPI_KEY": "sk-not-this-one-1234"}, "generate", photo, "-p", "Move.")
    assert result.returncode == 3
    assert "not accepted" in result.stderr and "sk-not-this-one-1234" not in result.stderr


def test_a_budget_refuses_before_sending_and_exits_3(env, sim, photo):
    result = run({**env, "KLING_UI_DAILY_BUDGET_USD": "0.5"}, "generate", photo, "-p", "Move.")
    assert result.returncode == 3
    assert "daily budget" in result.stderr
    assert sim.creates == 0


def test_a_job_the_vendor_fails_exits_1(env, sim, photo):
    sim.script_outcome("error")
    result = run(env, "generate", photo, "-p", "Move.")
    assert result.returncode == 1
    assert "failed" in result.stderr and result.stdout == ""


def test_past_the_deadline_exit_4_prints_the_id_and_resume_finishes(env, sim, photo, tmp_path):
    sim.set_schedule(Schedule(queued_s=0.3, generating_s=4.0))
    result = run({**env, "KLING_UI_WATCH_DEADLINE": "1"}, "generate", photo, "-p", "Slow.")
    assert result.returncode == 4
    gid = next(iter(sim.jobs))
    assert f"python -m kling_ui resume {gid}" in result.stderr
    again = run(env, "resume", gid, "--out", str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip()).exists()
    assert sim.creates == 1


def test_ctrl_c_stops_watching_and_resume_saves_the_same_job(env, sim, photo, tmp_path):
    sim.set_schedule(Schedule(queued_s=0.5, generating_s=5.0))
    proc = start(env, "generate", photo, "-p", "Interrupted.", "--out", str(tmp_path))
    wait_for(lambda: sim.creates == 1)
    wait_for(lambda: sim.polls >= 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert out == "" and "Traceback" not in err
    assert "nothing was cancelled" in err
    gid = next(iter(sim.jobs))
    assert f"resume {gid}" in err
    # Resumed by the start of the id, as history prints it.
    resumed = run(env, "resume", gid[:8], "--out", str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr
    assert Path(resumed.stdout.strip()).exists()
    assert sim.creates == 1  # never paid twice


def test_a_csv_with_a_bad_row_is_refused_whole_by_its_line(env, sim, photo, tmp_path):
    sheet = tmp_path / "jobs.csv"
    sheet.write_text(
        "image,prompt,negative_prompt,duration,generate_audio,takes\n"
        f"{photo},The sea rolls.,,5,yes,1\n"
        "\n"
        f'{photo},"A prompt, with a comma",blur,7,no,1\n'
    )
    result = run(env, "batch", str(sheet))
    assert result.returncode == 2
    assert "Line 4:" in result.stderr and "5 or 10" in result.stderr
    assert sim.requests == []


def test_a_csv_batch_of_mixed_rows_saves_every_video(env, sim, photo, tmp_path):
    Path(tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "p.jpg").write_bytes(Path(photo).read_bytes())
    sheet = tmp_path / "jobs.csv"
    sheet.write_text(
        "pics/p.jpg,Waves roll in.\n"  # relative to the file's folder
        f'{photo},"Clouds drift, slowly.",,10,false,2\n'
    )
    out = tmp_path / "out"
    result = run(env, "batch", str(sheet), "--out", str(out))
    assert result.returncode == 0, result.stderr
    paths = result.stdout.splitlines()
    assert len(paths) == 3 and all(Path(p).exists() for p in paths)
    bodies = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"]
    assert sorted((b["duration"], b["generate_audio"]) for b in bodies) == [
        (5, True), (10, False), (10, False)
    ]  # fmt: skip
    assert "$0.70" in result.stderr or "mixed" in result.stderr


def test_status_and_history_read_the_apps_ledger(env, sim, photo):
    """A job made by the app's service (as the page makes them) shows in history and
    status; status exits as the job would."""
    settings = settings_from_env(env)
    service = GenerationService(settings)
    try:
        updates = list(service.generate(photo, Request.make("Made in the page."), api_key=None))
    finally:
        service.close()
    gid = updates[-1].generation_id
    short = updates[-1].job_id.removeprefix("kui-")[:8]  # the job's one short id
    history = run(env, "history")
    assert history.returncode == 0
    assert history.stdout.startswith(short) and "Made in the page." in history.stdout
    assert gid[:8] not in history.stdout  # not a second short id, the vendor's
    by_short = run(env, "status", short)
    assert by_short.returncode == 0 and gid in by_short.stdout, by_short.stderr
    status = run(env, "status", gid, "--json")
    assert status.returncode == 0, status.stderr
    answer = json.loads(status.stdout)
    assert answer["id"] == gid and answer["state"] == "completed" and answer["video"]
    unknown = run(env, "status", "27f25c85-e9db-44e9-909a-0c3ceb35cdd9")
    assert unknown.returncode == 2 and "No job" in unknown.stderr


def test_a_job_from_the_command_line_resumes_in_the_app(env, sim, photo, tmp_path):
    sim.set_schedule(Schedule(queued_s=0.3, generating_s=3.0))
    proc = start(env, "generate", photo, "-p", "Handed over.", "--out", str(tmp_path))
    wait_for(lambda: sim.polls >= 1)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    gid = next(iter(sim.jobs))
    service = GenerationService(settings_from_env(env))
    try:
        last = list(service.resume(gid))[-1]
    finally:
        service.close()
    assert last.phase == "completed" and last.video_path is not None
    assert sim.creates == 1


def test_demo_mode_without_a_key_says_so_first(env, photo, tmp_path):
    demo = {k: v for k, v in env.items() if k not in ("AIMLAPI_KEY", "AIMLAPI_BASE_URL")}
    demo["KLING_UI_DEMO_SCHEDULE"] = "0.3,0.6"
    result = run(demo, "generate", photo, "-p", "Simulated.", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[0].startswith("kling-ui: demo mode")
    assert "nothing is charged" in result.stderr
    assert Path(result.stdout.strip()).exists()


@pytest.mark.parametrize(("answer", "sent"), [("n", False), ("y", True)])
def test_a_terminal_is_asked_before_spending(env, sim, photo, tmp_path, answer, sent):
    """With stdin a terminal and a real key, the price comes with a question; only "y"
    sends. (Not asked with --yes, in a pipe, or in demo mode: the other tests.)"""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kling_ui", "generate", photo, "-p", "Asked.", "-o", str(tmp_path)],
        cwd=ROOT,
        env=env,
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(follower)
    os.write(leader, f"{answer}\n".encode())
    out, err = proc.communicate(timeout=60)
    os.close(leader)
    assert "Send 1 video for $0.70 with your AIML API key? [y/N]" in err
    if sent:
        assert proc.returncode == 0 and Path(out.strip()).exists()
        assert sim.creates == 1
    else:
        assert proc.returncode == 2 and "Nothing was sent." in err
        assert sim.creates == 0


def test_extend_saves_the_whole_chain(env, sim, photo, tmp_path):
    first = run(env, "generate", photo, "-p", "Part one.", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    gid = next(iter(sim.jobs))
    more = run(env, "extend", gid[:8], "-p", "Part two.", "--out", str(tmp_path))
    assert more.returncode == 0, more.stderr
    assert "Continuing from the last frame" in more.stderr
    chained = Path(more.stdout.strip())
    assert chained.name.endswith("-chain.mp4")
    assert media.video_seconds(chained) == pytest.approx(10 - 1 / 24, abs=1 / 24)
    assert sim.creates == 2


def test_extend_goes_on_with_another_model_and_refuses_one_that_makes_video_from_text(
    env, sim, photo, tmp_path
):
    first = run(env, "generate", photo, "-p", "Part one.", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    gid = next(iter(sim.jobs))
    more = run(env, "extend", gid[:8], "-p", "Part two.", "--model", "runway/gen4_turbo",
               "--set", "seed=5", "--out", str(tmp_path))  # fmt: skip
    assert more.returncode == 0, more.stderr
    (body,) = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"][1:]
    assert body["model"] == "runway/gen4_turbo" and body["seed"] == 5 and "image_url" in body
    text = run(env, "extend", gid[:8], "-p", "Part three.", "--model",
               "klingai/video-v2-6-pro-text-to-video")  # fmt: skip
    assert text.returncode == 2 and "makes video from text only" in text.stderr
    assert sim.creates == 2


def test_a_csv_batch_takes_one_model_and_its_fields(env, sim, photo, tmp_path):
    """--model and --set apply to every row (a row's own length and audio where the model
    declares them); a model that makes video from text takes rows with no image; a row
    with an image for it, or a model that needs a last frame for each, is refused with
    nothing sent."""
    sheet = tmp_path / "jobs.csv"
    sheet.write_text(f"{photo},Waves roll in.\n{photo},A gull lands.,,,,2\n")
    out = tmp_path / "out"
    result = run(env, "batch", str(sheet), "--model", "runway/gen4_turbo", "--set", "seed=9",
                 "--out", str(out))  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    bodies = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"]
    assert [(b["model"], b["seed"]) for b in bodies] == [("runway/gen4_turbo", 9)] * 3
    assert all(b["image_url"].startswith("<image") for b in bodies)
    text = "klingai/video-v2-6-pro-text-to-video"
    words = tmp_path / "words.csv"
    words.write_text(",Rain on a window.\n,Snow on a roof.,,10\n")
    result = run(env, "batch", str(words), "--model", text, "--out", str(out))
    assert result.returncode == 0, result.stderr
    bodies = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"][3:]
    assert sorted((b["model"], b["duration"]) for b in bodies) == [(text, 5), (text, 10)]
    assert not any("image_url" in b for b in bodies)
    refused = run(env, "batch", str(sheet), "--model", text)
    assert refused.returncode == 2 and "Line 1:" in refused.stderr
    assert "makes video from text only" in refused.stderr
    assert sim.creates == 5


def test_generate_sends_reference_images_in_order_to_a_model_that_takes_them(
    env, sim, photo, tmp_path
):
    model = "bytedance/seedance-2-0"
    wide = tmp_path / "wide.png"
    Image.new("RGB", (1200, 600), (200, 30, 30)).save(wide)
    result = run(env, "generate", "-p", "Two cats meet.", "--model", model, "--reference", photo,
                 "--reference", str(wide), "--out", str(tmp_path))  # fmt: skip
    assert result.returncode == 0, result.stderr
    (body,) = [r.body for r in sim.requests_to("/v2/video/generations") if r.method == "POST"]
    assert body["model"] == model and "image_url" not in body
    sizes = [int(i.split()[1]) for i in body["image_urls"]]  # "<image N chars>", in order
    assert len(sizes) == 2 and sizes[0] != sizes[1]
    ours = run(env, "generate", photo, "-p", "A cat.", "--reference", photo)
    assert ours.returncode == 2 and "takes no reference images" in ours.stderr
    tall = tmp_path / "tall.png"
    Image.new("RGB", (300, 1200), (0, 0, 0)).save(tall)
    refused = run(env, "generate", "-p", "Cats.", "--model", model, "--reference", photo,
                  "--reference", str(tall))  # fmt: skip
    assert refused.returncode == 2 and "Reference image 2:" in refused.stderr, refused.stderr
    assert sim.creates == 1


def test_prompt_prints_a_suggestion_and_its_price(env, sim, photo):
    """Issue 26: ``prompt IMAGE --prompt ...`` prints the suggestion on stdout (the negative
    prompt on a second line), its price on stderr; nothing to improve exits 2."""
    result = run(env, "prompt", photo, "--prompt", "A cat blinks.", "--variant", "shorter")
    assert result.returncode == 0, result.stderr
    first, negative = result.stdout.splitlines()
    assert first == "A cat blinks, slow push-in in the picture (" + first.split("(")[1]
    assert negative.startswith("Negative: ")
    assert "Suggested by bytedance/dola-seed-2-0-mini for under $0.0001" in result.stderr
    (chat,) = sim.requests_to("/v1/chat/completions")
    assert chat.headers["authorization"] == f"Bearer {KEY}" and KEY not in result.stderr
    nothing = run(env, "prompt")
    assert nothing.returncode == 2 and "Write a prompt" in nothing.stderr
    assert sim.creates == 0 and len(sim.requests_to("/v1/chat/completions")) == 1


def test_a_batch_file_for_a_model_that_needs_a_last_frame_is_refused(monkeypatch, tmp_path):
    from kling_ui.catalogue import snapshot
    from kling_ui.catalogue.specs import register_snapshot
    from kling_ui.cli.batchfile import read_rows
    from kling_ui.request import SPECS

    monkeypatch.setattr("kling_ui.request.SPECS", dict(SPECS))
    register_snapshot(snapshot())
    sheet = tmp_path / "jobs.csv"
    sheet.write_text("a.jpg,A door opens.\n")
    with pytest.raises(errors.InputError, match="needs a last frame for each video"):
        read_rows(sheet, model="google/veo-3.1-first-last-image-to-video")
    assert read_rows(sheet)[0].request.prompt == "A door opens."


def test_extend_of_what_cannot_be_continued_exits_2(env, sim, photo, tmp_path):
    sim.script_outcome("error")
    failed = run(env, "generate", photo, "-p", "Fails.", "--out", str(tmp_path))
    assert failed.returncode == 1
    gid = next(iter(sim.jobs))
    result = run(env, "extend", gid, "-p", "More.")
    assert result.returncode == 2 and "it failed" in result.stderr
    unknown = run(env, "extend", "27f25c85-e9db-44e9-909a-0c3ceb35cdd9", "-p", "More.")
    assert unknown.returncode == 2 and "No video with that id" in unknown.stderr
    assert sim.creates == 1


def test_ctrl_c_in_a_batch_cancels_what_was_not_sent(env, sim, photo, tmp_path):
    """One video at a time at the vendor: Ctrl-C while two wait here cancels those two
    (nothing charged, never sent later by an app on the same folder); the sent one goes on."""
    sim.set_schedule(Schedule(queued_s=0.5, generating_s=5.0))
    slow = {**env, "KLING_UI_MAX_ACTIVE_PER_KEY": "1"}
    proc = start(slow, "generate", photo, "-p", "Three takes.", "--takes", "3", "-o", str(tmp_path))
    wait_for(lambda: sim.polls >= 1)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 4, err
    assert "2 videos not sent yet cancelled" in err and "Traceback" not in err
    gid = next(iter(sim.jobs))
    assert f"resume {gid}" in err
    # An app starting on the same folder picks up the sent one only.
    service = GenerationService(settings_from_env(slow))
    try:
        list(service.resume(gid))
    finally:
        service.close()
    assert sim.creates == 1


def test_resume_without_the_key_it_was_made_with_exits_3(env, sim, photo, tmp_path):
    sim.set_schedule(Schedule(queued_s=0.3, generating_s=3.0))
    made = run({**env, "KLING_UI_WATCH_DEADLINE": "0.5"}, "generate", photo, "-p", "Keyed.")
    assert made.returncode == 4
    gid = next(iter(sim.jobs))
    keyless = {k: v for k, v in env.items() if k != "AIMLAPI_KEY"}
    result = run(keyless, "resume", gid, "-o", str(tmp_path), timeout=30)
    assert result.returncode == 3 and "AIMLAPI_KEY" in result.stderr


def test_what_would_be_lost_is_refused_before_sending(env, sim, photo, tmp_path):
    not_a_folder = tmp_path / "afile"
    not_a_folder.write_text("x")
    result = run(env, "generate", photo, "-p", "Where to?", "-o", str(not_a_folder))
    assert result.returncode == 2 and "--out" in result.stderr
    stray = tmp_path / "stray.csv"
    stray.write_text(f'{photo},"An unclosed quote\n{photo},Another row\n')
    result = run(env, "batch", str(stray))
    assert result.returncode == 2 and "Line 1" in result.stderr
    unknown = run(env, "status", "abcdef12")
    assert unknown.returncode == 2 and "No job whose id starts with abcdef12" in unknown.stderr
    assert sim.creates == 0


def test_the_shipped_batch_example_is_a_good_file(env, sim, tmp_path):
    result = run(env, "batch", str(ROOT / "assets" / "batch-example.csv"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "3 rows, 3 videos" in result.stderr and sim.requests == []


def _set_row(env: dict[str, str], job_id: str, **columns: str) -> None:
    """A ledger row changed in place, as an older app (or another outcome) left it."""
    ledger = settings_from_env(env).ledger_path
    assignments = ", ".join(f"{name} = ?" for name in columns)
    with contextlib.closing(sqlite3.connect(ledger)) as db, db:
        db.execute(f"UPDATE jobs SET {assignments} WHERE job_id = ?", (*columns.values(), job_id))


def test_a_create_refused_for_the_key_exits_3_by_its_typed_reason(env, sim, photo):
    """The exit code is read from the job's reason, not its words: a row typed "key or
    money" exits 3 whatever its message, one typed "refused" (the request) exits 1."""
    wrong = {**env, "AIMLAPI_KEY": "sk-not-this-one-1234"}
    assert run(wrong, "generate", photo, "-p", "Typed.").returncode == 3
    [job] = json.loads(run(wrong, "history", "--json").stdout)
    _set_row(env, job["job_id"], message="Refused.")
    assert run(wrong, "status", job["job_id"]).returncode == 3
    _set_row(env, job["job_id"], reason="refused", message="The API rejected the request.")
    assert run(wrong, "status", job["job_id"]).returncode == 1


def test_an_old_rows_create_refused_for_the_key_still_exits_3(env, sim, photo):
    """A row from before reasons were typed for the key ("refused", the key's words in its
    message) exits as it did: 3."""
    wrong = {**env, "AIMLAPI_KEY": "sk-not-this-one-1234"}
    assert run(wrong, "generate", photo, "-p", "Old.").returncode == 3
    [job] = json.loads(run(wrong, "history", "--json").stdout)
    _set_row(env, job["job_id"], reason="refused")
    assert run(wrong, "status", job["job_id"]).returncode == 3


def test_a_poll_refused_for_the_key_pauses_the_job_and_exits_3(env, sim, photo):
    sim.script_poll(Fault.status(401, "Invalid key"))
    result = run(env, "generate", photo, "-p", "Paused.")
    gid = next(iter(sim.jobs))
    assert result.returncode == 3, result.stderr
    assert f"{gid}: paused" in result.stderr and f"resume {gid}" in result.stderr


def test_models_lists_the_catalogues_models_and_list_models_is_the_same(env, sim):
    """Issue 25: the models from the vendor's catalogue (the simulator's), one a line, free;
    ``--json`` as /models gives them; ``--list-models`` is the same list."""
    listed = run(env, "models", "--json")
    assert listed.returncode == 0, listed.stderr
    answer = json.loads(listed.stdout)
    assert answer["source"] == "catalogue" and answer["models"][0]["id"] == MODEL
    o1 = next(m for m in answer["models"] if m["id"] == "klingai/video-o1-image-to-video")
    assert o1["inputs"] == ["first_frame", "last_frame"]
    plain = run(env, "--list-models")
    assert plain.returncode == 0 and plain.stderr == ""  # the vendor's list: no note
    lines = plain.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [m["id"] for m in answer["models"]]
    assert "first_frame+last_frame" in next(line for line in lines if line.startswith(o1["id"]))
    assert sim.creates == 0 and all("authorization" not in r.headers for r in sim.requests)


def test_generate_with_another_model_its_fields_and_a_last_frame(env, sim, photo, tmp_path):
    """Issue 25: --model, --set FIELD=VALUE and --end-image; the create carries the model's
    own fields, typed as its schema types them; its price is its catalogue block's."""
    end = tmp_path / "end.jpg"
    Image.new("RGB", (800, 600), (200, 60, 30)).save(end, quality=90)
    out = tmp_path / "videos"
    result = run(
        env, "generate", photo, "-p", "A door opens.", "--model",
        "klingai/video-o1-image-to-video", "--end-image", str(end), "--set", "duration=10",
        "-o", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert Path(result.stdout.strip()).read_bytes()[4:8] == b"ftyp"
    (create,) = [r for r in sim.requests if r.method == "POST" and "generations" in r.path]
    body = create.body
    assert body["model"] == "klingai/video-o1-image-to-video" and body["duration"] == 10
    assert body["image_url"].startswith("<image") and body["last_image_url"].startswith("<image")
    assert "$" in result.stderr  # priced from the catalogue's block for that model
    text = run(
        env, "generate", "-p", "Waves at dusk.", "-m", "klingai/video-v2-6-pro-text-to-video",
        "--no-audio", "-o", str(out),
    )  # fmt: skip
    assert text.returncode == 0, text.stderr
    last = [r for r in sim.requests if r.method == "POST" and "generations" in r.path][-1]
    assert "image_url" not in last.body and last.body["generate_audio"] is False


def test_a_models_bad_fields_exit_2_with_words_and_send_nothing(env, sim, photo):
    cases = [
        (["-m", "acme/nothing"], "no model"),
        (["-m", "google/veo-3.1-i2v", "--set", "duration=7"], "duration"),
        (["-m", "google/veo-3.1-i2v", "--set", "seed"], "FIELD=VALUE"),
        (["-m", "google/veo-3.1-i2v", "--set", "seed=1"], "no setting named 'seed'"),
        (["-m", "klingai/video-o1-image-to-video", "--end-image", "/nowhere.jpg"], "nowhere"),
    ]
    for extra, words in cases:
        result = run(env, "generate", photo, "-p", "A test.", *extra, "--dry-run")
        assert result.returncode == 2 and words in result.stderr, (extra, result.stderr)
    no_image = run(env, "generate", "-p", "A test.", "--dry-run")
    assert no_image.returncode == 2 and "Add an image" in no_image.stderr
    assert sim.creates == 0
