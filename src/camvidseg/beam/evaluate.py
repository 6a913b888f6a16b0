"""Scoring label maps against ground truth in a Beam pipeline: per-image confusion matrices
summed by a ``CombineFn`` into one :class:`~camvidseg.metrics.EvaluationResult` (mIoU, pixel
accuracy, per-class IoU), over any number of images and workers.

The rules are ``camvidseg evaluate``'s: an input pairs with the ground-truth file of the same
name (``x.jpg`` with ``x_L.png`` or ``x.png``, anywhere under the folder), Void ground truth is
ignored, an unlabelled (255) or Void prediction is a miss, and a file that cannot be scored is a
problem of the result, not a failure of the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, cast

import apache_beam as beam
import attrs
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PCollection

from camvidseg._types import LabelMap
from camvidseg.beam.files import is_local, local_copy, with_uri
from camvidseg.exceptions import CamVidSegError, ConfigError
from camvidseg.groundtruth import (
    LABEL_SUFFIXES,
    LabelFormat,
    UnknownColors,
    ground_truth_key,
    index_ground_truth,
    list_files,
    problem_kind,
    read_ground_truth,
    to_label_set,
)
from camvidseg.metrics import ConfusionMatrix, EvaluationProblem, EvaluationResult
from camvidseg.palette import CamVidPalette

__all__ = ["ConfusionMatrixCombineFn", "Evaluate", "GroundTruthIndex"]

#: What :class:`Evaluate` takes: ``(uri, labels)``, or a problem to carry into the result.
LabelsOrProblem = Any


def _palette(classes: int) -> CamVidPalette:
    if classes not in (32, 11):
        raise ConfigError(f"classes must be 32 or 11 (got {classes})")
    return CamVidPalette.by_name(str(classes))


@attrs.frozen
class GroundTruthIndex:
    """The ground-truth files of a folder by pairing key (:func:`~camvidseg.groundtruth.
    ground_truth_key`), chosen as ``camvidseg evaluate`` chooses them.

    Attributes:
        folder: The folder (local or a ``FileSystems`` URL), searched recursively.
        files: Key -> file.
        ambiguous: Keys with several equally good files (an input with one is a problem).
    """

    folder: str
    files: dict[str, str]
    ambiguous: frozenset[str]

    @classmethod
    def of(cls, folder: str) -> GroundTruthIndex:
        """Index ``folder``'s label files (hidden ones skipped).

        Raises:
            ConfigError: when the folder is missing or holds no label file.
        """
        base = folder.rstrip("/") + "/"
        if is_local(folder):
            if not Path(folder).is_dir():
                raise ConfigError(f"ground-truth folder {folder}: no such folder")
            relative = {
                p.relative_to(folder).as_posix(): str(p) for p in list_files(folder, LABEL_SUFFIXES)
            }
        else:
            matched = FileSystems.match([base + "**"])[0].metadata_list
            relative = {}
            for metadata in matched:
                rel = PurePosixPath(str(metadata.path)[len(base) :])
                hidden = any(part.startswith(".") for part in rel.parts)
                if not hidden and rel.suffix.lower() in LABEL_SUFFIXES:
                    relative[rel.as_posix()] = str(metadata.path)
        if not relative:
            raise ConfigError(f"ground-truth folder {folder} holds no label files")
        chosen, problems = index_ground_truth(sorted(Path(r) for r in relative))
        return cls(
            folder,
            {key: relative[path.as_posix()] for key, path in chosen.items()},
            frozenset(ground_truth_key(p.path) for p in problems),
        )


class _ScoreLabels(beam.DoFn):
    """``(uri, labels)`` -> a one-image :class:`ConfusionMatrix`, or an
    :class:`EvaluationProblem` saying why it cannot be scored."""

    def __init__(
        self,
        ground_truth: str,
        classes: int,
        label_classes: int,
        gt_format: LabelFormat,
        unknown: UnknownColors,
        grouping: str,
    ) -> None:
        beam.DoFn.__init__(self)
        self.ground_truth = ground_truth
        self.classes = classes
        self.label_classes = label_classes
        self.gt_format: LabelFormat = gt_format
        self.unknown: UnknownColors = unknown
        self.grouping = grouping
        self.index: GroundTruthIndex | None = None

    def setup(self) -> None:
        self.index = GroundTruthIndex.of(self.ground_truth)

    def process(self, element: LabelsOrProblem) -> Iterator[ConfusionMatrix | EvaluationProblem]:
        if isinstance(element, EvaluationProblem):
            yield element
            return
        if self.index is None:  # pragma: no cover - Beam calls setup first
            self.setup()
        assert self.index is not None
        uri, labels = element
        yield self.score(self.index, str(uri), labels)

    def score(
        self, index: GroundTruthIndex, uri: str, labels: LabelMap
    ) -> ConfusionMatrix | EvaluationProblem:
        key = ground_truth_key(PurePosixPath(uri).name)
        if key in index.ambiguous:
            return EvaluationProblem(
                "ambiguous", uri, f"{uri}: its ground truth {key!r} is ambiguous"
            )
        truth_uri = index.files.get(key)
        if truth_uri is None:
            message = f"{uri}: no ground truth for {key!r} in {index.folder}"
            return EvaluationProblem("missing_ground_truth", uri, message)
        target = _palette(self.classes)
        try:
            with local_copy(truth_uri) as local:
                try:
                    truth = read_ground_truth(
                        local,
                        target,
                        label_format=self.gt_format,
                        unknown=self.unknown,
                        grouping=self.grouping,
                        command="beam",
                    )
                except CamVidSegError as exc:
                    message = with_uri(str(exc), local, truth_uri)
                    return EvaluationProblem(problem_kind(exc), truth_uri, message)
        except Exception as exc:  # a remote file that could not be fetched
            return EvaluationProblem("unreadable", truth_uri, f"{truth_uri}: {exc}")
        if labels.shape != truth.labels.shape:
            return EvaluationProblem(
                "size_mismatch",
                uri,
                f"{uri}: size {labels.shape[1]}x{labels.shape[0]} does not match ground truth "
                f"{truth_uri} ({truth.labels.shape[1]}x{truth.labels.shape[0]})",
            )
        mapped = to_label_set(labels, _palette(self.label_classes), target, self.grouping)
        matrix = ConfusionMatrix(target)
        matrix.update(mapped, truth.labels)
        return matrix


@attrs.define
class _Tally:
    matrix: ConfusionMatrix
    problems: list[EvaluationProblem]


class ConfusionMatrixCombineFn(beam.CombineFn):
    """Sums :class:`ConfusionMatrix` es (and collects :class:`EvaluationProblem` s) into one
    :class:`EvaluationResult`.

    Example:
        >>> import numpy as np
        >>> fn = ConfusionMatrixCombineFn(32)
        >>> one = ConfusionMatrix(CamVidPalette.camvid32())
        >>> one.update(np.array([[17, 21]], np.uint8), np.array([[17, 17]], np.uint8))
        >>> tally = fn.add_input(fn.create_accumulator(), one)
        >>> result = fn.extract_output(fn.merge_accumulators([tally, fn.create_accumulator()]))
        >>> result.num_images, result.pixel_accuracy
        (1, 0.5)
    """

    def __init__(self, classes: int = 32) -> None:
        beam.CombineFn.__init__(self)
        self.classes = classes

    def create_accumulator(self) -> _Tally:
        return _Tally(ConfusionMatrix(_palette(self.classes)), [])

    def add_input(self, tally: _Tally, item: ConfusionMatrix | EvaluationProblem) -> _Tally:
        if isinstance(item, EvaluationProblem):
            tally.problems.append(item)
        else:
            tally.matrix = tally.matrix.merge(item)
        return tally

    def merge_accumulators(self, tallies: Iterable[_Tally]) -> _Tally:
        merged = self.create_accumulator()
        for tally in tallies:
            merged.matrix = merged.matrix.merge(tally.matrix)
            merged.problems.extend(tally.problems)
        return merged

    def extract_output(self, tally: _Tally) -> EvaluationResult:
        problems = sorted(tally.problems, key=lambda p: (p.path, p.kind, p.message))
        return tally.matrix.compute(problems)


class Evaluate(beam.PTransform[PCollection[LabelsOrProblem], PCollection[EvaluationResult]]):
    """Score ``(uri, labels)`` elements against a ground-truth folder: one
    :class:`EvaluationResult` for the whole PCollection.

    Equals ``camvidseg evaluate`` on the label files of the same images. An element that is an
    :class:`EvaluationProblem` is carried into the result as it is (e.g. an input whose labels
    are missing).

    Args:
        ground_truth: Folder of ``*_L.png`` colour labels or SegNet index PNGs (local or a
            ``FileSystems`` URL), indexed once per worker.
        classes: Score in CamVid-32 (32) or CamVid-11 (11).
        label_classes: Label set of the labels (default: ``classes``); CamVid-32 labels are
            grouped to 11 with ``grouping``.
        gt_format: ``"auto"``, ``"rgb"`` or ``"index"``.
        unknown: Unknown colours in RGB ground truth: ``"error"`` (a problem) or ``"void"``.
        grouping: Registered 32 -> 11 grouping.
    """

    def __init__(
        self,
        ground_truth: str | os.PathLike[str],
        *,
        classes: int = 32,
        label_classes: int | None = None,
        gt_format: LabelFormat = "auto",
        unknown: UnknownColors = "error",
        grouping: str = "merge",
    ) -> None:
        beam.PTransform.__init__(self)
        _palette(classes)
        label_classes = classes if label_classes is None else label_classes
        if label_classes == 11 and classes == 32:
            raise ConfigError("CamVid-11 labels can only be evaluated with classes=11")
        self.score = _ScoreLabels(
            os.fspath(ground_truth), classes, label_classes, gt_format, unknown, grouping
        )
        self.combine = ConfusionMatrixCombineFn(classes)

    def expand(self, labels: PCollection[LabelsOrProblem]) -> PCollection[EvaluationResult]:
        scored = labels | "Score" >> beam.ParDo(self.score)
        result = scored | "Sum" >> beam.CombineGlobally(self.combine)
        return cast("PCollection[EvaluationResult]", result)
