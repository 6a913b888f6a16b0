"""Options and helpers shared by every subcommand (one vocabulary across the CLI)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from camvidseg.exceptions import CamVidSegError, ConfigError, ModelLoadError

if TYPE_CHECKING:
    from camvidseg.segmenter import Segmenter

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Like a Unix tool killed by SIGPIPE (128 + 13).
EXIT_BROKEN_PIPE = 141

DEFAULT_MODEL = "https://tfhub.dev/google/HRNet/camvid-hrnetv2-w48/1"
#: Hidden: a fake model for demos and tests, never chosen implicitly.
FAKE_MODEL_PREFIX = "fake:"


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-q", "--quiet", action="store_true", help="only print errors")
    group.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="HANDLE_OR_PATH",
        default=os.environ.get("CAMVIDSEG_MODEL", DEFAULT_MODEL),
        help="tfhub.dev URL, Kaggle Models handle, or local SavedModel folder "
        "(default: $CAMVIDSEG_MODEL or %(default)s)",
    )
    add_cache_dir(group)
    group.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up a model download when the network stalls this long (default: 30)",
    )
    group.add_argument(
        "--batch-size", type=positive_int, default=1, metavar="N", help="images per model call"
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
        default="32",
        help="label set of the outputs: CamVid-32 or the 11-class SegNet grouping",
    )
    group.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default="fp32",
        help="inference precision: fp32, or bf16 (about 2x faster on CPUs with avx512_bf16 or "
        "AMX; an error elsewhere; labels may differ slightly, see 'model verify "
        "--compare-precision')",
    )
    group.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        metavar="N",
        help="inference threads (default: all cores)",
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


def load_segmenter(args: argparse.Namespace) -> Segmenter:
    """Build the Segmenter the common options describe.

    ``--model fake:33`` / ``fake:32`` selects the deterministic nearest-colour fake model (for
    demos and tests); ``fake:noisy`` is the same with known speckle noise
    (:class:`~camvidseg.backends.fake.SpeckleNoiseBackend`, for demonstrating ``tune``). They are
    only ever used when asked for by name. For tests of slow models, ``fake:33?latency=0.2``
    makes every model call sleep that many seconds.
    """
    from camvidseg.palette import CamVidPalette
    from camvidseg.segmenter import Segmenter

    options = {
        "batch_size": args.batch_size,
        "max_side": args.max_side,
        "palette": CamVidPalette.by_name(args.classes),
    }
    model: str = args.model
    if model.startswith(FAKE_MODEL_PREFIX):
        from camvidseg.backends.fake import NearestColorBackend

        noisy = model.removeprefix(FAKE_MODEL_PREFIX).startswith("noisy")
        channels, latency = parse_fake_model(model.replace("noisy", "33", 1) if noisy else model)
        backend = NearestColorBackend(channels=channels, latency=latency)
        if noisy:
            from camvidseg.backends.fake import SpeckleNoiseBackend

            return Segmenter(SpeckleNoiseBackend(backend), **options)
        return Segmenter(backend, **options)
    return Segmenter.from_hub(
        model,
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        precision=getattr(args, "precision", "fp32"),
        threads=getattr(args, "threads", None),
        **options,
    )


def parse_fake_model(model: str) -> tuple[int, float]:
    """``(channels, latency)`` of a ``fake:CHANNELS[?latency=SECONDS]`` model name.

    The latency parameter is for testing (slow-model runs, interruptions) and benchmarks.

    Example:
        >>> parse_fake_model("fake:32?latency=0.5")
        (32, 0.5)
    """
    spec, _, query = model.removeprefix(FAKE_MODEL_PREFIX).partition("?")
    channels = spec or "33"
    if channels not in ("32", "33"):
        raise ConfigError(f"unknown fake model {model!r} (use fake:33, fake:32 or fake:noisy)")
    latency = 0.0
    for item in filter(None, query.split("&")):
        key, _, value = item.partition("=")
        if key != "latency":
            raise ConfigError(f"unknown fake model parameter {key!r} in {model!r} (use latency)")
        try:
            latency = float(value)
        except ValueError:
            raise ConfigError(f"fake model latency must be seconds (got {value!r})") from None
        if not 0.0 <= latency < float("inf"):
            raise ConfigError(f"fake model latency must be >= 0 seconds (got {value!r})")
    return int(channels), latency


def report_error(exc: CamVidSegError) -> int:
    """Print ``exc`` as one line on stderr; return its exit code."""
    print(f"camvidseg: error: {exc}", file=sys.stderr)
    if isinstance(exc, (ModelLoadError, ConfigError)):
        return EXIT_USAGE
    return EXIT_SOME_FAILED
