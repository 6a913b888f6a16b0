"""``camvidseg segment``: segment files and folders of images into an output folder.

A thin layer over :mod:`camvidseg.pipeline`: options, progress bar, error lines, exit codes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from camvidseg.backends.handles import model_identity
from camvidseg.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    add_ground_truth_options,
    add_verbosity,
    non_negative_int,
    positive_int,
    progress_bar,
    report_error,
    unit_float,
)
from camvidseg.cli._config import (
    add_segmenter_options,
    build_segmenter,
    config_from_args,
    model_handle,
)
from camvidseg.cli.report import add_report_flag, write_requested_report

if TYPE_CHECKING:
    from camvidseg.config import SegmentConfig
    from camvidseg.evaluation import StreamingEvaluator
    from camvidseg.metrics import EvaluationResult
    from camvidseg.pipeline import InputFile, ManifestEntry, RunOptions, RunReport
    from camvidseg.segmenter import Segmentation

# Duplicated from camvidseg.pipeline so that `--help` imports nothing heavy.
_OUTPUT_KINDS = ("labels", "color", "overlay", "panel", "confidence")
_DEFAULT_OUTPUTS = "labels,color,overlay"

_DESCRIPTION = """\
Segment images (files, and folders walked recursively) and write, for each input
a/b/frame.jpg found in an input folder:

  OUT/labels/a/b/frame.png      indexed PNG, CamVid palette embedded: pixel = class id
  OUT/color/a/b/frame.png       colour mask
  OUT/overlay/a/b/frame.jpg     mask blended over the image (--alpha, --overlay-format)
  OUT/panel/a/b/frame.png       original | mask | overlay with a legend (--outputs ...,panel)
  OUT/confidence/a/b/frame.png  winning-class probability, 16-bit (or 8-bit) grayscale
  OUT/manifest.json             every input: status, error, outputs, size, class areas, timing

Re-running resumes: inputs whose outputs exist and are valid are skipped (--overwrite
redoes them). Every file is written under a temporary name and moved into place.
Exit codes: 0 all ok, 1 some inputs failed, 2 usage or configuration error, 130 Ctrl-C.
"""

_EXAMPLES = """examples:
  camvidseg segment examples/images -o out/
  camvidseg segment a.jpg b.png -o out/ --outputs labels,overlay --alpha 0.5
  camvidseg segment frames/ -o out/ --glob '*.png' --classes 11 --batch-size 8
  camvidseg segment photos/ -o out/ --outputs labels,panel,confidence --confidence-bits 8
  camvidseg segment frames/ -o out/ --model /models/camvid-hrnetv2-w48 --json > summary.json
  camvidseg segment CamVid/test -o out/ --classes 11 --config tuned.json --gt CamVid/testannot
  camvidseg segment frames/ -o out/ --tta flip --tta-scales 0.75,1,1.25 --majority 5
