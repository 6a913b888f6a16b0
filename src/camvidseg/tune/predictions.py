"""The images tuned on and their model predictions: read from the prediction cache, the
missing views computed (the model loaded only when one is missing)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
from tqdm import tqdm

from camvidseg.backends.base import Backend
from camvidseg.config import SegmentConfig
from camvidseg.exceptions import (
    InvalidImageError,
    UnknownColorError,
)
from camvidseg.groundtruth import (
    FilePair,
    LabelFormat,
    UnknownColors,
    problem_kind,
    read_ground_truth,
)
from camvidseg.imageio import open_image
from camvidseg.labelset import model_label_set
from camvidseg.metrics import EvaluationProblem
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout
from camvidseg.predcache import (
    IDENTITY_VIEW,
    PredictionCache,
    View,
    ViewPrediction,
    hash_file,
)
from camvidseg.segmenter import DEFAULT_MAX_PIXELS, Segmenter
from camvidseg.tta import TTAConfig

log = logging.getLogger("camvidseg")


@attrs.frozen
class TuneImage:
    """An image that can be tuned on: its files, content hash and size."""

    pair: FilePair
    image_hash: str
    shape: tuple[int, int]


def split_files(images: list[Path], truth: list[Path]) -> tuple[list[Path], list[Path]]:
    """Images and ground truth may share a folder: a file in both lists is ground truth when
    named ``*_L`` (CamVid's colour labels), else an image."""
    shared = {p.resolve() for p in images} & {p.resolve() for p in truth}

    def is_truth(path: Path) -> bool:
        return path.stem.endswith("_L")

    return (
        [p for p in images if p.resolve() not in shared or not is_truth(p)],
        [p for p in truth if p.resolve() not in shared or is_truth(p)],
    )


def cache_settings(base: SegmentConfig) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "max_side": base.max_side,
        "tile": base.tile,
        "overlap": base.overlap,
        "drop_void": base.drop_void,
        "max_pixels": DEFAULT_MAX_PIXELS,
    }
    if base.head is not None:  # a head's predictions are another model's
        from camvidseg.backends.head import head_identity

        settings["head"] = head_identity(base.head)
    return settings


@attrs.frozen
class _OneView(TTAConfig):
    """Exactly one view, ``(scales[0], flip)``: a TTAConfig with ``flip`` also runs unflipped."""

    def views(self) -> tuple[tuple[float, bool], ...]:
        return ((self.scales[0], self.flip),)


class Predictor:
    """Reads views from the cache and computes missing ones, loading the model only if needed."""

    def __init__(
        self,
        model: Backend | Callable[[], Backend],
        base: SegmentConfig,
        cache: PredictionCache,
        batch_size: int,
    ) -> None:
        self._model = model
        self._base = base
        self._cache = cache
        self._batch_size = batch_size
        self._backend: Backend | None = None
        self._segmenters: dict[View, Segmenter] = {}
        self.computed = 0
        self.reused = 0

    def segmenter(self, view: View) -> Segmenter:
        """A Segmenter running exactly this view (built on first use)."""
        if view not in self._segmenters:
            if self._backend is None:
                model = self._model
                self._backend = model if isinstance(model, Backend) else model()
            scale, flip = view
            tta = None if view == IDENTITY_VIEW else _OneView(flip=flip, scales=(scale,))
            # The cache holds the model's own scores (CamVid-32, or a head's classes) of one
            # view, before any post-processing.
            self._segmenters[view] = self._base.build_segmenter(
                self._backend,
                palette=self.model_palette(),
                tta=tta,
                cleanup=None,
                min_confidence=None,
                batch_size=self._batch_size,
                keep_image=False,
            )
        return self._segmenters[view]

    def model_palette(self) -> CamVidPalette:
        """The label set of the cached labels: the model's own (a head's), else CamVid-32."""
        label_set = None if self._backend is None else model_label_set(self._backend)
        if label_set is None and self._base.head is not None:
            from camvidseg.backends.head import read_head_info

            label_set = read_head_info(self._base.head).label_set
        return CamVidPalette.camvid32() if label_set is None else label_set.to_palette()

    def fill(self, entries: Sequence[TuneImage], views: Sequence[View], progress: bool) -> None:
        """Compute and store every view of ``entries`` the cache does not hold yet."""
        todo: dict[View, list[TuneImage]] = {}
        for entry in entries:
            for view in views:
                if self._cache.contains(entry.image_hash, view):
                    self.reused += 1
                else:
                    todo.setdefault(view, []).append(entry)
        total = sum(len(pending) for pending in todo.values())
        if total:
            log.info("running the model on %d image views (%d cached)", total, self.reused)
        with tqdm(
            total=total, desc="predicting", unit="view", disable=not progress or not total
        ) as bar:
            for view, pending in todo.items():
                for start in range(0, len(pending), self._batch_size):
                    chunk = pending[start : start + self._batch_size]
                    self._compute(view, chunk)
                    bar.update(len(chunk))

    def get(self, entry: TuneImage, view: View) -> ViewPrediction:
        """The cached view, recomputed if its file turned out unreadable."""
        loaded = self._cache.load(entry.image_hash, view, entry.shape)
        if loaded is None:
            return self._compute(view, [entry])[0]
        return loaded

    def _compute(self, view: View, entries: Sequence[TuneImage]) -> list[ViewPrediction]:
        segmenter = self.segmenter(view)
        arrays = [open_image(entry.pair.source).array for entry in entries]
        out = []
        for entry, scores in zip(entries, segmenter.predict_scores(arrays), strict=True):
            layout = segmenter.layout
            if layout is None or layout.num_channels != scores.shape[-1]:
                layout = ChannelLayout.detect(scores.shape[-1], drop_void=segmenter.drop_void)
            prediction = ViewPrediction.from_scores(scores, layout, self._cache.top_k)
            self._cache.store(entry.image_hash, view, prediction)
            self.computed += 1
            log.debug("cached view %s of %s", view, entry.pair.source)
            out.append(prediction)
        return out


def usable_images(
    pairs: Sequence[FilePair],
    base: SegmentConfig,
    gt_format: LabelFormat,
    unknown: UnknownColors,
    problems: list[EvaluationProblem],
) -> list[TuneImage]:
    """Pairs whose ground truth reads and whose image has the ground truth's size."""
    entries = []
    for pair in pairs:
        try:
            truth = read_ground_truth(
                pair.ground_truth,
                base.palette,
                label_format=gt_format,
                unknown=unknown,
                grouping=base.grouping,
                command="tune",
            ).labels
            height, width = open_image(pair.source).array.shape[:2]
            image_hash = hash_file(pair.source)
        except (InvalidImageError, UnknownColorError) as exc:
            problems.append(EvaluationProblem(problem_kind(exc), str(pair.source), str(exc)))
            continue
        except OSError as exc:
            problems.append(
                EvaluationProblem("unreadable", str(pair.source), f"{pair.source}: {exc}")
            )
            continue
        if (height, width) != truth.shape:
            problems.append(
                EvaluationProblem(
                    "size_mismatch",
                    str(pair.source),
                    f"{pair.source}: size {width}x{height} does not match ground truth "
                    f"{pair.ground_truth} ({truth.shape[1]}x{truth.shape[0]})",
                )
            )
            continue
        entries.append(TuneImage(pair, image_hash, (height, width)))
    return entries
