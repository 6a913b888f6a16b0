"""``camvidseg model convert`` and ``model verify --compare-precision``; ``model info`` and
``model verify`` of an OpenVINO IR folder.

``camvidseg.cli.model`` registers these and hands the commands over with :func:`run` (which
returns ``None`` for what it does not handle). Nothing heavy is imported before a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from camvidseg.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    add_cache_dir,
    add_verbosity,
    positive_int,
)

__all__ = ["add_compare_options", "register_convert", "run"]

_CONVERT_EXAMPLES = """examples:
  camvidseg model convert --to openvino -o hrnet-openvino          # the default model
  camvidseg model convert /models/camvid-hrnetv2-w48 -o hrnet-openvino
  camvidseg model convert finetuned/ -o finetuned-openvino         # keeps the label set
  camvidseg segment photos/ -o out/ --model hrnet-openvino         # no TensorFlow needed
"""


def register_convert(actions: Any, default_handle: str) -> None:
    """Add the ``convert`` action to ``camvidseg model``."""
    convert = actions.add_parser(
        "convert",
        help="convert the model to OpenVINO IR: faster start, less memory, no TensorFlow to run",
        description="Convert a SavedModel (any model handle; a fine-tuned export keeps its label "
        "set) to an OpenVINO IR folder (model.xml, model.bin, camvidseg_openvino.json). "
        "Converting needs TensorFlow and OpenVINO once; running the folder (--model DIR) needs "
        "only OpenVINO: pip install 'camvidseg[openvino]'. The converted model is checked "
        "against TensorFlow on a probe image before anything is written.",
        epilog=_CONVERT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    convert.add_argument(
        "handle",
        nargs="?",
        default=default_handle,
        metavar="MODEL",
        help="tfhub.dev URL, Kaggle Models handle or SavedModel folder (default: %(default)s)",
    )
    convert.add_argument(
        "--to", choices=("openvino",), default="openvino", help="target format (default: openvino)"
    )
    convert.add_argument("-o", "--output", required=True, metavar="DIR", help="IR folder to write")
    convert.add_argument(
        "--features",
        action="store_true",
        help="also convert get_features (only fine-tuning uses it; doubles the folder's size)",
    )
    convert.add_argument(
        "--overwrite", action="store_true", help="replace an OpenVINO model already in DIR"
    )
    add_cache_dir(convert)
    convert.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="give up when the network stalls this long (default: 30)",
    )
    convert.add_argument("--json", action="store_true", help="print the result as JSON")
    add_verbosity(convert)
    convert.set_defaults(model_command="convert")


def add_compare_options(verify: argparse.ArgumentParser) -> None:
    """Add ``--compare-precision IMAGES...`` and ``--threads`` to ``camvidseg model verify``."""
    verify.add_argument(
        "--compare-precision",
        nargs="+",
        default=None,
        metavar="IMAGE",
        help="instead of the checks, segment these images (files or folders) at fp32 and bf16 "
        "and report label agreement, per-class IoU between the two and the speed ratio "
        "(needs a CPU with avx512_bf16 or AMX)",
    )
    verify.add_argument(
        "--threads", type=positive_int, default=None, metavar="N", help="inference threads"
    )


def _print(result: Any, as_json: bool) -> None:
    print(json.dumps(result.to_dict(), indent=2) if as_json else result.format())


def _convert(args: argparse.Namespace) -> int:
    from camvidseg.backends.convert import convert_to_openvino

    if not args.quiet and not args.json:
        print(f"converting {args.handle} (loading it with TensorFlow first) ...", file=sys.stderr)
    report = convert_to_openvino(
        args.handle,
        args.output,
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        features=args.features,
        overwrite=args.overwrite,
    )
    if args.json:
        _print(report, True)
    else:
        if not args.quiet:
            print(report.format(), file=sys.stderr)
        print(report.folder)
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    from camvidseg.precision_check import compare_precision

    result = compare_precision(
        args.handle,
        args.compare_precision,
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        threads=args.threads,
    )
    _print(result, args.json)
    for path, message in result.errors:
        print(f"camvidseg: error: {path}: {message}", file=sys.stderr)
    return EXIT_SOME_FAILED if result.errors else EXIT_OK


def run(args: argparse.Namespace) -> int | None:
    """Run ``convert``, ``verify --compare-precision``, or ``info``/``verify`` of an OpenVINO
    folder; ``None`` for anything else (``camvidseg.cli.model`` handles it)."""
    from camvidseg.backends.openvino import is_openvino_folder

    command = args.model_command
    if command == "convert":
        return _convert(args)
    if command == "verify" and getattr(args, "compare_precision", None):
        return _compare(args)
    if command in ("info", "verify") and is_openvino_folder(args.handle):
        from camvidseg.openvino_models import describe_openvino, verify_openvino

        if command == "info":
            _print(describe_openvino(args.handle), args.json)
            return EXIT_OK
        report = verify_openvino(args.handle, threads=getattr(args, "threads", None))
        _print(report, args.json)
        return EXIT_OK if report.ok else EXIT_SOME_FAILED
    return None
