"""``camvidseg report``: write a static HTML report of an output folder (``OUT/report.html``).

Also the ``--report`` flag other commands take (:func:`add_report_flag`,
:func:`write_requested_report`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from camvidseg.cli._common import EXIT_OK, add_verbosity, positive_int

_DESCRIPTION = """\
Write OUT/report.html, a static page of a run that opens in any browser, offline:
the run summary (model, options, counts, timing), each class's share of the pixels,
the evaluation (metrics and confusion matrix) when the run had --gt, every error, and
a thumbnail grid of every input (click for its panel or most complete output) with its
class areas. Large runs are split into pages (report.html, report-2.html, ...).

OUT is an output folder of 'camvidseg segment' or 'camvidseg beam' (manifest.json, and
errors.jsonl for Beam), and/or a folder of 'camvidseg video' outputs (OUTPUT.json beside
each video; a video file or its OUTPUT.json names its folder). Thumbnails are written
to OUT/thumbs/ and reused while up to date. Links are relative, so OUT can be zipped
and shared.
"""

_EXAMPLES = """examples:
  camvidseg report out/
  camvidseg segment examples/images -o out/ --report
  camvidseg report out/ --page-size 500 --thumbnail-size 320
  camvidseg report videos/drive.mp4      # report of the folder holding drive.mp4.json
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write OUT/report.html: summary, class areas, metrics, errors and thumbnails",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "folder",
        type=Path,
        metavar="OUT",
        help="output folder of segment or beam, a folder of video outputs, or a video",
    )
    parser.add_argument(
        "--page-size",
        type=positive_int,
        default=200,
        metavar="N",
        help="inputs per page of the thumbnail grid (default: 200)",
    )
    parser.add_argument(
        "--thumbnail-size",
        type=positive_int,
        default=240,
        metavar="PIXELS",
        help="longest side of a thumbnail, at least 16 (default: 240)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print what was written as JSON to stdout"
    )
    add_verbosity(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from camvidseg.report import write_report

    result = write_report(args.folder, page_size=args.page_size, thumbnail_size=args.thumbnail_size)
    if args.json:
        print(json.dumps(result.to_json()), flush=True)
    if not args.quiet:
        pages = f", {len(result.pages)} pages" if len(result.pages) > 1 else ""
        print(
            f"camvidseg: report: {result.path} ({result.entries} inputs, {result.errors} "
            f"errors{pages})",
            file=sys.stderr,
        )
    return EXIT_OK


def add_report_flag(parser: argparse._ActionsContainer) -> None:
    """Add ``--report`` (write ``OUT/report.html`` after the run) to a parser or group."""
    parser.add_argument(
        "--report",
        action="store_true",
        help="also write OUT/report.html after the run (see 'camvidseg report')",
    )


def write_requested_report(args: argparse.Namespace, folder: Path) -> bool:
    """With ``--report``, write the report of ``folder``; whether all went well (a failure is
    one error line on stderr, the run's outputs stay)."""
    if not getattr(args, "report", False):
        return True
    from camvidseg.exceptions import CamVidSegError
    from camvidseg.report import write_report

    try:
        result = write_report(folder)
    except (CamVidSegError, OSError) as exc:
        print(f"camvidseg: error: report not written: {exc}", file=sys.stderr)
        return False
    if not getattr(args, "quiet", False):
        print(f"camvidseg: report: {result.path}", file=sys.stderr)
    return True
