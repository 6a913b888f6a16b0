"""``camvidseg beam`` as a library call: :func:`run_beam` runs one whole job on any runner.

The pipeline::

    MatchImages(pattern) -> MirrorNames -> SkipFinished -> ReadImages -> Segment -> WriteOutputs
                                                                             \\-> Evaluate (--gt)

Each stage sends the inputs that fail in it to the dead letters; the entries of the manifest,
the dead letters and the evaluation are written as text shards into a hidden folder of the
output, which the driver merges into ``manifest.json`` and ``errors.jsonl`` once the pipeline
is done (each written under a temporary name and renamed into place).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
import attrs
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from camvidseg import validators
from camvidseg.backends.handles import model_identity
from camvidseg.beam.evaluate import Evaluate
from camvidseg.beam.files import (
    glob_base,
    is_local,
    join,
    local_copy,
    mirrored_name,
    read_bytes,
    write_atomically,
)
from camvidseg.beam.handler import METRICS_NAMESPACE, SegmenterModelHandler
from camvidseg.beam.manifest import manifest_head, output_options, read_previous
from camvidseg.beam.outputs import SkipFinished
from camvidseg.beam.records import DeadLetter, Segmented
from camvidseg.beam.transforms import MatchImages, MirrorNames, ReadImages, Segment, WriteOutputs
from camvidseg.config import SegmentConfig
from camvidseg.exceptions import CamVidSegError, ConfigError
from camvidseg.groundtruth import LabelFormat, UnknownColors, problem_kind, read_label_file
from camvidseg.metrics import ConfusionMatrix, EvaluationProblem, EvaluationResult
from camvidseg.pipeline import MANIFEST_NAME, ManifestEntry, RunOptions, RunSummary
from camvidseg.pipeline.manifest import dump_manifest, now, options_json
from camvidseg.pipeline.resume import check_previous

__all__ = ["ERRORS_NAME", "BeamJob", "BeamReport", "build_pipeline", "run_beam"]

log = logging.getLogger("camvidseg")

#: The dead-letter file of a run: one JSON object per failed input.
ERRORS_NAME = "errors.jsonl"
#: Counters printed at the end of a run, in this order.
COUNTERS: tuple[str, ...] = ("images", "failures", "pixels", "model_ms", "skipped")
_WORK_FOLDER = ".camvidseg-beam"


@attrs.frozen
class BeamJob:
    """Everything one ``camvidseg beam`` run needs (plain values: it travels to the workers).

    Attributes:
        pattern: Beam file pattern of the inputs (``**`` crosses folders); outputs mirror each
            match's path relative to the pattern's fixed part.
        output: The output folder (local, ``gs://...``, ...).
        config: The settings; ``config.model`` is the handle the workers open.
        options: Which outputs and how (``segment``'s :class:`~camvidseg.pipeline.RunOptions`;
            ``overwrite`` and ``max_input_pixels`` are used too).
        ground_truth: Score the labels against this folder (``None``: no evaluation).
        gt_format: How ground-truth files store classes.
        unknown: Unknown colours in RGB ground truth: ``"error"`` or ``"void"``.
        cache_dir: TF Hub cache folder on the workers.
        timeout: Seconds a model download may stall.
        min_batch_size: Fewest images Beam batches into one model call.
        max_batch_size: Most images in one model call.
        model_copies: Copies of the model per worker machine, shared by its processes.
        runner: The Beam runner.
        pipeline_args: Further Beam pipeline options (``--project=...``, ...).
    """

    pattern: str
    output: str
    config: SegmentConfig
    options: RunOptions = attrs.field(factory=RunOptions)
    ground_truth: str | None = None
    gt_format: LabelFormat = "auto"
    unknown: UnknownColors = "error"
    cache_dir: str | None = None
    timeout: float = 30.0
    min_batch_size: int = attrs.field(default=1, validator=validators.int_range(1))
    max_batch_size: int = attrs.field(default=8, validator=validators.int_range(1))
    model_copies: int | None = attrs.field(
        default=None, validator=validators.optional(validators.int_range(1))
    )
    runner: str = "DirectRunner"
    pipeline_args: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def handler(self) -> SegmenterModelHandler:
        """The model handler of the job."""
        return SegmenterModelHandler(
            self.config,
            cache_dir=self.cache_dir,
            timeout=self.timeout,
            min_batch_size=self.min_batch_size,
            max_batch_size=self.max_batch_size,
            model_copies=self.model_copies,
        )

    def options_json(self) -> dict[str, Any]:
        """The run's settings as the manifest records them (``segment``'s keys and Beam's)."""
        recorded = options_json(self.options, self.config, model_identity(self.config.model or ""))
        del recorded["workers"]  # Beam's own settings say how the work is spread
        return {
            **recorded,
            "batch_size": self.max_batch_size,
            "pattern": self.pattern,
            "runner": self.runner,
            "min_batch_size": self.min_batch_size,
            "max_batch_size": self.max_batch_size,
            "model_copies": self.model_copies,
        }


@attrs.frozen(eq=False)
class BeamReport:
    """What a run did.

    Attributes:
        output: The output folder.
        manifest: Its ``manifest.json``.
        errors: Its ``errors.jsonl`` (one dead letter per failed input; empty when none failed).
        summary: Counts (``ok``, ``skipped``, ``error``, ``total``) and wall time.
        metrics: The Beam counters of namespace ``camvidseg`` (``images``, ``failures``,
            ``pixels``, ``model_ms``, ``skipped``, ...), summed over steps.
        evaluation: The scores against ground truth, when asked for.
    """

    output: str
    manifest: str
    errors: str
    summary: RunSummary
    metrics: Mapping[str, int]
    evaluation: EvaluationResult | None = None


# -- stages only the command needs -------------------------------------------------------------


class _KeptLabels(beam.DoFn):
    """Labels of inputs kept from an earlier run, read back for the evaluation."""

    def __init__(self, output: str, classes: int) -> None:
        beam.DoFn.__init__(self)
        self.output = output.rstrip("/")
        self.classes = classes

    def process(self, entry: ManifestEntry) -> Iterator[Any]:
        relpath = entry.outputs.get("labels")
        if relpath is None:
            yield EvaluationProblem(
                "missing_prediction",
                entry.input,
                f"{entry.input}: not scored: its outputs were already present and hold no "
                "labels (add labels to --outputs, or pass --overwrite)",
            )
            return
        from camvidseg.palette import CamVidPalette

        uri = f"{self.output}/{relpath}"
        try:
            with local_copy(uri) as local:
                labels = read_label_file(
                    local, index_palette=CamVidPalette.by_name(str(self.classes))
                )
        except CamVidSegError as exc:
            yield EvaluationProblem(problem_kind(exc), uri, str(exc))
            return
        yield entry.input, labels.labels


def _error_entry(record: DeadLetter, base: str) -> ManifestEntry:
    try:
        name = str(mirrored_name(record.uri, base))
    except ConfigError:
        name = record.uri[len(base) :] if record.uri.startswith(base) else record.uri
    return ManifestEntry(input=record.uri, name=name, status="error", error=record.error)


def _entry_line(entry: ManifestEntry) -> str:
    return json.dumps(entry.to_json())


def _result_line(result: EvaluationResult) -> str:
    return json.dumps(
        {
            "confusion": result.confusion.to_dict(),
            "problems": [problem.to_dict() for problem in result.problems],
        }
    )


def _labels_of(item: Segmented) -> tuple[str, Any]:
    return item.uri, item.segmentation.labels


def build_pipeline(pipeline: beam.Pipeline, job: BeamJob, work: str) -> None:
    """Add ``job``'s transforms to ``pipeline``, writing its text shards under ``work``."""
    base = glob_base(job.pattern)
    exclude = job.output.rstrip("/") + "/"
    if is_local(job.output):
        exclude = os.path.abspath(job.output) + os.sep  # noqa: PTH100 (no symlink resolving)
    manifest = join(job.output, MANIFEST_NAME)
    matched = pipeline | "MatchImages" >> MatchImages(job.pattern, exclude=exclude)
    named, bad_names = matched | "MirrorNames" >> MirrorNames(base)
    checked = named | "SkipFinished" >> beam.ParDo(
        SkipFinished(job.output, job.options, manifest)
    ).with_outputs("skipped", main="todo")
    uris = checked.todo | "Uri" >> beam.Map(lambda file: file.uri)
    images, bad_reads = uris | "ReadImages" >> ReadImages(max_pixels=job.options.max_input_pixels)
    segmented, bad_models = images | "Segment" >> Segment(job.handler())
    written, bad_writes = segmented | "WriteOutputs" >> WriteOutputs(
        job.output, base=base, options=job.options
    )
    dead = (bad_names, bad_reads, bad_models, bad_writes) | "DeadLetters" >> beam.Flatten()
    failed = dead | "ErrorEntries" >> beam.Map(_error_entry, base)
    entries = (written, checked.skipped, failed) | "Entries" >> beam.Flatten()
    _ = (
        entries
        | "EntryLines" >> beam.Map(_entry_line)
        | "WriteEntries" >> beam.io.WriteToText(f"{work}/entries", file_name_suffix=".jsonl")
    )
    _ = (
        dead
        | "ErrorLines" >> beam.Map(lambda record: json.dumps(record.to_json()))
        | "WriteErrors" >> beam.io.WriteToText(f"{work}/errors", file_name_suffix=".jsonl")
    )
    if job.ground_truth is None:
        return
    kept = checked.skipped | "KeptLabels" >> beam.ParDo(_KeptLabels(job.output, job.config.classes))
    fresh = segmented | "Labels" >> beam.Map(_labels_of)
    _ = (
        (fresh, kept)
        | "ToScore" >> beam.Flatten()
        | "Evaluate"
        >> Evaluate(
            job.ground_truth,
            classes=job.config.classes,
            gt_format=job.gt_format,
            unknown=job.unknown,
            grouping=job.config.grouping,
        )
        | "ResultLine" >> beam.Map(_result_line)
        | "WriteEvaluation" >> beam.io.WriteToText(f"{work}/evaluation", file_name_suffix=".json")
    )


# -- the driver --------------------------------------------------------------------------------


def _check_paths(job: BeamJob) -> None:
    if is_local(job.output):
        out = Path(job.output)
        if out.exists() and not out.is_dir():
            raise ConfigError(f"output {out} exists and is not a folder")
        base = glob_base(job.pattern) or "."
        if is_local(base) and Path(base).resolve().is_relative_to(out.resolve()):
            raise ConfigError(
                f"the inputs {job.pattern} are inside the output folder {out}; outputs could "
                "overwrite them. Choose an output folder outside the inputs"
            )
    try:
        found = FileSystems.match([job.pattern], limits=[1])[0].metadata_list
    except Exception as exc:  # a scheme without its Beam extra, a bucket we cannot list
        raise ConfigError(f"cannot match {job.pattern}: {exc}") from None
    if not found:
        raise ConfigError(f"no files match {job.pattern}")


def _shards(prefix: str) -> list[str]:
    return sorted(str(m.path) for m in FileSystems.match([prefix + "*"])[0].metadata_list)


def _lines(paths: Sequence[str]) -> Iterator[bytes]:
    for path in paths:
        for line in read_bytes(path).splitlines():
            if line.strip():
                yield line


def _counters(result: Any) -> dict[str, int]:
    totals = dict.fromkeys(COUNTERS, 0)
    try:
        queried = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except Exception:  # a runner without metrics support
        return totals
    for counter in queried.get("counters", []):
        value = counter.committed if counter.committed is not None else counter.attempted
        name = counter.key.metric.name
        totals[name] = totals.get(name, 0) + int(value or 0)
    return totals


def _write_lines(path: str, lines: Sequence[bytes], scratch: Path) -> None:
    def encode(local: Path) -> None:
        with open(local, "wb") as handle:
            for line in lines:
                handle.write(line + b"\n")

    write_atomically(path, encode, scratch)


def _evaluation(work: str) -> EvaluationResult | None:
    lines = list(_lines(_shards(f"{work}/evaluation")))
    if not lines:
        return None
    data = json.loads(lines[0])
    matrix = ConfusionMatrix.from_dict(data["confusion"])
    problems = [EvaluationProblem(p["kind"], p["path"], p["message"]) for p in data["problems"]]
    return matrix.compute(problems)


def run_beam(job: BeamJob) -> BeamReport:
    """Run ``job`` to the end and write ``manifest.json`` and ``errors.jsonl``.

    Raises:
        ConfigError: nothing matches, the output folder cannot be used (a file, holds the
            inputs, holds outputs made with other settings), or a bad setting.
        Exception: whatever the runner raises when the pipeline itself fails (e.g. the model
            cannot be loaded on the workers).
    """
    started_at, started = now(), time.perf_counter()
    _check_paths(job)
    model = model_identity(job.config.model or "")
    manifest = join(job.output, MANIFEST_NAME)
    recorded = check_previous(
        read_previous(manifest),
        output_options(job.config, job.options, model),
        output=job.output,
        overwrite=job.options.overwrite,
    )
    work = join(job.output, _WORK_FOLDER, secrets.token_hex(6))
    options = PipelineOptions([f"--runner={job.runner}", *job.pipeline_args])
    pipeline = beam.Pipeline(options=options)
    build_pipeline(pipeline, job, work)
    try:
        result = pipeline.run()
        result.wait_until_finish()
        return _finish(job, work, result, started_at, started, recorded, model)
    finally:
        _remove(work)


def _finish(
    job: BeamJob,
    work: str,
    result: Any,
    started_at: str,
    started: float,
    recorded: Mapping[str, Any],
    model: str,
) -> BeamReport:
    entries: list[tuple[str, bytes]] = []
    counts = {"ok": 0, "error": 0, "skipped": 0}
    for line in _lines(_shards(f"{work}/entries")):
        entry = json.loads(line)
        counts[entry["status"]] += 1
        entries.append((str(entry["input"]), line))
    entries.sort()
    errors = sorted(_lines(_shards(f"{work}/errors")))
    evaluation = _evaluation(work) if job.ground_truth is not None else None
    summary = RunSummary(
        total=len(entries),
        ok=counts["ok"],
        error=counts["error"],
        skipped=counts["skipped"],
        not_processed=0,
        interrupted=False,
        seconds=time.perf_counter() - started,
    )
    head = manifest_head(
        status="complete",
        started=started_at,
        output=job.output,
        model=model,
        options=job.options_json(),
        recorded=recorded,
        summary=summary.to_json(),
        config=job.config,
        runner=job.runner,
    )
    if evaluation is not None:
        head["evaluation"] = evaluation.to_dict()
    manifest = join(job.output, MANIFEST_NAME)
    errors_path = join(job.output, ERRORS_NAME)
    with tempfile.TemporaryDirectory(prefix="camvidseg-beam-") as folder:
        scratch = Path(folder)
        _write_lines(errors_path, errors, scratch)

        def encode(local: Path) -> None:
            with open(local, "wb") as handle:
                dump_manifest(handle, head, (line for _, line in entries))

        write_atomically(manifest, encode, scratch)
    return BeamReport(job.output, manifest, errors_path, summary, _counters(result), evaluation)


def _remove(work: str) -> None:
    """Delete the run's temporary folder (and the hidden folder holding it, when empty)."""
    try:
        if is_local(work):
            shutil.rmtree(work, ignore_errors=True)
            with contextlib.suppress(OSError):
                Path(work).parent.rmdir()  # only when no other run uses it
            return
        files = [str(m.path) for m in FileSystems.match([work + "/**"])[0].metadata_list]
        if files:
            FileSystems.delete(files)
    except Exception as exc:  # leftovers are hidden and harmless; say so and go on
        log.warning("could not remove the temporary folder %s: %s", work, exc)
