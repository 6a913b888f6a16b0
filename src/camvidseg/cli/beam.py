"""``camvidseg beam``: the job of ``camvidseg segment`` as an Apache Beam pipeline.

A thin layer over :func:`camvidseg.beam.run_beam`: options, summary, exit codes. Beam is
imported inside :func:`run` only, so ``camvidseg --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from camvidseg.cli._common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE,
    add_ground_truth_options,
    add_verbosity,
    positive_int,
)
from camvidseg.cli._config import add_segmenter_options, config_from_args, model_handle
from camvidseg.cli.segment import add_output_encoding, add_output_kinds, run_options

if TYPE_CHECKING:
    from camvidseg.beam import BeamJob, BeamReport
    from camvidseg.config import SegmentConfig

#: Images per model call when neither --max-batch-size nor --batch-size is given.
DEFAULT_MAX_BATCH = 8
#: Failed inputs listed on stderr; the rest are in errors.jsonl.
_SHOWN_ERRORS = 20

_DESCRIPTION = """\
Segment the images a file pattern matches with an Apache Beam pipeline: the DirectRunner
here, Dataflow, Flink or Spark unchanged (pass their pipeline options after --). Local
paths, gs:// and s3:// go through Beam's own file systems (gs:// needs apache-beam[gcp],
s3:// apache-beam[aws]).

Outputs mirror each input's path relative to the pattern's fixed part (everything
before the first wildcard) in the layout of 'camvidseg segment':

  OUT/labels/a/b/frame.png      indexed PNG, CamVid palette embedded: pixel = class id
  OUT/color/, OUT/overlay/, OUT/panel/, OUT/confidence/   as --outputs selects
  OUT/manifest.json             every input, as 'segment' writes it ('evaluate' reads it)
  OUT/errors.jsonl              one line per failed input: {"uri", "stage", "error"}

Each file is written under a temporary name and renamed into place. Re-running skips
inputs whose outputs are complete (--overwrite redoes them). Two inputs that would share
an output name are reported, never overwritten. Beam counters (images, failures, pixels,
model time) are printed at the end.
Exit codes: 0 all ok, 1 some inputs failed, 2 usage or configuration error.
"""

_EXAMPLES = """examples:
  camvidseg beam 'frames/**/*.jpg' -o out/
  camvidseg beam 'CamVid/test/*.png' -o out/ --classes 11 --gt CamVid/testannot
  camvidseg beam 'frames/*.png' -o out/ --max-batch-size 4 -- --direct_num_workers=2 \\
      --direct_running_mode=multi_threading
  camvidseg beam 'gs://bucket/frames/**/*.jpg' -o gs://bucket/out \\
      --model gs://bucket/models/camvid-hrnetv2-w48 --runner DataflowRunner -- \\
      --project=my-project --region=europe-west1 --temp_location=gs://bucket/tmp \\
      --sdk_container_image=europe-docker.pkg.dev/my-project/images/camvidseg:1
"""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "beam",
        help="segment images matched by a file pattern with an Apache Beam pipeline",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s GLOB -o OUT [options] [-- BEAM_PIPELINE_OPTIONS ...]",
    )
    parser.add_argument(
        "pattern",
        metavar="GLOB",
        help="Beam file pattern of the images (quote it; ** crosses folders), e.g. "
        "'frames/**/*.jpg' or 'gs://bucket/frames/*.png'",
    )
    parser.add_argument(
        "-o", "--output", required=True, metavar="OUT", help="output folder (local, gs://, s3://)"
    )
    _add_output_options(parser)
    group = parser.add_argument_group("beam")
    group.add_argument(
        "--runner",
        default="DirectRunner",
        help="Beam runner: DirectRunner (default), DataflowRunner, FlinkRunner, SparkRunner, "
        "PortableRunner",
    )
    group.add_argument(
        "--max-batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="most images per model call (default: the settings' --batch-size when over 1, "
        f"else {DEFAULT_MAX_BATCH})",
    )
    group.add_argument(
        "--min-batch-size",
        type=positive_int,
        default=1,
        metavar="N",
        help="fewest images Beam batches before a model call (default: 1)",
    )
    group.add_argument(
        "--model-copies",
        type=positive_int,
        default=None,
        metavar="N",
        help="load N copies of the model per worker machine, shared by its processes (default: "
        "one per worker process)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON to stdout")
    add_segmenter_options(parser)  # the shared model and settings flags
    evaluation = parser.add_argument_group(
        "evaluation", "score the labels against ground truth in the pipeline"
    )
    evaluation.add_argument(
        "--gt",
        metavar="GT_DIR",
        default=None,
        help="ground-truth labels (local or a URL; *_L.png colour labels or SegNet index PNGs, "
        "paired by name): print mIoU, accuracy and per-class IoU and add them to the manifest",
    )
    add_ground_truth_options(
        evaluation, format_help="ground truth as RGB colours or ids (default: auto)"
    )
    add_verbosity(parser)
    _accept_pipeline_args(parser)
    parser.set_defaults(run=run)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("outputs")
    add_output_kinds(group)
    add_output_encoding(group)


def _settings(args: argparse.Namespace) -> SegmentConfig:
    """The settings the workers build their Segmenter from; the model handle is resolved here
    (``--model``, the config's, ``$CAMVIDSEG_MODEL``, the default): workers do not see this
    process's environment."""
    import attrs

    config = config_from_args(args)
    return attrs.evolve(config, model=model_handle(config))


def _accept_pipeline_args(parser: argparse.ArgumentParser) -> None:
    """Everything after ``--`` goes to Beam as pipeline options (``args.pipeline_args``)."""
    parse = parser.parse_known_args

    def split(
        args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        given = list(sys.argv[1:] if args is None else args)
        pipeline_args: list[str] = []
        if "--" in given:
            cut = given.index("--")
            given, pipeline_args = given[:cut], given[cut + 1 :]
        parsed, rest = parse(given, namespace)
        parsed.pipeline_args = pipeline_args
        return parsed, rest

    # argparse gives a subcommand's positionals no way to stop at "--"; the subparser action
    # calls parse_known_args, so the split happens there.
    setattr(parser, "parse_known_args", split)  # noqa: B010


def job_from_args(args: argparse.Namespace) -> BeamJob:
    """The :class:`~camvidseg.beam.BeamJob` the command line describes."""
    from camvidseg.beam import BeamJob

    options = run_options(args, args.outputs)
    config = _settings(args)
    if args.max_batch_size is not None:
        max_batch = args.max_batch_size
    else:  # --batch-size, or a config file's batch_size
        max_batch = config.batch_size if config.batch_size > 1 else DEFAULT_MAX_BATCH
    return BeamJob(
        pattern=args.pattern,
        output=str(args.output),
        config=config,
        options=options,
        ground_truth=args.gt,
        gt_format=args.gt_format,
        unknown=args.unknown_colors,
        cache_dir=args.cache_dir,
        timeout=args.timeout,
        min_batch_size=min(args.min_batch_size, max_batch),
        max_batch_size=max_batch,
        model_copies=args.model_copies,
        runner=args.runner,
        pipeline_args=tuple(args.pipeline_args),
    )


def run(args: argparse.Namespace) -> int:
    job = job_from_args(args)
    from camvidseg.beam import run_beam
    from camvidseg.beam.logs import quiet_beam_noise

    # A failing step raises its error here, which main() prints on one line; Beam's traceback
    # of it is for -v.
    with quiet_beam_noise(runner_errors=not args.verbose):
        report = run_beam(job)
    if report.summary.total == 0:
        print(f"camvidseg: error: no images match {job.pattern}", file=sys.stderr)
        return EXIT_USAGE
    _print_errors(report)
    evaluation = report.evaluation
    if evaluation is not None:
        for problem in evaluation.problems:
            print(f"camvidseg: error: {problem.message}", file=sys.stderr)
    _print_summary(report, args)
    if report.summary.error or (evaluation is not None and evaluation.problems):
        return EXIT_SOME_FAILED
    return EXIT_OK


def _print_errors(report: BeamReport) -> None:
    if not report.summary.error:
        return
    from camvidseg.beam import DeadLetter
    from camvidseg.beam.files import read_bytes

    lines = read_bytes(report.errors).splitlines()
    for line in lines[:_SHOWN_ERRORS]:
        record = DeadLetter.from_json(json.loads(line))
        print(f"camvidseg: error: {record.error} (stage {record.stage})", file=sys.stderr)
    if len(lines) > _SHOWN_ERRORS:
        print(
            f"camvidseg: ... and {len(lines) - _SHOWN_ERRORS} more in {report.errors}",
            file=sys.stderr,
        )


def _print_summary(report: BeamReport, args: argparse.Namespace) -> None:
    summary, metrics = report.summary, report.metrics
    if args.json:
        extra = {} if report.evaluation is None else {"evaluation": report.evaluation.to_dict()}
        print(
            json.dumps(
                {
                    **summary.to_json(),
                    "output": report.output,
                    "manifest": report.manifest,
                    "errors": report.errors,
                    "metrics": dict(metrics),
                    **extra,
                }
            ),
            flush=True,
        )
    elif report.evaluation is not None and not args.quiet:
        print(report.evaluation.table(), flush=True)
    if args.quiet:
        return
    parts = [f"{summary.ok} segmented"]
    if summary.skipped:
        parts.append(f"{summary.skipped} already done")
    if summary.error:
        parts.append(f"{summary.error} failed (listed in {report.errors})")
    print(
        f"camvidseg: {', '.join(parts)} of {summary.total} in {summary.seconds:.1f} s "
        f"({summary.images_per_second:.2f} images/s); manifest: {report.manifest}",
        file=sys.stderr,
    )
    print(
        f"camvidseg: beam counters: images={metrics.get('images', 0)} "
        f"failures={metrics.get('failures', 0)} pixels={metrics.get('pixels', 0)} "
        f"model_seconds={metrics.get('model_ms', 0) / 1000:.2f} "
        f"skipped={metrics.get('skipped', 0)}",
        file=sys.stderr,
    )
