"""The three stages of a run: decode (resume check, read the image), model (batches through the
backend, one call at a time) and encode (post-process, write the outputs)."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, ImageArray, LabelMap, Scores
from camvidseg.backends.base import Backend, LabelBackend
from camvidseg.exceptions import BackendError, CamVidSegError
from camvidseg.imageio import LoadedImage, open_image
from camvidseg.pipeline.inputs import InputFile
from camvidseg.pipeline.manifest import ManifestEntry
from camvidseg.pipeline.outputs import OutputWriter
from camvidseg.pipeline.resume import ResumeChecker
from camvidseg.postprocess import ChannelLayout
from camvidseg.segmenter import Segmentation, Segmenter

__all__ = [
    "MAX_INITIAL_MODEL_FAILURES",
    "MODEL_THREADS",
    "error_text",
    "image_notes",
]

log = logging.getLogger("camvidseg")

#: Batches in the model stage at once: one in the model, one being prepared or handed on.
MODEL_THREADS = 2
#: Stop, as a model error, when the model fails on this many images before any success.
MAX_INITIAL_MODEL_FAILURES = 3

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})

#: Records the entry of the file at an index of the plan.
Record = Callable[[int, ManifestEntry], None]


@attrs.define
class Prepared:
    """A decoded image on its way through the pipeline (or its final entry)."""

    index: int
    file: InputFile
    loaded: LoadedImage | None = None
    kinds: tuple[str, ...] = ()
    timing: dict[str, float] = attrs.Factory(dict)
    entry: ManifestEntry | None = None


def image_notes(loaded: LoadedImage) -> tuple[str, ...]:
    """What was done to an image on the way in, as the manifest words it.

    Example:
        >>> image_notes(LoadedImage(np.zeros((1, 1, 3), np.uint8), mode="LA", transparency=True))
        ('converted from mode LA', 'transparency ignored (colours of transparent pixels used)')
    """
    notes: list[str] = []
    if loaded.frames > 1:
        notes.append(f"animated: first frame used (of {loaded.frames})")
    if loaded.exif_transposed:
        notes.append("EXIF orientation applied")
    if loaded.mode in _SIXTEEN_BIT_MODES:
        notes.append(f"mode {loaded.mode}: scaled to 8 bits")
    elif loaded.mode != "RGB":
        notes.append(f"converted from mode {loaded.mode}")
    if loaded.transparency:
        notes.append("transparency ignored (colours of transparent pixels used)")
    return tuple(notes)


def error_text(path: str | os.PathLike[str], exc: BaseException) -> str:
    """One line naming the input ``path`` (a local path or a URI) and the error.

    Example:
        >>> error_text("in/a.png", ValueError("bad"))
        'in/a.png: ValueError: bad'
        >>> from camvidseg.exceptions import InvalidImageError
        >>> error_text("in/a.png", InvalidImageError("in/a.png: empty file"))
        'in/a.png: empty file'
    """
    name = os.fspath(path)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, CamVidSegError):
        return message if message.startswith(name) else f"{name}: {message}"
    return f"{name}: {type(exc).__name__}: {message}"


# -- decode ------------------------------------------------------------------------------------


class DecodeStage:
    """Decode stage (worker threads): resume check, then read the image."""

    def __init__(self, resume: ResumeChecker, max_pixels: int | None) -> None:
        self.resume = resume
        self.max_pixels = max_pixels

    def prepare(self, index: int, file: InputFile) -> Prepared:
        """The decoded image of ``file``, or its final entry (outputs kept, or an error)."""
        prepared = Prepared(index, file)
        started = time.perf_counter()
        try:
            kinds, relpaths, size = self.resume.kinds_to_write(file)
            if not kinds:
                prepared.entry = self.resume.skipped_entry(
                    file, relpaths, size, time.perf_counter() - started
                )
                return prepared
            prepared.kinds = kinds
            prepared.loaded = open_image(file.path, max_pixels=self.max_pixels)
        except Exception as exc:
            prepared.entry = ManifestEntry(
                input=str(file.path),
                name=str(file.name),
                status="error",
                error=error_text(file.path, exc),
                timing={"decode": time.perf_counter() - started},
            )
            log.debug("decoding %s failed", file.path, exc_info=not isinstance(exc, CamVidSegError))
            return prepared
        prepared.timing["decode"] = time.perf_counter() - started
        return prepared


# -- model -------------------------------------------------------------------------------------


class OneCallAtATime:
    """A backend that lets one model call run at a time.

    Two model-stage threads then take turns: while one waits for the model (a GPU call releases
    the GIL), the other prepares its batch (resizing, float conversion, stacking) or hands the
    previous results to the writers, instead of doing that work between model calls.
    """

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def input_multiple(self) -> int:
        return self._backend.input_multiple

    @property
    def precision(self) -> str:
        """The wrapped backend's precision (recorded in the manifest)."""
        return str(getattr(self._backend, "precision", "fp32"))

    @property
    def threads(self) -> int | None:
        """The wrapped backend's thread count (recorded in the manifest)."""
        threads: int | None = getattr(self._backend, "threads", None)
        return threads

    @property
    def label_set(self) -> object:
        """The wrapped model's own label set (a fine-tuned head's), or ``None``."""
        return getattr(self._backend, "label_set", None)

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        with self._lock:
            return self._backend.predict(batch)


class OneLabelCallAtATime(OneCallAtATime):
    """:class:`OneCallAtATime` for a backend that also returns labels itself."""

    def __init__(self, backend: LabelBackend) -> None:
        super().__init__(backend)
        self._labels = backend

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[LabelMap, ConfidenceMap]:
        with self._lock:
            return self._labels.predict_labels(batch, layout)


