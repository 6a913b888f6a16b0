"""``camvidseg evaluate``: score a folder of label maps against CamVid ground truth."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from camvidseg.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    UNKNOWN_COLORS_HELP,
    add_ground_truth_options,
    add_verbosity,
)

_EXAMPLES = """examples:
  camvidseg evaluate out/labels CamVid/LabeledApproved_full
  camvidseg evaluate out/ SegNet/CamVid/testannot --classes 11 -o report/
  camvidseg evaluate preds/ gt/ --json --gt-format rgb --unknown-colors void

Files pair by name: 0001TP_006690.png with 0001TP_006690_L.png (original release, RGB colours)
or 0001TP_006690.png (SegNet release, CamVid-11 ids). Published CamVid mIoU figures are for the
11-class SegNet split: compare with them only with --classes 11.
exit status: 0 ok, 1 some files could not be evaluated, 2 usage error (no pairs, bad folder).
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score predicted label maps against ground truth (mIoU, accuracy, confusion)",
        description="Accumulate one confusion matrix over every prediction/ground-truth pair and "
        "report pixel accuracy, mean class accuracy, per-class IoU, mIoU and frequency-weighted "
        "IoU (Void ground truth ignored; predicting Void or unlabelled is a miss).",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "predictions",
        type=Path,
        metavar="PRED_DIR",
        help="label maps (as written by 'camvidseg segment'; its output folder works too)",
    )
    parser.add_argument(
        "ground_truth",
        type=Path,
        metavar="GT_DIR",
        help="ground-truth labels (searched recursively)",
    )
    parser.add_argument(
        "--classes",
        choices=("32", "11"),
        default="32",
        help="evaluate in CamVid-32 or in the 11 SegNet classes (32-class labels are grouped; "
        "default: 32)",
    )
    add_ground_truth_options(
        parser,
        format_help="ground truth as RGB colours (*_L.png) or ids (SegNet *annot/); auto looks "
        "at each image's mode (default: auto)",
        unknown_help=f"{UNKNOWN_COLORS_HELP} (default: error)",
    )
    parser.add_argument(
        "--pred-classes",
        choices=("32", "11"),
        default=None,
        help="label set of predictions without an embedded CamVid palette (default: --classes)",
    )
    parser.add_argument(
        "--grouping", default="merge", help="32 -> 11 grouping for --classes 11 (default: merge)"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="REPORT_DIR",
        help="write metrics.json, metrics.txt and confusion.png into this folder",
    )
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_verbosity(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from camvidseg.evaluation import evaluate_folders, write_report

    result = evaluate_folders(
        args.predictions,
        args.ground_truth,
        classes=int(args.classes),
        gt_format=args.gt_format,
        unknown=args.unknown_colors,
        prediction_classes=None if args.pred_classes is None else int(args.pred_classes),
        grouping=args.grouping,
        progress=sys.stderr.isatty() and not args.quiet and not args.json,
    )
    for problem in result.problems:
        print(f"camvidseg: error: {problem.message}", file=sys.stderr)
    if args.output is not None:
        written = write_report(result, args.output)
        if not args.quiet and not args.json:
            print(f"report written to {written['metrics'].parent}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.table())
    if result.problems:
        print(
            f"camvidseg: {len(result.problems)} files could not be evaluated; the metrics cover "
            f"{result.num_images} pairs",
            file=sys.stderr,
        )
        return EXIT_SOME_FAILED
    return EXIT_OK
