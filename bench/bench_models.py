"""10. The video models' catalogue: the list of models and every model's schema loaded by
``service.models.Models`` from the simulator over loopback HTTP (the vendor's size: its seven
served models and copies of them under other ids, 100 in all), cold (a fresh database: the
listing and 100 schema documents fetched, normalized, checked, kept) and warm (a restart on
the same database: everything read from the kept answers, nothing fetched; and a second
read in the same process). Baselines in the same run: cold, the same 101 GETs with requests
and nothing else (the HTTP floor); warm, reading the bundled snapshot file (98 models) with
``json``. Medians of 5 (quick: 2). Targets: cold at most 1 s, warm at most 50 ms.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._common import fmt_s, median, row
from kling_ui.catalogue import SNAPSHOT_PATH
from kling_ui.client import quiet_session
from kling_ui.config import Settings
from kling_ui.ledger import Ledger
from kling_ui.service.models import Models
from kling_ui.simulator import Simulator
from kling_ui.simulator.schemas import FOLDER, body_schema

MODELS = 100
COLD_TARGET_S = 1.0
WARM_TARGET_S = 0.05


def _copies(sim: Simulator, wanted: int) -> None:
    """Serve copies of the simulator's documents under new ids until it lists ``wanted``."""
    documents = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(FOLDER.glob("*.json"))]
    have = len(documents)
    for n in range(wanted - have):
        document = copy.deepcopy(documents[n % have])
        model, schema = body_schema(document)
        schema["properties"]["model"]["enum"] = [f"{model}-copy-{n}"]
        sim.add_model(document)


def _cold(url: str, folder: Path) -> tuple[float, int]:
    room = Models(Settings(base_url=url, data_dir=folder), Ledger(folder / "ledger.db"))
    t0 = time.perf_counter()
    offer = room.offer()
    return time.perf_counter() - t0, len(offer.entries)


def _warm(url: str, folder: Path) -> tuple[float, float, int]:
    """A restart on the kept answers, then a second read in that process."""
    room = Models(Settings(base_url=url, data_dir=folder), Ledger(folder / "ledger.db"))
    t0 = time.perf_counter()
    offer = room.offer()
    restart = time.perf_counter() - t0
    t0 = time.perf_counter()
    room.offer()
    return restart, time.perf_counter() - t0, len(offer.entries)


def _plain_gets(url: str) -> float:
    session = quiet_session()
    t0 = time.perf_counter()
    listing = session.get(
        url + "/v1/models", params={"type": "internal/video-generations/submit"}, timeout=10
    ).json()
    for item in listing["data"]:
        session.get(item["info"]["docsJson"], timeout=10).json()
    return time.perf_counter() - t0


def _snapshot_read() -> float:
    t0 = time.perf_counter()
    json.loads(SNAPSHOT_PATH.read_text(encoding="utf-8"))
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict[str, Any]:
    rounds = 2 if quick else 5
    cold, warm, second, plain, snap, counts = [], [], [], [], [], set()
    with Simulator() as sim, tempfile.TemporaryDirectory() as tmp_name:
        _copies(sim, MODELS)
        _plain_gets(sim.url)  # warm the simulator's and the OS's caches, untimed
        for i in range(rounds):
            folder = Path(tmp_name) / f"round-{i}"
            folder.mkdir()
            seconds, count = _cold(sim.url, folder)
            cold.append(seconds)
            restart, again, count2 = _warm(sim.url, folder)
            warm.append(restart)
            second.append(again)
            counts |= {count, count2}
            plain.append(_plain_gets(sim.url))
            snap.append(_snapshot_read())
    cold_med, warm_med, plain_med, snap_med = map(median, (cold, warm, plain, snap))
    return {
        "name": "models",
        "rows": [
            row(
                f"10. Catalogue and {MODELS} schemas, cold (median of {rounds})",
                fmt_s(cold_med),
                f"the same GETs alone: {fmt_s(plain_med)}",
                cold_med / plain_med,
                "≤ 1 s",
                cold_med <= COLD_TARGET_S,
            ),
            row(
                f"10. Catalogue and {MODELS} schemas, warm (a restart on the kept answers)",
                fmt_s(warm_med),
                f"the bundled snapshot read: {fmt_s(snap_med)}",
                warm_med / snap_med,
                "≤ 50 ms",
                warm_med <= WARM_TARGET_S,
            ),
        ],  # fmt: skip
        "metrics": {
            "models_offered": sorted(counts),
            "cold_median_s": cold_med,
            "warm_median_s": warm_med,
            "second_read_median_s": median(second),
            "plain_gets_median_s": plain_med,
            "snapshot_read_median_s": snap_med,
            "cold_s": cold,
            "warm_s": warm,
        },
        "notes": [
            f"Models: service.models.Models.offer() against the simulator on loopback, serving "
            f"its 7 models and copies under other ids ({MODELS} in all); cold with a fresh "
            "SQLite database (the listing and each schema fetched, normalized, turned into a "
            "request spec and kept), warm a new Models on that database (nothing fetched). "
            "Baselines: the same 101 GETs with requests alone; json.loads of the bundled "
            f"snapshot. {rounds} rounds, medians.",
        ],
    }


if __name__ == "__main__":
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv)["rows"], indent=2, ensure_ascii=False))