def one_call_at_a_time(backend: Backend) -> OneCallAtATime:
    """``backend`` wrapped so that one model call runs at a time."""
    if isinstance(backend, LabelBackend):
        return OneLabelCallAtATime(backend)
    return OneCallAtATime(backend)


#: Hands a batch member on to the encode stage: its scores, or its finished segmentation.
HandOn = Callable[[Prepared, "Scores | None", "Segmentation | None"], None]


class ModelStage:
    """Model stage (two threads taking turns on the backend).

    Failing batches are retried image by image; an image that still fails is an ``error``
    entry, and a model that fails on each of the first :data:`MAX_INITIAL_MODEL_FAILURES`
    images stops the run.

    Args:
        segmenter: The segmenter, its backend taking one call at a time
            (:func:`one_call_at_a_time`).
        record: Records the entry of an image the model failed on.
    """

    def __init__(self, segmenter: Segmenter, record: Record) -> None:
        self.segmenter = segmenter
        self._record = record
        self._lock = threading.Lock()
        self._calls_ok = 0
        self._failures = 0

    def run_model(
        self, arrays: list[ImageArray]
    ) -> list[tuple[Scores | None, Segmentation | None]]:
        """Scores per image, to post-process in the writers; or the finished segmentation when
        the backend finds the labels itself (e.g. inside the TF graph) or the segmenter
        finalises the image in row bands (tiled, very large)."""
        segmenter = self.segmenter
        if segmenter.fused_labels and isinstance(segmenter.backend, LabelBackend):
            # Labels come back from the model (5 bytes a pixel instead of 4 per class): let the
            # segmenter run the whole step, it knows when scores are needed after all.
            return [(None, seg) for seg in segmenter.segment_batch(arrays, len(arrays))]
        banded = [segmenter.needs_bands(array) for array in arrays]
        whole = [array for array, bands in zip(arrays, banded, strict=True) if not bands]
        scores = iter(segmenter.predict_scores(whole) if whole else [])
        return [
            (None, segmenter.segment(array)) if bands else (next(scores), None)
            for array, bands in zip(arrays, banded, strict=True)
        ]

    def infer(self, batch: list[Prepared], hand_on: HandOn) -> None:
        """Run ``batch`` through the model and hand each result on."""
        arrays = [p.loaded.array for p in batch if p.loaded is not None]
        started = time.perf_counter()
        try:
            results = self.run_model(arrays)
        except Exception as exc:
            if len(batch) > 1:
                log.info("a batch of %d failed (%s); retrying image by image", len(batch), exc)
                for prepared in batch:
                    self.infer([prepared], hand_on)
                return
            with self._lock:
                self._failures += 1
                unusable = self._calls_ok == 0 and self._failures >= MAX_INITIAL_MODEL_FAILURES
            failed = batch[0]
            self._record(
                failed.index,
                ManifestEntry(
                    input=str(failed.file.path),
                    name=str(failed.file.name),
                    status="error",
                    error=error_text(failed.file.path, exc),
                    timing=failed.timing,
                ),
            )
            if unusable:
                raise BackendError(
                    f"the model failed on each of the first {self._failures} images, "
                    f"so it is not usable; the last error: {exc}"
                ) from exc
            return
        with self._lock:
            self._calls_ok += 1
        share = (time.perf_counter() - started) / len(batch)
        for prepared, (scores, segmentation) in zip(batch, results, strict=True):
            prepared.timing["inference"] = share
            hand_on(prepared, scores, segmentation)


# -- encode ------------------------------------------------------------------------------------


class EncodeStage:
    """Encode stage (worker threads): post-process the scores (unless the model stage gave a
    finished segmentation) and write every output kind.

    Args:
        segmenter: Turns scores into a :class:`Segmentation`.
        writer: Writes the output files.
        record: Records each input's entry.
        on_segmentation: Called with each input and its segmentation once its outputs are
            written; an exception makes that input an error.
    """

    def __init__(
        self,
        segmenter: Segmenter,
        writer: OutputWriter,
        record: Record,
        on_segmentation: Callable[[InputFile, Segmentation], None] | None = None,
    ) -> None:
        self.segmenter = segmenter
        self.writer = writer
        self._record = record
        self._on_segmentation = on_segmentation

    def encode(
        self, prepared: Prepared, scores: Scores | None, segmentation: Segmentation | None
    ) -> None:
        """Write the outputs of one image and record its entry."""
        started = time.perf_counter()
        file = prepared.file
        loaded = prepared.loaded
        assert loaded is not None  # only decoded images reach the model
        try:
            if segmentation is not None:
                seg = segmentation
            elif scores is not None:
                seg = self.segmenter.from_scores(loaded.array, scores, source=file.path)
            else:  # pragma: no cover - the model stage always gives one of them
                raise BackendError(f"{file.path}: the model stage returned nothing")
            outputs = self.writer.write_all(file.name, prepared.kinds, seg, loaded.array)
            if self._on_segmentation is not None:
                self._on_segmentation(file, seg)
            prepared.timing["encode"] = time.perf_counter() - started
            entry = ManifestEntry(
                input=str(file.path),
                name=str(file.name),
                status="ok",
                outputs=outputs,
                size=loaded.size,
                mode=loaded.mode,
                class_areas={k: round(v, 6) for k, v in seg.class_areas().items()},
                timing=prepared.timing,
                notes=image_notes(loaded),
            )
        except Exception as exc:
            prepared.timing["encode"] = time.perf_counter() - started
            log.debug("writing outputs of %s failed", file.path, exc_info=True)
            entry = ManifestEntry(
                input=str(file.path),
                name=str(file.name),
                status="error",
                error=error_text(file.path, exc),
                size=loaded.size,
                mode=loaded.mode,
                timing=prepared.timing,
                notes=image_notes(loaded),
            )
        self._record(prepared.index, entry)
