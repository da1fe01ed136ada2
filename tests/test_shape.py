"""The code's shape, as issue 24 set it: small modules and classes, long functions explained,
and the page and the command line reading the service only through its public methods."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "kling_ui"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_each_module_is_at_most_600_lines_and_each_class_350(path):
    text = path.read_text()
    assert len(text.splitlines()) <= 600
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= 350, node.name


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_a_function_over_60_lines_says_why_in_a_comment_above_it(path):
    text = path.read_text()
    lines = text.splitlines()
    for node in ast.walk(ast.parse(text)):
        function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if function and node.end_lineno - node.lineno + 1 > 60:
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            assert lines[first - 2].strip().startswith("#"), node.name


@pytest.mark.parametrize("folder", ["ui", "cli"])
def test_the_page_and_the_cli_never_reach_into_the_service(folder):
    reach = re.compile(r"service\.(ledger|runner|chains)\b")
    found = [
        f"{_name(p)}:{n}"
        for p in sorted((PACKAGE / folder).rglob("*.py"))
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if reach.search(line)
    ]
    assert found == []


def _takes_a_duration_and_an_audio_switch(node: ast.AST) -> bool:
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    names = [a.arg for a in node.args.args + node.args.kwonlyargs]
    return any("duration" in n for n in names) and any("audio" in n for n in names)


def test_only_the_form_names_the_models_fields_one_by_one():
    """A job's settings travel as one value: the API's endpoints and the agents' tools take
    the model's fields from its spec (``ui.fields.takes_fields``), so the one signature
    left with both a duration and an audio switch is the form's ``form_request``."""
    found = {
        f"{_name(path)}:{node.name}"
        for path in MODULES
        for node in ast.walk(ast.parse(path.read_text()))
        if _takes_a_duration_and_an_audio_switch(node)
    }
    assert found <= {"kling_ui/ui/form.py:form_request"}
