"""The ``camvidseg`` command line.

Subcommands live in their own modules (``camvidseg.cli.<name>``) with ``register`` and ``run``;
heavy imports (TensorFlow above all) happen inside ``run`` so ``camvidseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from camvidseg._version import __version__
from camvidseg.cli._common import EXIT_INTERRUPTED, EXIT_USAGE, report_error
from camvidseg.exceptions import CamVidSegError

__all__ = ["build_parser", "main"]

#: Subcommand modules, in the order ``--help`` lists them.
COMMANDS: tuple[str, ...] = ("segment", "evaluate")

_EPILOG = """examples:
  camvidseg segment examples/images -o out/
  camvidseg segment photos/ -o out/ --model /models/camvid-hrnetv2-w48 --outputs labels,panel
  camvidseg evaluate out/labels CamVid/LabeledApproved_full -o report/
  camvidseg segment --help
"""


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (subcommands registered from :data:`COMMANDS`)."""
    parser = argparse.ArgumentParser(
        prog="camvidseg",
        description="Semantic segmentation of street scenes with the CamVid HRNet model.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"camvidseg {__version__}")
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
    return code
