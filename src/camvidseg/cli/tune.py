"""``camvidseg tune``: search post-processing settings against ground truth, write the best."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camvidseg.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    FAKE_MODEL_PREFIX,
    add_ground_truth_options,
    add_verbosity,
    positive_int,
)
from camvidseg.cli._config import (
    add_segmenter_options,
    build_segmenter,
    config_from_args,
    model_handle,
)

if TYPE_CHECKING:
    from camvidseg.backends.base import Backend

_EXAMPLES = """examples:
  camvidseg tune CamVid/val CamVid/valannot --classes 11 -o tuned.json
  camvidseg segment CamVid/test -o out/ --classes 11 --config tuned.json --gt CamVid/testannot
  camvidseg tune frames/ labels/ --objective iou:Pedestrian --grid grid.json --json
  camvidseg tune frames/ labels/ --config current.json --cache /data/tune-cache -o tuned.json

The model runs once per image and augmentation view; predictions are cached (--cache), so a
re-run or another grid reuses them and never runs the model again. A --grid file is a JSON
object of lists, e.g. {"majority": [0, 3, 5, 7], "min_region": [0, 50, 200],
"tta": [null, {"flip": true}, {"flip": true, "scales": [0.75, 1.0, 1.25]}],
"min_confidence": [null, 0.3]}; axes not given keep their defaults (opening, closing, shape,
min_region, connectivity, majority, tta, min_confidence).
Abstaining (min_confidence) is a miss under the evaluation protocol: it can never raise pixel
accuracy, only a class's IoU by removing false positives.
exit status: 0 ok, 1 some images could not be used, 2 usage error (no pairs, bad config/grid).
"""


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/camvidseg/tune`` (default ``~/.cache/camvidseg/tune``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "camvidseg" / "tune"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="search cleanup, TTA and confidence settings that maximise mIoU on labelled images",
        description="Run the model once per image (predictions cached on disk), then search "
        "post-processing settings (cleanup: opening, closing, small regions, majority filter; "
        "test-time augmentation; confidence threshold) for the best mIoU or one class's IoU "
        "against ground truth. Prints a ranked table and writes the best setting as a config "
        "file for 'camvidseg segment --config'.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", type=Path, metavar="IMAGES_DIR", help="images (recursed)")
    parser.add_argument(
        "ground_truth", type=Path, metavar="GT_DIR", help="ground-truth labels (recursed)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="CONFIG",
        help="write the best setting to this config file (JSON)",
    )
    parser.add_argument(
        "--objective",
        default="miou",
        metavar="miou|iou:CLASS",
        help="what to maximise: mIoU (default) or one class's IoU, e.g. iou:Pedestrian",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="DIR",
        help=f"prediction cache folder (default: {default_cache_dir()})",
    )
    parser.add_argument(
        "--grid", type=Path, default=None, metavar="FILE", help="search space as a JSON file"
    )
    parser.add_argument(
        "--search",
        choices=("auto", "grid", "coordinate"),
        default="auto",
        help="every combination, or coordinate search; auto: grid up to 256 combinations",
    )
    parser.add_argument(
        "--top", type=positive_int, default=10, metavar="N", help="rows of the table (10)"
    )
    parser.add_argument(
        "--top-k",
        type=positive_int,
        default=3,
        metavar="K",
        help="classes cached per pixel and view (3); TTA averages over them, so 32 makes TTA "
        "scores exact at a larger cache",
    )
    add_ground_truth_options(
        parser,
        format_help="ground truth as RGB colours (*_L.png) or ids (SegNet *annot/) (default: auto)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    # The base config's model, classes, max_side and tiling are kept (flags win); its TTA,
    # cleanup and threshold are what the search replaces.
    add_segmenter_options(parser, postprocessing=False)
    add_verbosity(parser)
    parser.set_defaults(run=run)


def model_key(handle: str) -> str:
    """Identify a model in cache keys: a local folder by its path and its ``saved_model.pb``
    (so replacing the model invalidates the cache), anything else by the handle."""
    path = Path(handle)
    if not handle.startswith(FAKE_MODEL_PREFIX) and path.is_dir():
        graph = path / "saved_model.pb"
        stamp = ""
        if graph.is_file():
            stat = graph.stat()
            stamp = f"@{stat.st_mtime_ns}:{stat.st_size}"
        return f"{path.resolve()}{stamp}"
    return handle


def run(args: argparse.Namespace) -> int:
    from camvidseg.config import save_config
    from camvidseg.tune import SearchSpace, load_grid, tune

    base = config_from_args(args)
    handle = model_handle(base)
    space = load_grid(args.grid) if args.grid is not None else SearchSpace()

    def load_backend() -> Backend:
        return build_segmenter(args, base).backend

    result = tune(
        args.images,
        args.ground_truth,
        model=load_backend,
        model_key=model_key(handle),
        cache_dir=args.cache if args.cache is not None else default_cache_dir(),
        base=base,
        space=space,
        objective=args.objective,
        search=args.search,
        batch_size=base.batch_size,
        top_k=args.top_k,
        gt_format=args.gt_format,
        unknown=args.unknown_colors,
        progress=sys.stderr.isatty() and not args.quiet and not args.json,
    )
    for problem in result.problems:
        print(f"camvidseg: error: {problem.message}", file=sys.stderr)
    written = None if args.output is None else save_config(result.config, args.output)
    if args.json:
        report = result.to_dict(top=args.top)
        report["output"] = None if written is None else str(written)
        print(json.dumps(report, indent=2))
    else:
        print(result.table(args.top))
    if not args.quiet and not args.json:
        if written is not None:
            print(
                f"best setting written to {written}; use it with: camvidseg segment ... "
                f"--config {written}",
                file=sys.stderr,
            )
        else:
            print("pass -o FILE to save the best setting as a config file", file=sys.stderr)
        print(
            f"model runs: {result.computed_views} image views computed, "
            f"{result.reused_views} read from the cache",
            file=sys.stderr,
        )
    if result.problems:
        print(
            f"camvidseg: {len(result.problems)} images could not be used; the metrics cover "
            f"{result.num_images} images",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return EXIT_OK
