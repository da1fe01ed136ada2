"""The one vocabulary: every phase the service or the page can say has its words in
``states`` (a title and a step on the card), and the page, the status text, the command line
and the tab title read those words from there, not from lists of their own."""

from __future__ import annotations

import io
import json
import re

import pytest

from kling_ui import states
from kling_ui.cli.display import Display
from kling_ui.jobs import Progress
from kling_ui.ui.card import render_card
from kling_ui.ui.words import render_status

# What the service can answer: a ledger state's phase (or "unknown" for a state it no longer
# knows), a failure reason's phase, and the phases the page says about a watch (written out:
# the test must not read them from states).
FROM_STATES = sorted({*states.PHASE_OF_STATE.values(), states.phase_of("a state from later")})
FROM_REASONS = sorted({r.phase for r in states.Reason})
FROM_THE_PAGE = ["stopped", "paused", "not found", "not resumed", "outcome unknown"]
EVERY_PHASE = sorted({*FROM_STATES, *FROM_REASONS, *FROM_THE_PAGE})
STEP_NAMES = [name for name, _ in states.CARD_STEPS]


@pytest.mark.parametrize("phase", EVERY_PHASE)
def test_every_phase_the_service_can_say_has_a_title_and_a_step(phase):
    step, title = states.SHOWN[phase]
    assert step in STEP_NAMES
    assert title and title[0].isupper()


def test_the_page_says_nothing_states_does_not_know():
    assert set(states.SHOWN) == set(EVERY_PHASE)
    assert set(FROM_THE_PAGE) == states.WATCH_PHASES


@pytest.mark.parametrize(
    "name",
    ["RUNNING_PHASES", "FINAL_PHASES", "GOOD_PHASES", "NOTICE_PHASES", "NO_TIMES", "NO_ETA",
     "BEFORE_VENDOR", "VIDEO_PHASES"],
)  # fmt: skip
def test_each_set_of_phases_holds_only_shown_phases(name):
    assert getattr(states, name) <= set(states.SHOWN)


def test_a_phase_is_good_news_a_notice_or_still_running_at_most_once():
    good, notice, running = states.GOOD_PHASES, states.NOTICE_PHASES, states.RUNNING_PHASES
    assert not (good & notice) and not (good & running) and not (notice & running)
    assert states.NO_ETA <= states.BEFORE_VENDOR <= states.NO_TIMES


def test_the_sets_of_ledger_states_nest():
    assert states.NOT_MADE < states.UNPAID < states.FINAL
    assert {"failed", "not_created", "cancelled"} == states.UNPAID  # the name kept its value
    assert states.VIDEO_MADE <= states.STATES and not states.VIDEO_MADE & states.UNPAID


TITLE = re.compile(r'<p class="kui-title">([^<]*)')
CURRENT = re.compile(r'aria-current="step"><span[^>]*>[^<]*</span> ([^<]*)')


@pytest.mark.parametrize("phase", EVERY_PHASE)
def test_the_card_shows_the_title_and_the_step_states_gives(phase):
    step, title = states.SHOWN[phase]
    card = render_card(Progress("gid", phase, "Words.", elapsed=3.0))
    assert TITLE.search(card).group(1).strip() == title
    current = [] if phase in states.GOOD_PHASES else [dict(states.CARD_STEPS)[step]]
    assert [label.strip() for label in CURRENT.findall(card)] == current


@pytest.mark.parametrize("phase", EVERY_PHASE)
def test_the_status_text_has_times_unless_states_says_there_are_none(phase):
    text = render_status(Progress("gid", phase, "Words.", elapsed=70.0))
    assert text.splitlines()[0] == f"Status: {phase}"
    assert ("Elapsed 1:10" in text) is (phase not in states.NO_TIMES)


@pytest.mark.parametrize("phase", EVERY_PHASE)
def test_the_command_lines_bar_stands_where_states_puts_the_phase(phase):
    update = Progress("gid", phase, "Words.", elapsed=3.0)
    with Display(io.StringIO(), fancy=True) as display:
        display.show("k", "job", update)
        (task,) = display._bars.tasks
        done, total = task.completed, task.total
    assert total == len(states.BAR_STEPS) - 1
    assert done == (total if update.final else states.BAR_STEP_OF.get(phase, 0))


def test_the_tab_title_script_reads_the_running_and_good_phases_from_states():
    from kling_ui.ui.wiring import JOB_PROGRESS_JS

    lists = dict(re.findall(r"const (running|good) = (\[.*?\]);", JOB_PROGRESS_JS))
    assert set(json.loads(lists["running"])) == states.RUNNING_PHASES
    assert set(json.loads(lists["good"])) == states.GOOD_PHASES
