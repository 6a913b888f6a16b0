"""``camvidseg segment``: segment files and folders of images into an output folder."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from camvidseg.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    add_model_options,
    add_verbosity,
    load_segmenter,
    unit_float,
)
from camvidseg.exceptions import CamVidSegError

log = logging.getLogger("camvidseg")

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif"})
OUTPUT_KINDS = ("labels", "color", "overlay")

_EXAMPLES = """examples:
  camvidseg segment examples/images -o out/
  camvidseg segment a.jpg b.png -o out/ --outputs labels,overlay --alpha 0.5
  camvidseg segment frames/ -o out/ --model /models/camvid-hrnetv2-w48 --classes 11
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment images and folders into label, colour and overlay images",
        description="Segment images (files or folders, recursed) and write one output per kind "
        "under OUT: labels/ (indexed PNG, CamVid palette), color/, overlay/, and manifest.json.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT", help="output folder"
    )
    parser.add_argument(
        "--outputs",
        default=",".join(OUTPUT_KINDS),
        help="comma-separated outputs to write: labels,color,overlay (default: all three)",
    )
    parser.add_argument(
        "--alpha",
        type=unit_float,
        default=0.6,
        help="mask weight of the overlay blend (default: 0.6)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_model_options(parser)
    add_verbosity(parser)
    parser.set_defaults(run=run)


def iter_inputs(inputs: list[str]) -> Iterator[tuple[Path, Path]]:
    """Yield ``(path, relative output stem)`` for every image file named or under a folder."""
    for name in inputs:
        root = Path(name)
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    yield path, path.relative_to(root).with_suffix("")
        else:
            yield root, Path(root.stem)


def run(args: argparse.Namespace) -> int:
    from camvidseg.imageio import open_image, save_image, save_label_png

    kinds = [k.strip() for k in args.outputs.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(OUTPUT_KINDS))
    if unknown or not kinds:
        print(
            f"camvidseg: error: unknown outputs {unknown} (choose from {', '.join(OUTPUT_KINDS)})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    inputs = list(iter_inputs(args.inputs))
    if not inputs:
        print("camvidseg: error: no images found in the inputs", file=sys.stderr)
        return EXIT_USAGE
    segmenter = load_segmenter(args)
    out: Path = args.output
    entries: list[dict[str, Any]] = []
    failed = 0
    for path, stem in inputs:
        entry: dict[str, Any] = {"input": str(path)}
        started = time.perf_counter()
        try:
            loaded = open_image(path)
            seg = segmenter.segment(loaded.array)
            written: dict[str, str] = {}
            if "labels" in kinds:
                written["labels"] = str(
                    save_label_png(
                        out / "labels" / stem.with_suffix(".png"), seg.labels, seg.palette
                    )
                )
            if "color" in kinds:
                written["color"] = str(
                    save_image(out / "color" / stem.with_suffix(".png"), seg.colorize())
                )
            if "overlay" in kinds:
                written["overlay"] = str(
                    save_image(out / "overlay" / stem.with_suffix(".jpg"), seg.overlay(args.alpha))
                )
            entry.update(
                status="ok", outputs=written, size=list(loaded.size), class_areas=seg.class_areas()
            )
        except CamVidSegError as exc:
            failed += 1
            entry.update(status="error", error=str(exc))
            print(f"camvidseg: error: {exc}", file=sys.stderr)
        entry["seconds"] = round(time.perf_counter() - started, 4)
        entries.append(entry)
    summary = {
        "total": len(entries),
        "ok": len(entries) - failed,
        "error": failed,
        "model": args.model,
        "classes": int(args.classes),
    }
    from camvidseg.imageio import atomic_write

    with atomic_write(out / "manifest.json") as handle:
        handle.write(json.dumps({"summary": summary, "entries": entries}, indent=2).encode())
    if args.json:
        print(json.dumps(summary))
    elif not args.quiet:
        print(f"segmented {summary['ok']} of {summary['total']} images into {out}", file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK
