"""Running a batch: the driver behind :func:`run_pipeline` that feeds the decode, model and
encode stages (:mod:`camvidseg.pipeline.stages`) and keeps the manifest (see
:mod:`camvidseg.pipeline` for what a run guarantees)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs

from camvidseg._signals import sigint_deferred
from camvidseg._types import Scores
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import TEMP_PREFIX
from camvidseg.pipeline.inputs import InputFile, InputPlan, discover_inputs
from camvidseg.pipeline.manifest import (
    ManifestEntry,
    ManifestWriter,
    PipelineInterrupted,
    RunReport,
    kind_options,
    options_json,
)
from camvidseg.pipeline.options import OUTPUT_KINDS, RunOptions
from camvidseg.pipeline.outputs import OutputWriter
from camvidseg.pipeline.resume import ResumeChecker
from camvidseg.pipeline.stages import (
    MODEL_THREADS,
    DecodeStage,
    EncodeStage,
    ModelStage,
    Prepared,
    one_call_at_a_time,
)
from camvidseg.segmenter import Segmentation, Segmenter

log = logging.getLogger("camvidseg")

LOCK_NAME = ".camvidseg.lock"

# Temporary files of camvidseg.imageio.atomic_write: ".cvs-<8 random chars>.tmp", and
# ".<name>.<8 random chars>.tmp", the name earlier versions gave them (a killed older run).
_TEMP_FILE = re.compile(r"^(?:" + re.escape(TEMP_PREFIX) + r"|\..+\.)[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def _output_lock(out: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``out`` so two runs never write into one folder at once."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; runs are not guarded there
        yield
        return
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another camvidseg run is writing into {out} (it holds {out / LOCK_NAME}); "
                "wait for it to finish or choose another output folder"
            ) from None
        yield
    finally:
        os.close(fd)


def _remove_stale_temporaries(out: Path) -> int:
    """Delete temporary files a killed run left behind (only under ``out``, links not
    followed)."""
    removed = 0
    folders = [out / kind for kind in OUTPUT_KINDS if (out / kind).is_dir()]
    for path in out.iterdir():
        if _TEMP_FILE.match(path.name) and path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    for folder in folders:
        if folder.is_symlink():
            continue
        for dirpath, _, filenames in os.walk(folder):
            for name in filenames:
                if _TEMP_FILE.match(name):
                    with contextlib.suppress(FileNotFoundError):
                        Path(dirpath, name).unlink()
                        removed += 1
    return removed


class _Run:
    """One run of :func:`run_pipeline`: sets up the output folder, feeds the stages and keeps
    the manifest."""

    def __init__(
        self,
        segmenter: Segmenter,
        plan: InputPlan,
        options: RunOptions,
        model: str,
        on_entry: Callable[[ManifestEntry], None] | None,
        on_segmentation: Callable[[InputFile, Segmentation], None] | None = None,
        manifest_extra: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        # A copy whose backend takes one call at a time (see OneCallAtATime).
        self.segmenter = attrs.evolve(segmenter, backend=one_call_at_a_time(segmenter.backend))
        self.plan = plan
        self.options = options
        self.model = model
        self.out = plan.output
        self.batch_size = segmenter.batch_size
        self.prefetch = options.prefetch or self.batch_size + 2 * options.workers
        self.encode_slots = threading.BoundedSemaphore(self.batch_size + options.workers)
        self.model_slots = threading.BoundedSemaphore(MODEL_THREADS)
        self.writer = OutputWriter(plan.output, options)
        self.resume = ResumeChecker(self.writer, options, self.kind_options)
        self.manifest = ManifestWriter(
            plan.output,
            plan.rejected,
            len(plan.files),
            describe=self.describe,
            checkpoint_seconds=options.checkpoint_seconds,
            on_entry=on_entry,
            extra=manifest_extra,
        )
        self.decode = DecodeStage(self.resume, options.max_input_pixels)
        self.model_stage = ModelStage(self.segmenter, self.manifest.record)
        self.encode = EncodeStage(
            self.segmenter, self.writer, self.manifest.record, on_segmentation
        )

    def kind_options(self, kind: str) -> dict[str, Any]:
        """The options that decide what the files of one output kind hold."""
        return kind_options(kind, self.options, self.segmenter, self.model)

    def describe(self) -> dict[str, Any]:
        """The run's fields of the manifest head."""
        return {
            "model": {"handle": self.model, "backend": self.segmenter.backend.name},
            "options": options_json(self.options, self.segmenter, self.model),
            "output_options": self.resume.output_options,
        }

    def execute(self) -> RunReport:
        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the output folder {self.out}: {exc}") from exc
        self.writer.check_kind_folders()
        self.manifest.open()
        with _output_lock(self.out):
            removed = _remove_stale_temporaries(self.out)
            if removed:
                log.info("removed %d temporary files left by an interrupted run", removed)
            self.resume.check_previous_run()
            self.manifest.write("running")
            return self._execute_locked()

    def _execute_locked(self) -> RunReport:
        workers = self.options.workers
        decode_pool = ThreadPoolExecutor(workers, thread_name_prefix="camvidseg-decode")
        model_pool = ThreadPoolExecutor(MODEL_THREADS, thread_name_prefix="camvidseg-model")
        encode_pool = ThreadPoolExecutor(workers, thread_name_prefix="camvidseg-encode")
        status = "failed"
        try:
            self._loop(decode_pool, model_pool, encode_pool)
            status = "complete"
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            with sigint_deferred("saving the manifest"):
                # Batches in the model finish and hand their results to the writers first.
                decode_pool.shutdown(wait=True, cancel_futures=True)
                model_pool.shutdown(wait=True, cancel_futures=True)
                encode_pool.shutdown(wait=True)
                report = self.manifest.write(status, interrupted=status == "interrupted")
        if status == "interrupted":
            raise PipelineInterrupted(report)
        return report

    def _loop(
        self,
        decode_pool: ThreadPoolExecutor,
        model_pool: ThreadPoolExecutor,
        encode_pool: ThreadPoolExecutor,
    ) -> None:
        pending: deque[Future[Prepared]] = deque()
        in_model: deque[Future[None]] = deque()
        jobs = iter(enumerate(self.plan.files))

        def refill() -> None:
            while len(pending) < self.prefetch:
                job = next(jobs, None)
                if job is None:
                    return
                pending.append(decode_pool.submit(self.decode.prepare, *job))

        def hand_on(
            prepared: Prepared, scores: Scores | None, segmentation: Segmentation | None
        ) -> None:
            self.encode_slots.acquire()
            future = encode_pool.submit(self.encode.encode, prepared, scores, segmentation)
            future.add_done_callback(lambda _: self.encode_slots.release())

        def to_model(batch: list[Prepared]) -> None:
            self.model_slots.acquire()
            future = model_pool.submit(self.model_stage.infer, batch, hand_on)
            future.add_done_callback(lambda _: self.model_slots.release())
            in_model.append(future)
            while in_model and in_model[0].done():
                in_model.popleft().result()  # a model found unusable stops the run here

        refill()
        batch: list[Prepared] = []
        while pending:
            future = pending.popleft()
            refill()
            prepared = future.result()
            if prepared.entry is not None:
                self.manifest.record(prepared.index, prepared.entry)
            else:
                batch.append(prepared)
                if len(batch) >= self.batch_size:
                    to_model(batch)
                    batch = []
            self.manifest.maybe_checkpoint()
        if batch:
            to_model(batch)
        for model_future in in_model:
            model_future.result()


