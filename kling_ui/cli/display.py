"""What a person at a terminal sees while jobs run: a progress bar per job (its phase as the
bar's steps, the time it has taken), drawn by rich; in a pipe or a log, one plain line per
change and no escape codes. Either way on stderr, so stdout carries only the videos' paths.

The phases and the bar's steps are ``states``' (one vocabulary). Imports ``jobs``
(``Progress``), ``states`` and rich; never gradio.
"""

from __future__ import annotations

import os
import re
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn

from ..jobs import Progress as JobProgress
from ..states import BAR_STEP_OF, BAR_STEPS, GOOD_PHASES

# Text from outside (the vendor's words, a job's message) may carry a terminal's escape
# sequences: moving the cursor, clearing the screen, retitling the window, hiding a line
# with a carriage return. Whole CSI and OSC sequences go, then every other C0 and C1
# control character and the bidirectional overrides; a newline or a tab the text means stays.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x9b[0-?]*[ -/]*[@-~]"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """``text`` as a terminal shows it plainly: no escape sequence, no control character."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", str(text)))


def clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _phase_words(update: JobProgress) -> str:
    return (
        f"{update.phase} (simulated)"
        if update.phase in GOOD_PHASES and update.simulated
        else (update.phase)
    )


class Display:
    """One line per job, by the job's key (our job id)."""

    def __init__(self, stream: TextIO, *, fancy: bool | None = None) -> None:
        self._console = Console(file=stream, highlight=False, soft_wrap=True)
        self.fancy = self._console.is_terminal if fancy is None else fancy
        self._stream = stream
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._said: dict[str, tuple[str, str]] = {}

    def __enter__(self) -> Display:
        if self.fancy:
            self._bars = Progress(
                SpinnerColumn(finished_text="·"),
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                TextColumn("{task.fields[phase]:<22}"),
                TextColumn("{task.fields[clock]:>6}"),
                console=self._console,
                transient=False,
            )
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def say(self, text: str) -> None:
        """A line of words above the bars (or on its own line in a pipe)."""
        text = printable(text)
        if self._bars is not None:
            self._bars.console.print(text, markup=False)
        else:
            print(text, file=self._stream, flush=True)

    def result(self, text: str, stream: TextIO) -> None:
        """A line for a script (a saved video's path) on ``stream``, stdout. Where stdout is
        the very terminal the bars are drawn on, the line is printed above the bars by their
        own console: a line written under live bars is drawn over at their next refresh (a
        batch's paths overwrote each other). The person sees the same line either way."""
        if self._bars is not None and _same_terminal(stream, self._stream):
            self._bars.console.print(text, markup=False, highlight=False, emoji=False)
        else:
            print(text, file=stream, flush=True)

    def show(self, key: str, label: str, update: JobProgress) -> None:
        phase = _phase_words(update)
        if self._bars is not None:
            self._bar(key, label, update, phase)
        said = (phase, update.message)
        if self._said.get(key) != said:
            self._said[key] = said
            if self._bars is None:
                words = f"{label}  {phase}  {clock(update.elapsed)}"
                if update.message and update.final:
                    words += f"  {printable(update.message)}"
                print(words, file=self._stream, flush=True)
            elif update.final and update.phase not in GOOD_PHASES and update.message:
                self.say(f"{label}: {update.message}")

    def _bar(self, key: str, label: str, update: JobProgress, phase: str) -> None:
        assert self._bars is not None
        step = len(BAR_STEPS) - 1 if update.final else BAR_STEP_OF.get(update.phase, 0)
        if key not in self._tasks:
            self._tasks[key] = self._bars.add_task(
                label, total=len(BAR_STEPS) - 1, phase=phase, clock=clock(update.elapsed)
            )
        self._bars.update(
            self._tasks[key], completed=step, phase=phase, clock=clock(update.elapsed)
        )
        if update.final:
            self._bars.stop_task(self._tasks[key])


def _same_terminal(one: TextIO, other: TextIO) -> bool:
    """Both streams write to one terminal (a person's screen, not a pipe or a file)."""
    try:
        return one.isatty() and os.path.samestat(os.fstat(one.fileno()), os.fstat(other.fileno()))
    except (AttributeError, OSError, ValueError):  # a closed or in-memory stream
        return False
