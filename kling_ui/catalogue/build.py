"""Write ``snapshot.json`` from the vendor's per-model documents:

    python -m kling_ui.catalogue.build PATH/TO/video-models

``PATH/TO/video-models`` is a folder of the vendor's OpenAPI files with their ``index.json``
(the offline copy in the project's shared spec). Kept: every image-to-video, text-to-video
and start+end frame model (text-to-video with optional frames included) the vendor has not
marked deprecated, nor the overlay's ``retired`` (no page and no place in the model list);
each normalized with ``overlay.json`` (``schema.normalize``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import SNAPSHOT_PATH, ordered
from .schema import Overlay, normalize

KEPT_KINDS = ("image-to-video", "text-to-video", "start+end frame")


def build(folder: Path, overlay: Overlay | None = None) -> dict:
    """The snapshot's content, from ``folder``."""
    overlay = overlay or Overlay.load()
    index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
    entries = []
    for item in index["models"]:
        if item.get("model_database") == "deprecated" or not item["kind"].startswith(KEPT_KINDS):
            continue
        if item["model"] in overlay.retired:
            continue
        document = json.loads((folder / item["file"]).read_text(encoding="utf-8"))
        entries.append(normalize(document, overlay))
    source = index.get("source", {})
    return {
        "_what": "Written by python -m kling_ui.catalogue.build from the vendor's per-model "
        "OpenAPI documents; do not edit by hand (edit overlay.json and build again).",
        "source": source.get("commit") or source,
        "as_of": str(source.get("commit_date") or "")[:10],  # the documents' date
        "models": [e.to_json() for e in ordered(entries, overlay)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the vendor's video-models folder")
    parser.add_argument("--out", type=Path, default=SNAPSHOT_PATH)
    args = parser.parse_args(argv)
    content = build(args.folder)
    args.out.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"{len(content['models'])} models -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