def run_pipeline(
    segmenter: Segmenter,
    plan: InputPlan,
    options: RunOptions | None = None,
    *,
    model: str | None = None,
    on_entry: Callable[[ManifestEntry], None] | None = None,
    on_segmentation: Callable[[InputFile, Segmentation], None] | None = None,
    manifest_extra: Callable[[], Mapping[str, Any]] | None = None,
) -> RunReport:
    """Segment every file of ``plan`` and write the outputs and ``manifest.json`` under
    ``plan.output``.

    Args:
        segmenter: The model and label set (its ``batch_size`` sets the model batches).
        plan: From :func:`discover_inputs`.
        options: What to write (default :class:`RunOptions`).
        model: The model handle recorded in the manifest (default: the backend's name).
        on_entry: Called with each input's entry as it finishes (from worker threads, one call
            at a time); for progress bars and error lines.
        on_segmentation: Called with each input and its :class:`Segmentation` once its
            outputs are written (from worker threads, possibly at once), e.g. to score it
            against ground truth; an exception makes that input an error.
        manifest_extra: Called whenever the manifest is written; its keys are added to the
            manifest's top level (e.g. ``{"evaluation": ...}``).

    Returns:
        The report; ``report.summary.error`` counts failed inputs.

    Raises:
        PipelineInterrupted: on Ctrl-C, after the outputs being written were finished and the
            manifest was written.
        ConfigError: when the output folder cannot be used (another run holds it, a run with
            other options wrote it, a link leads out of it).
        BackendError: when the model fails on each of the first images (it is unusable).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg.testing import NearestColorBackend, street_scene
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "in").mkdir()
        >>> image, truth = street_scene(24, 32)
        >>> Image.fromarray(image).save(folder / "in" / "street.png")
        >>> plan = discover_inputs([folder / "in"], folder / "out")
        >>> report = run_pipeline(Segmenter(NearestColorBackend()), plan)
        >>> report.summary.ok, sorted(report.entries[0].outputs.values())
        (1, ['color/street.png', 'labels/street.png', 'overlay/street.jpg'])
    """
    options = options or RunOptions()
    run = _Run(
        segmenter,
        plan,
        options,
        model or segmenter.backend.name,
        on_entry,
        on_segmentation,
        manifest_extra,
    )
    return run.execute()


def segment_paths(
    segmenter: Segmenter,
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    globs: Sequence[str] = (),
    model: str | None = None,
) -> RunReport:
    """:func:`discover_inputs` then :func:`run_pipeline`: segment files and folders into
    ``output``.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg.testing import NearestColorBackend
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (4, 3), (128, 64, 128)).save(folder / "road.png")
        >>> report = segment_paths(
        ...     Segmenter(NearestColorBackend()), [folder / "road.png"], folder / "out",
        ...     RunOptions(outputs=("labels",)),
        ... )
        >>> report.entries[0].class_areas
        {'Road': 1.0}
    """
    plan = discover_inputs(inputs, output, globs=globs)
    return run_pipeline(segmenter, plan, options, model=model)
