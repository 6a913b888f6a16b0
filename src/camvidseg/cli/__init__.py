"""The ``camvidseg`` command line.

Subcommands live in their own modules (``camvidseg.cli.<name>``) with ``register`` and ``run``;
heavy imports (TensorFlow above all) happen inside ``run`` so ``camvidseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from camvidseg._version import __version__
from camvidseg.cli._common import (
    DEFAULT_MODEL,
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    report_error,
)
from camvidseg.exceptions import CamVidSegError

__all__ = ["build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = (
    "segment",
    "evaluate",
    "tune",
    "finetune",
    "model",
    "beam",
    "video",
    "report",
)

_EPILOG = """examples:
  camvidseg segment examples/images -o out/
  camvidseg model download                      # fetch the model once, for offline use
  camvidseg segment photos/ -o out/ --model /models/camvid-hrnetv2-w48 --outputs labels,panel
  camvidseg evaluate out/labels CamVid/LabeledApproved_full -o report/
  camvidseg tune CamVid/val CamVid/valannot --classes 11 -o tuned.json
  camvidseg finetune CamVid/train CamVid/trainannot --classes 11 -o heads/c11
  camvidseg segment photos/ -o out/ --head heads/c11
  camvidseg beam 'frames/**/*.jpg' -o out/            # the same on Apache Beam (any runner)
  camvidseg report out/                               # out/report.html: summary, metrics, images
  camvidseg video drive.mp4 -o drive_seg.mp4 --temporal ema   # needs the video extra
  camvidseg segment --help
"""


class _VersionAction(argparse.Action):
    """``--version``: computed only when asked for (it looks at the model cache)."""

    def __init__(self, option_strings: Sequence[str], dest: str, help: str | None = None) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        from camvidseg.models import version_report

        try:
            text = version_report(os.environ.get("CAMVIDSEG_MODEL", DEFAULT_MODEL))
        except OSError as exc:  # an unreadable cache folder must not hide the version
            text = f"camvidseg {__version__}\n(model cache unreadable: {exc})"
        print(text)
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands registered from :data:`COMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="camvidseg",
        description="Semantic segmentation of street scenes with the CamVid HRNet model.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the versions of camvidseg, TensorFlow and tensorflow_hub, and whether the "
        "default model is cached",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"camvidseg.cli.{name}")
        module.register(subparsers)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING
    if quiet:
        level = logging.ERROR
    elif verbose == 1:
        level = logging.INFO
    elif verbose >= 2:
        level = logging.DEBUG
    logging.basicConfig(level=level, format="camvidseg: %(levelname)s: %(message)s")
    if verbose < 2:
        # TensorFlow's C++ and Python logs drown the useful lines unless asked for.
        logging.getLogger("tensorflow").setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 some inputs failed, 2 usage, 130 Ctrl-C)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(getattr(args, "verbose", 0), getattr(args, "quiet", False))
    try:
        code: int = args.run(args)
    except KeyboardInterrupt:
        print("camvidseg: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except CamVidSegError as exc:
        return report_error(exc)
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do, and keep Python
        # from complaining again while flushing stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code