"""


def output_kinds(text: str) -> tuple[str, ...]:
    """argparse type of ``--outputs``: a comma-separated selection of output kinds."""
    kinds = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in _OUTPUT_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated list of {','.join(_OUTPUT_KINDS)} (got {text!r})"
        )
    return kinds


def add_output_kinds(group: Any) -> None:
    """``--outputs``: which output kinds to write (``segment`` and ``beam``)."""
    group.add_argument(
        "--outputs",
        type=output_kinds,
        default=output_kinds(_DEFAULT_OUTPUTS),
        metavar="KINDS",
        help=f"comma-separated outputs from {','.join(_OUTPUT_KINDS)} "
        f"(default: {_DEFAULT_OUTPUTS})",
    )


def add_output_encoding(group: Any) -> None:
    """How outputs are encoded and when inputs are redone, ``--alpha`` to
    ``--max-input-pixels`` (``segment`` and ``beam``; :func:`run_options` reads them)."""
    group.add_argument(
        "--alpha",
        type=unit_float,
        default=0.6,
        help="mask weight of the overlay blend, 0..1 (default: 0.6)",
    )
    group.add_argument(
        "--overlay-format",
        choices=("jpg", "png"),
        default="jpg",
        help="file format of overlays (default: jpg)",
    )
    group.add_argument(
        "--jpeg-quality",
        type=positive_int,
        default=92,
        metavar="Q",
        help="JPEG quality of overlays, 1..100 (default: 92)",
    )
    group.add_argument(
        "--confidence-bits",
        type=int,
        choices=(16, 8),
        default=16,
        help="bit depth of confidence PNGs (default: 16)",
    )
    group.add_argument(
        "--no-legend", action="store_true", help="draw panels without the class legend"
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="redo inputs whose outputs already exist (default: skip them, i.e. resume)",
    )
    group.add_argument(
        "--max-input-pixels",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="refuse images with more pixels than this before decoding them (default: 0, "
        "only Pillow's decompression-bomb limit of about 89 megapixels); large images are "
        "segmented in tiles",
    )


def run_options(args: argparse.Namespace, outputs: tuple[str, ...], **extra: int) -> RunOptions:
    """The :class:`~camvidseg.pipeline.RunOptions` of :func:`add_output_encoding`'s flags,
    for ``outputs`` (``extra``: further fields, e.g. ``workers``)."""
    from camvidseg.pipeline import RunOptions

    return RunOptions(
        outputs=outputs,
        alpha=args.alpha,
        overlay_format=args.overlay_format,
        jpeg_quality=args.jpeg_quality,
        confidence_bits=args.confidence_bits,
        legend=not args.no_legend,
        overwrite=args.overwrite,
        max_input_pixels=args.max_input_pixels or None,
        **extra,
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment images and folders into label, colour, overlay and panel images",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="OUT", help="output folder"
    )
    group = parser.add_argument_group("inputs and outputs")
    group.add_argument(
        "--glob",
        action="append",
        metavar="PATTERN",
        help="only take files in folders whose relative path matches (e.g. '*.png', "
        "'cam1/*.jpg'); repeatable (default: every image suffix)",
    )
    add_output_kinds(group)
    group.add_argument(
        "--panel", action="store_true", help="also write panels (same as adding ',panel')"
    )
    add_output_encoding(group)
    group.add_argument(
        "--workers",
        type=positive_int,
        default=4,
        metavar="N",
        help="threads decoding images ahead of the model, and as many post-processing and "
        "writing outputs (default: 4)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON to stdout")
    add_segmenter_options(parser)
    evaluation = parser.add_argument_group(
        "evaluation", "score the labels against ground truth as they are produced"
    )
    evaluation.add_argument(
        "--gt",
        metavar="GT_DIR",
        default=None,
        help="ground-truth labels (*_L.png colour labels or SegNet index PNGs, paired by name): "
        "print mIoU, accuracy and per-class IoU and add them to the manifest",
    )
    add_ground_truth_options(
        evaluation, format_help="ground truth as RGB colours or ids (default: auto)"
    )
    add_report_flag(group)
    add_verbosity(parser)
    parser.set_defaults(run=run)


class _Progress:
    """tqdm bar (on a terminal only) plus one stderr line per failed input."""

    def __init__(self, total: int, *, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            self.bar = progress_bar(total, "img")
        self.failed = 0

    def error(self, message: str) -> None:
        line = f"camvidseg: error: {message}"
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def __call__(self, entry: ManifestEntry) -> None:
        if entry.status == "error":
            self.failed += 1
            self.error(entry.error or entry.input)
        if self.bar is not None:
            self.bar.update(1)
            if self.failed:
                self.bar.set_postfix(failed=self.failed, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def _logging_through(progress: _Progress) -> Iterator[None]:
    """Route log lines through the bar so they do not tear it."""
    if progress.bar is None:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield


def _print_summary(
    report: RunReport, args: argparse.Namespace, evaluation: EvaluationResult | None = None
) -> None:
    summary = report.summary
    if args.json:
        extra = {} if evaluation is None else {"evaluation": evaluation.to_dict()}
        print(
            json.dumps(
                {
                    **summary.to_json(),
                    "output": str(report.output),
                    "manifest": str(report.manifest),
                    **extra,
                }
            ),
            flush=True,
        )
    elif evaluation is not None and not args.quiet:
        print(evaluation.table(), flush=True)
    if not args.quiet:
        parts = [f"{summary.ok} segmented"]
        if summary.skipped:
            parts.append(f"{summary.skipped} already done")
        if summary.error:
            parts.append(f"{summary.error} failed")
        if summary.not_processed:
            parts.append(f"{summary.not_processed} not reached")
        print(
            f"camvidseg: {', '.join(parts)} of {summary.total} in {summary.seconds:.1f} s "
            f"({summary.images_per_second:.2f} images/s); manifest: {report.manifest}",
            file=sys.stderr,
        )


def _evaluation_classes(config: SegmentConfig) -> int:
    """32 or 11: the label set ``--gt`` scores in (a head's own, when it is CamVid's)."""
    palette = config.palette
    if palette.name not in ("camvid32", "camvid11"):
        from camvidseg.exceptions import ConfigError

        raise ConfigError(
            f"--gt scores CamVid-32 or CamVid-11 labels; the head's label set {palette.name} "
            f"is neither (its validation metrics are in {config.head}/metrics.json)"
        )
    return 32 if palette.name == "camvid32" else 11


def _evaluator(
    args: argparse.Namespace, config: SegmentConfig, grouping: str
) -> StreamingEvaluator | None:
    if args.gt is None:
        return None
    from camvidseg.evaluation import StreamingEvaluator

    classes = _evaluation_classes(config)

    return StreamingEvaluator(
        args.gt,
        classes=classes,
        gt_format=args.gt_format,
        unknown=args.unknown_colors,
        grouping=grouping,
    )


def run(args: argparse.Namespace) -> int:
    import warnings

    from PIL import Image

    from camvidseg.exceptions import BackendError
    from camvidseg.pipeline import PipelineInterrupted, discover_inputs, run_pipeline

    config = config_from_args(args)
    evaluator = _evaluator(args, config, config.grouping)

    outputs: tuple[str, ...] = args.outputs
    if args.panel and "panel" not in outputs:
        outputs = (*outputs, "panel")
    options = run_options(args, outputs, workers=args.workers)
    plan = discover_inputs(args.inputs, args.output, globs=args.glob or ())
    if not plan.files and not plan.rejected:
        print(
            f"camvidseg: error: no images found in {' '.join(args.inputs)}"
            + (f" matching {' or '.join(args.glob)}" if args.glob else ""),
            file=sys.stderr,
        )
        return EXIT_USAGE
    segmenter = build_segmenter(args, config)
    # The pipeline refuses decompression bombs itself; Pillow's warning would only add noise.
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    total = len(plan.files) + len(plan.rejected)
    progress = _Progress(total, enabled=sys.stderr.isatty() and not args.quiet)
    hooks = _evaluation_hooks(evaluator, progress, plan.output)
    try:
        for entry in plan.rejected:
            progress(entry)
        with _logging_through(progress):
            report = run_pipeline(
                segmenter,
                plan,
                options,
                model=model_identity(model_handle(config), config.head),
                **hooks,
            )
    except PipelineInterrupted as interrupted:
        progress.close()
        print("camvidseg: interrupted; the manifest lists what was done", file=sys.stderr)
        _print_summary(interrupted.report, args, _result(evaluator))
        return EXIT_INTERRUPTED
    except BackendError as exc:  # the model failed on every image it was given
        progress.close()
        report_error(exc)
        return EXIT_USAGE
    finally:
        progress.close()  # also before a ConfigError reaches the one-line error of main()
    evaluation = _result(evaluator)
    if evaluation is not None:
        for problem in evaluation.problems:
            print(f"camvidseg: error: {problem.message}", file=sys.stderr)
    _print_summary(report, args, evaluation)
    if not write_requested_report(args, report.output):
        return EXIT_SOME_FAILED
    if report.summary.error or (evaluation is not None and evaluation.problems):
        return EXIT_SOME_FAILED
    return EXIT_OK


def _result(evaluator: StreamingEvaluator | None) -> EvaluationResult | None:
    return None if evaluator is None else evaluator.result()


def _evaluation_hooks(
    evaluator: StreamingEvaluator | None, progress: _Progress, out: Path
) -> dict[str, Any]:
    """``run_pipeline`` callbacks: progress, and with ``--gt`` scoring each segmentation as it
    is made. Inputs kept from an earlier run are scored from their label files whenever the
    manifest is written (in the main thread: ``on_entry`` runs under the pipeline's lock)."""
    if evaluator is None:
        return {"on_entry": progress}
    kept: deque[ManifestEntry] = deque()

    def on_entry(entry: ManifestEntry) -> None:
        progress(entry)
        if entry.status == "skipped":
            kept.append(entry)

    def on_segmentation(file: InputFile, seg: Segmentation) -> None:
        evaluator.add(file.path, seg.labels, seg.palette)

    def manifest_extra() -> dict[str, Any]:
        while kept:
            entry = kept.popleft()
            labels = entry.outputs.get("labels")
            if labels is None:
                evaluator.skip(
                    entry.input,
                    "not scored: its outputs were already present and hold no labels (add "
                    "labels to --outputs, or pass --overwrite)",
                )
            else:
                evaluator.add_file(entry.input, out / labels)
        return {"evaluation": evaluator.result().to_dict()}

    return {
        "on_entry": on_entry,
        "on_segmentation": on_segmentation,
        "manifest_extra": manifest_extra,
    }
