"""Accessibility checks in the browser tests: axe-core, pinned, injected into the page.

axe-core comes from the npm registry at the exact version in ``tests/axe/package.json``
(``package-lock.json`` beside it holds its integrity hash). Nothing outside pytest installs
it: the first check runs ``npm ci`` in ``tests/axe`` (once, under a file lock, and again only
when the pin changes). Without ``npm`` the checks skip, except on CI (``CI=true``), where they
fail, like a missing browser (``browsing._unavailable``).

    from a11y import describe, serious_violations

    found = serious_violations(page)
    assert not found, describe(found)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from browsing import ROOT, _unavailable

AXE_DIR = ROOT / "tests" / "axe"
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")
MAX_NODES = 5  # target selectors and HTML snippets kept per violation
NPM_CI_TIMEOUT_S = 300

# Runs axe on the whole document and hands back only what a failure message needs. First it
# lets running CSS transitions end (at most 2 s): a button fading between its busy and idle
# colours is read mid-way on a busy machine, and its contrast then is neither state's.
_RUN_AXE = """async ([impacts, maxNodes]) => {
  const moving = document.getAnimations().filter((a) => a instanceof CSSTransition);
  await Promise.race([
    Promise.all(moving.map((a) => a.finished.catch(() => null))),
    new Promise((done) => setTimeout(done, 2000)),
  ]);
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter((v) => impacts.includes(v.impact))
    .map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      count: v.nodes.length,
      nodes: v.nodes.slice(0, maxNodes).map((n) => ({target: n.target, html: n.html})),
    }));
}"""


def _pinned_version() -> str:
    return json.loads((AXE_DIR / "package.json").read_text())["dependencies"]["axe-core"]


def _installed_version() -> str | None:
    try:
        manifest = json.loads((AXE_JS.parent / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest.get("version") if AXE_JS.exists() else None


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    """One ``npm ci`` at a time across processes (outside ``tests/axe``: ``npm ci`` empties
    ``node_modules``, and nothing new to ignore in git)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, a rare race at worst
        yield
        return
    key = hashlib.sha256(str(AXE_DIR).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"kling-ui-axe-{key}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def axe_script() -> Path:
    """``axe.min.js`` at the pinned version, installed by ``npm ci`` if it is not there yet."""
    pinned = _pinned_version()
    if _installed_version() == pinned:
        return AXE_JS
    npm = shutil.which("npm")
    if npm is None:
        _unavailable("npm not found, needed for axe-core: apt-get install npm")
    with _install_lock():
        if _installed_version() != pinned:  # another process may have installed it meanwhile
            command = [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR)]
            try:
                done = subprocess.run(
                    command,
                    cwd=AXE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=NPM_CI_TIMEOUT_S,
                )
            except subprocess.TimeoutExpired:
                _unavailable(f"`npm ci` for axe-core took over {NPM_CI_TIMEOUT_S} s")
            if done.returncode != 0:
                output = (done.stderr or done.stdout).splitlines()
                said = [line for line in output if line.strip() not in ("", "npm error")]
                head = "\n".join(said[:6])  # npm says why first, then its usage text
                _unavailable(f"`npm ci` for axe-core failed ({done.returncode}):\n{head}")
    installed = _installed_version()
    if installed != pinned:
        _unavailable(f"`npm ci` left axe-core {installed}, not the pinned {pinned}, in {AXE_DIR}")
    return AXE_JS


def serious_violations(page: Any) -> list[dict]:
    """axe-core's serious and critical violations on a Playwright (sync) page, as it is now.

    Each is ``{"id", "impact", "help", "count", "nodes"}``: ``count`` elements failed,
    ``nodes`` holds the first few as ``{"target": selector, "html": snippet}``."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_script()))
    found = page.evaluate(_RUN_AXE, [list(SERIOUS), MAX_NODES])
    for violation in found:
        for node in violation["nodes"]:
            node["target"] = _selector(node["target"])
    return found


def _selector(target: list) -> str:
    """axe's target: one entry per frame, a list inside it when the path crosses shadow DOM."""
    return " >> ".join(part if isinstance(part, str) else " >>> ".join(part) for part in target)


def describe(violations: list[dict]) -> str:
    """The violations in words, for an assertion message."""
    if not violations:
        return "no serious or critical accessibility violations"
    lines = [f"{len(violations)} serious or critical accessibility violation(s) (axe-core):"]
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}, on {v['count']} element(s)")
        for node in v["nodes"]:
            html = " ".join(node["html"].split())
            html = html if len(html) <= 200 else html[:199] + "…"
            lines.append(f"    {node['target']}\n      {html}")
        if v["count"] > len(v["nodes"]):
            lines.append(f"    … and {v['count'] - len(v['nodes'])} more")
    return "\n".join(lines)
