"""Options and helpers shared by every subcommand (one vocabulary across the CLI)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from camvidseg.backends.handles import DEFAULT_HANDLE, DEFAULT_TIMEOUT, FAKE_PREFIX
from camvidseg.exceptions import CamVidSegError, ConfigError, ModelLoadError

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Like a Unix tool killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141

#: The default model handle (:data:`camvidseg.backends.DEFAULT_HANDLE`, the one definition).
DEFAULT_MODEL = DEFAULT_HANDLE
#: Hidden: a fake model for demos and tests, never chosen implicitly.
FAKE_MODEL_PREFIX = FAKE_PREFIX


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Add the ``model`` group: ``--model``, ``--cache-dir``, ``--timeout``, ``--batch-size``,
    ``--max-side``, ``--classes``, ``--head``, ``--precision``, ``--threads``.

    The settings among them (all but ``--cache-dir`` and ``--timeout``)
    default to ``None``: a config file (``--config``, see
    :func:`camvidseg.cli._config.add_config_options`) or the built-in default gives their
    value. Commands call :func:`camvidseg.cli._config.add_segmenter_options`, which adds this
    group and the settings group together.
    """
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="HANDLE_OR_PATH",
        default=None,
        help="tfhub.dev URL, Kaggle Models handle, or local SavedModel folder (default: the "
        f"config's model, else $CAMVIDSEG_MODEL, else {DEFAULT_MODEL})",
    )
    add_cache_dir(group)
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="give up a model download when the network stalls this long "
        f"(default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--batch-size", type=positive_int, default=None, metavar="N", help="images per model call"
    )
    group.add_argument(
        "--max-side",
        type=positive_int,
        default=None,
        metavar="PIXELS",
        help="resize so the longer side is at most this before inference (labels keep the "
        "input size)",
    )
    group.add_argument(
        "--classes",
        choices=("32", "11"),
        default=None,
        help="label set of the outputs: CamVid-32 or the 11-class SegNet grouping "
        "(default: the config's, else 32)",
    )
    group.add_argument(
        "--head",
        metavar="HEAD_DIR",
        default=None,
        help="a head trained by 'camvidseg finetune' on this model: outputs are its classes "
        "(--classes must match them, or group CamVid-32 to 11)",
    )
    group.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=None,
        help="inference precision (default: the config's, else fp32): bf16 is about 2x faster "
        "on CPUs with avx512_bf16 or AMX and an error elsewhere; it may change some labels "
        "(measure with 'camvidseg model verify MODEL --compare-precision IMAGES')",
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="inference threads (default: the config's, else all cores)",
    )


def add_cache_dir(parser: argparse._ActionsContainer) -> None:
    """Add ``--cache-dir`` (the TF Hub cache folder) to a parser or argument group."""
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        default=None,
        help="TF Hub cache folder (default: $TFHUB_CACHE_DIR, else $TMPDIR/tfhub_modules)",
    )


#: ``--unknown-colors`` help of ``add_ground_truth_options`` unless a command words it otherwise.
UNKNOWN_COLORS_HELP = "RGB ground-truth colours not in CamVid-32: report the file, or treat as Void"


def add_ground_truth_options(
    parser: argparse._ActionsContainer,
    *,
    format_help: str,
    unknown_help: str = UNKNOWN_COLORS_HELP,
) -> None:
    """Add ``--gt-format`` and ``--unknown-colors`` (how ground-truth files are read) to a parser
    or argument group; each command words the help for its own use."""
    parser.add_argument(
        "--gt-format", choices=("auto", "rgb", "index"), default="auto", help=format_help
    )
    parser.add_argument(
        "--unknown-colors", choices=("error", "void"), default="error", help=unknown_help
    )


def _int_at_least(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def unit_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {value}")
    return value


def report_error(exc: CamVidSegError) -> int:
    """Print ``exc`` as one line on stderr; return its exit code."""
    print(f"camvidseg: error: {exc}", file=sys.stderr)
    if isinstance(exc, (ModelLoadError, ConfigError)):
        return EXIT_USAGE
    return EXIT_SOME_FAILED


def progress_bar(total: int | None, unit: str) -> Any:
    r"""A tqdm bar on stderr counting ``unit``\ s (callers make one on a terminal only)."""
    from tqdm import tqdm

    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        width = 0
    # Some terminals (fresh pseudo-terminals, serial consoles) report 0 columns: a fixed width.
    return tqdm(
        total=total,
        unit=unit,
        file=sys.stderr,
        dynamic_ncols=width > 0,
        ncols=None if width > 0 else 80,
        smoothing=0.1,
    )
