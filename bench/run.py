"""Run kling-ui's benchmarks and publish a table: ``python bench/run.py [--quick]``.

Prints a Markdown table (each benchmark, our median, the baseline's in the same run, the
ratio, the target and whether it is met) with the machine it ran on, and writes
``bench/results.json`` (every number) and ``bench/RESULTS.md`` (the table and how each
figure was measured). ``--quick`` is a smoke run (tiny sizes, few iterations) that writes
nothing unless ``--write`` is given; ``--only images,download`` runs a subset (written in
place of those benchmarks' last figures, the others kept); ``--json PATH``
also writes every number to PATH.

Benchmarks are not tests: a missed target is reported, never raised. Each lives in its own
module (``bench/bench_*.py``) with ``run(quick: bool) -> dict``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import machine_info, machine_line, row  # noqa: E402

BENCHMARKS = {
    "images": "bench_images",
    "playback": "bench_playback",
    "users": "bench_users",
    "download": "bench_download",
    "startup": "bench_startup",
    "runner": "bench_runner",
    "flood": "bench_flood",
    "stitch": "bench_stitch",
    "replicas": "bench_replicas",
    "models": "bench_models",
    "form_switch": "bench_form_switch",
    "export": "bench_export",
}
HEADER = ("benchmark", "ours (median)", "baseline (median, same run)", "ratio", "target", "met?")


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for result in results:
        for r in result["rows"]:
            met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
            ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}x"
            if r["ratio"] is not None and 0 < r["ratio"] < 0.01:  # e.g. 0.004x, not 0.00x
                ratio = f"{r['ratio']:.1g}x"
            cells = (r["benchmark"], r["ours"], r["baseline"], ratio, r["target"], met)
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def render(machine: dict[str, Any], results: list[dict[str, Any]], quick: bool, when: str) -> str:
    title = "kling-ui benchmarks" + (" (quick smoke run: not the real figures)" if quick else "")
    parts = [
        f"# {title}",
        "",
        f"Machine: {machine_line(machine)}.",
        f"Run: {when}, `python bench/run.py{' --quick' if quick else ''}`; "
        "total "
        f"{sum(r.get('seconds', 0) for r in results) / 60:.1f} min. The machine is shared "
        "and noisy: read the medians and ratios, not single times. Memory is in MB of "
        "2^20 bytes; the body's 2 MB limit is checked as 2,000,000 bytes.",
        "",
        markdown_table(results),
        "",
        "## How each figure was measured",
        "",
    ]
    for result in results:
        for note in result.get("notes", []):
            parts.append(f"- {note}")
        if result.get("error"):
            parts.append(f"- {result['name']}: failed to run: {result['error']}")
    return "\n".join(parts) + "\n"


def run_one(key: str, quick: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:  # the import too: a benchmark that can't be imported must not stop the others
        result = importlib.import_module(f"bench.{BENCHMARKS[key]}").run(quick=quick)
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        result = {
            "name": key,
            "error": message,
            "rows": [row(key, "did not run", "—", None, "—", None)],
            "metrics": {},
            "notes": [],
        }
    result["seconds"] = time.perf_counter() - t0
    return result


def _merged(
    path: Path, fresh: list[dict[str, Any]], when: str, keys: list[str]
) -> tuple[list[dict[str, Any]], str]:
    """``--only`` with writing: the fresh results in place of their names' in ``path`` (the
    last written), the others kept as they were, and a run line that says which is which."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return fresh, when
    by_name = {r["name"]: r for r in fresh}
    merged = [by_name.pop(r["name"], r) for r in old.get("benchmarks", [])]
    merged.extend(by_name.values())
    return merged, f"{old.get('date', 'earlier')}, with {', '.join(keys)} run again {when}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny sizes, few runs")
    parser.add_argument(
        "--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}", default=""
    )
    parser.add_argument(
        "--write",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write bench/results.json and bench/RESULTS.md (default: yes, no with --quick)",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="also write every number to PATH (the smoke test reads it)"
    )
    args = parser.parse_args(argv)
    keys = [k.strip() for k in args.only.split(",") if k.strip()] or list(BENCHMARKS)
    unknown = [k for k in keys if k not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(BENCHMARKS)}")
    write = (not args.quick) if args.write is None else args.write

    machine = machine_info()
    when = time.strftime("%Y-%m-%d %H:%M %Z")
    print(f"Machine: {machine_line(machine)}", flush=True)
    results = []
    for key in keys:
        print(f"== {key} ({BENCHMARKS[key]}.py){' quick' if args.quick else ''} ...", flush=True)
        result = run_one(key, args.quick)
        print(markdown_table([result]), f"\n({result['seconds']:.0f} s)\n", flush=True)
        results.append(result)

    here = Path(__file__).resolve().parent
    if write and args.only:  # the others' figures kept from the last full run, said so
        results, when = _merged(here / "results.json", results, when, keys)
    report = render(machine, results, args.quick, when)
    print("\n" + report)
    payload = {
        "date": when,
        "quick": args.quick,
        "command": "python bench/run.py" + (" --quick" if args.quick else ""),
        "machine": machine,
        "benchmarks": results,
    }
    if args.json:
        Path(args.json).write_text(json.dumps(payload, indent=2, ensure_ascii=False))
    if write:
        (here / "results.json").write_text(json.dumps(payload, indent=2, ensure_ascii=False))
        (here / "RESULTS.md").write_text(report)
        print(f"wrote {here / 'results.json'} and {here / 'RESULTS.md'}")
    return 1 if any(r.get("error") for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
