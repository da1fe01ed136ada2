"""The zygote that forks the tests' app processes (``tests/zygote.py``): a child it forks
must be the program ``python SCRIPT ARGS`` would be, with the asked environment, folder,
arguments and log, and nothing of the zygote's; and it must stop on a signal as a Popen'd
one does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import pytest
import zygote
from apprunner import clean_env

REPORT = textwrap.dedent(
    """
    import json, os, sys
    print("to the log")
    with open(sys.argv[1], "w") as out:
        json.dump({"env": dict(os.environ), "cwd": os.getcwd(), "argv": sys.argv,
                   "path0": sys.path[0], "name": __name__,
                   "gradio_loaded": "gradio" in sys.modules}, out)
    sys.exit(3)
    """
)


@pytest.fixture(scope="module")
def forks():
    z = zygote.Zygote(clean_env())
    yield z
    z.close()


def test_a_child_has_the_asked_environment_folder_arguments_and_log(forks, tmp_path):
    script, out, log = tmp_path / "report.py", tmp_path / "out.json", tmp_path / "child.log"
    script.write_text(REPORT)
    log.touch()
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    env = clean_env(KLING_UI_DATA_DIR=str(tmp_path / "data"))

    child = forks.fork([str(script), str(out)], env, folder, log)

    assert child.wait(timeout=30) == -1 and child.poll() == -1
    seen = json.loads(out.read_text())
    assert seen["env"] == env  # nothing of the zygote's own environment is left
    assert seen["cwd"] == str(folder)
    assert seen["argv"] == [str(script), str(out)]
    assert seen["path0"] == str(tmp_path)  # the script's folder, as ``python script`` has it
    assert seen["name"] == "__main__"
    assert seen["gradio_loaded"]  # the point: imported once, in the zygote
    assert log.read_text() == "to the log\n"


def test_a_child_stops_on_sigterm_and_sigkill(forks, tmp_path):
    script, log = tmp_path / "sleep.py", tmp_path / "sleep.log"
    script.write_text("import time\nwhile True:\n    time.sleep(1)\n")
    log.touch()
    for signum in (signal.SIGTERM, signal.SIGKILL):
        child = forks.fork([str(script)], clean_env(), tmp_path, log)
        assert child.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=0.2)
        child.send_signal(signum)
        assert child.wait(timeout=10) == -1
        child.send_signal(signal.SIGTERM)  # an ended child: nothing to signal, no error


def test_an_environment_gradio_reads_at_import_is_not_forked(monkeypatch):
    """Gradio reads GRADIO_* and TMPDIR when it is imported: an app asked with them
    different from the zygote's gets a zygote of its own; the app's settings share one."""
    monkeypatch.setattr(zygote, "_zygotes", {})
    started = []
    monkeypatch.setattr(zygote, "Zygote", lambda env: started.append(env) or object())
    base = clean_env()

    one = zygote.zygote_for({**base, "KLING_UI_DATA_DIR": "/a", "AIMLAPI_KEY": "k"})
    two = zygote.zygote_for({**base, "KLING_UI_DATA_DIR": "/b"})
    other = zygote.zygote_for({**base, "GRADIO_TEMP_DIR": "/elsewhere"})

    assert one is two and other is not one
    assert started == [base, {**base, "GRADIO_TEMP_DIR": "/elsewhere"}]
    monkeypatch.setenv(zygote.OFF_ENV, "0")
    assert zygote.zygote_for(base) is None


def test_a_zygote_gone_is_said(tmp_path):
    z = zygote.Zygote(clean_env())
    z._proc.kill()
    z._proc.wait()
    with pytest.raises((RuntimeError, BrokenPipeError)):
        z.fork([sys.executable], clean_env(), tmp_path, tmp_path / "log")
