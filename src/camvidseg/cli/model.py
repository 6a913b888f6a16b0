"""``camvidseg model``: download the model ahead of time, describe it, verify it."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from camvidseg.backends.handles import DEFAULT_TIMEOUT
from camvidseg.cli import model_openvino
from camvidseg.cli._common import (
    DEFAULT_MODEL,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    add_cache_dir,
    add_verbosity,
)

_EXAMPLES = """examples:
  camvidseg model download                                  # the default model, TF Hub cache
  camvidseg model download --cache-dir /data/tfhub          # a cache to copy to offline machines
  camvidseg model info
  camvidseg model info /models/camvid-hrnetv2-w48 --json
  camvidseg model verify /models/camvid-hrnetv2-w48
  camvidseg model convert --to openvino -o hrnet-openvino   # run without TensorFlow
"""

_DOWNLOAD_EXAMPLES = """examples:
  camvidseg model download
  camvidseg model download https://tfhub.dev/google/HRNet/camvid-hrnetv2-w48/1 --cache-dir DIR
  TFHUB_CACHE_DIR=DIR camvidseg segment photos/ -o out/     # later, offline
"""

_INFO_EXAMPLES = """examples:
  camvidseg model info
  camvidseg model info /models/camvid-hrnetv2-w48
  camvidseg model info --cache-dir /data/tfhub --json
"""

_VERIFY_EXAMPLES = """examples:
  camvidseg model verify /models/camvid-hrnetv2-w48
  camvidseg model verify https://tfhub.dev/google/HRNet/camvid-hrnetv2-w48/1 --json
"""


def _default_handle() -> str:
    return os.environ.get("CAMVIDSEG_MODEL", DEFAULT_MODEL)


def _add_common(parser: argparse.ArgumentParser, *, timeout: bool = True) -> None:
    add_cache_dir(parser)
    if timeout:
        parser.add_argument(
            "--timeout",
            type=float,
            default=DEFAULT_TIMEOUT,
            metavar="SECONDS",
            help=f"give up when the network stalls this long (default: {DEFAULT_TIMEOUT:g})",
        )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_verbosity(parser)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "model",
        help="download the model ahead of time, describe it, verify it",
        description="Manage the HRNet CamVid model: fetch it into the TF Hub cache for offline "
        "use, show where it is and what it returns, check that it works.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="model_command", metavar="ACTION")
    parser.set_defaults(run=run, model_parser=parser)

    download = actions.add_parser(
        "download",
        help="fetch the model into the TF Hub cache (or kagglehub's) and verify it",
        description="Download the model once (with a progress bar) into the TF Hub cache, "
        "where `camvidseg segment` and Segmenter.from_hub find it with no network, then run it "
        "once to check it. Prints the model folder.",
        epilog=_DOWNLOAD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    download.add_argument(
        "handle",
        nargs="?",
        default=_default_handle(),
        metavar="HANDLE",
        help="tfhub.dev URL or Kaggle Models handle (default: $CAMVIDSEG_MODEL or %(default)s)",
    )
    _add_common(download)
    download.set_defaults(run=run, model_command="download")

    info = actions.add_parser(
        "info",
        help="where the model is cached, its size, signatures, shapes, layout and classes",
        description="Describe a model without downloading it: cache folder and size, its "
        "functions with input and output shapes, the channel layout (33 with a background "
        "channel, or 32 with Void in channel 0) and the class of each output channel.",
        epilog=_INFO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    info.add_argument(
        "handle",
        nargs="?",
        default=_default_handle(),
        metavar="HANDLE_OR_PATH",
        help="tfhub.dev URL, Kaggle Models handle or SavedModel folder (default: %(default)s)",
    )
    _add_common(info)
    info.set_defaults(run=run, model_command="info")

    verify = actions.add_parser(
        "verify",
        help="run the model once on a tiny image and check shapes and probabilities",
        description="Load a model, run it on a tiny image and check the output shape, dtype, "
        "channel count and that the values are probabilities summing to 1. Exit code 1 if a "
        "check fails.",
        epilog=_VERIFY_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verify.add_argument(
        "handle", metavar="PATH", help="SavedModel folder (or a handle, downloaded if needed)"
    )
    _add_common(verify)
    verify.set_defaults(run=run, model_command="verify")
    model_openvino.add_compare_options(verify)
    model_openvino.register_convert(actions, _default_handle())


class _Progress:
    """A tqdm byte counter, opened on the first chunk so a cache hit shows no bar."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None  # tqdm, imported on first use
        self.total = 0

    def __call__(self, size: int) -> None:
        self.total += size
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                desc="downloading", unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr
            )
        self.bar.update(size)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    command = getattr(args, "model_command", None)
    if command is None:
        args.model_parser.print_help(sys.stderr)
        return EXIT_USAGE
    handled = model_openvino.run(args)  # convert, --compare-precision, OpenVINO folders
    if handled is not None:
        return handled
    from camvidseg import models

    if command == "info":
        info = models.describe(args.handle, args.cache_dir, timeout=args.timeout)
        print(json.dumps(info.to_dict(), indent=2) if args.json else info.format())
        return EXIT_OK
    if command == "verify":
        report = models.verify(args.handle, args.cache_dir, timeout=args.timeout)
        print(json.dumps(report.to_dict(), indent=2) if args.json else report.format())
        return EXIT_OK if report.ok else EXIT_SOME_FAILED
    progress = _Progress(enabled=not args.quiet and not args.json)
    try:
        folder = models.download(
            args.handle, args.cache_dir, args.timeout, check=False, progress=progress
        )
    finally:
        progress.close()
    # The copy is in the cache now: verifying by handle loads it with no network.
    report = models.verify(args.handle, args.cache_dir, timeout=args.timeout)
    if args.json:
        print(
            json.dumps(
                {
                    "handle": args.handle,
                    "path": str(folder),
                    "downloaded_bytes": progress.total,
                    "verify": report.to_dict(),
                },
                indent=2,
            )
        )
    else:
        if not args.quiet:
            print(report.format(), file=sys.stderr)
        print(folder)
    return EXIT_OK if report.ok else EXIT_SOME_FAILED
