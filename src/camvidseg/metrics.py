"""Segmentation metrics over a whole data set, following the CamVid evaluation protocol.

One :class:`ConfusionMatrix` is accumulated over every image (not a mean of per-image scores),
then :meth:`ConfusionMatrix.compute` turns it into an :class:`EvaluationResult`:

- pixels whose ground truth is Void (or unlabelled, 255) are ignored;
- Void is not a scored class: predicting Void, or abstaining with 255 after a confidence
  threshold, on a labelled pixel is a miss for the ground-truth class, exactly like a wrong
  class. Abstained pixels stay in every denominator, so abstaining never raises pixel accuracy
  or a class's accuracy and never scores as well as the right answer (it only spares the class
  that would have been wrongly predicted a false positive);
- global pixel accuracy, mean class accuracy, per-class IoU, mean IoU and frequency-weighted IoU
  are fractions in ``[0, 1]``;
- a class absent from both the ground truth and the predictions (on scored pixels) over the whole
  set has no IoU: it is reported as ``None`` (``null`` in JSON) and left out of the means.

Everything here is numpy only.

Example:
    >>> from camvidseg.palette import CamVidPalette
    >>> cm = ConfusionMatrix(CamVidPalette.camvid11())
    >>> gt = np.array([[0, 0, 3, 11]], np.uint8)      # Sky, Sky, Road, Void
    >>> pred = np.array([[0, 3, 3, 0]], np.uint8)     # Sky, Road, Road, Sky (ignored)
    >>> cm.update(pred, gt)
    >>> result = cm.compute()
    >>> result.per_class["Sky"], result.per_class["Road"], result.per_class["Car"]
    (0.5, 0.5, None)
    >>> result.miou, result.pixel_accuracy
    (0.5, 0.6666666666666666)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED
from camvidseg.exceptions import ConfigError, InvalidImageError
from camvidseg.palette import CamVidPalette, ClassGrouping, check_label_ids, get_grouping

__all__ = [
    "ConfusionMatrix",
    "EvaluationProblem",
    "EvaluationResult",
    "ProblemKind",
    "format_table",
]

#: What went wrong with one file of a data set (see :class:`EvaluationProblem`).
ProblemKind = Literal[
    "missing_ground_truth",
    "missing_prediction",
    "ambiguous",
    "size_mismatch",
    "unknown_colors",
    "unreadable",
    "invalid_labels",
]

_NUM_KEYS = 256 * 256
_JSON_FORMAT = "camvidseg.confusion/1"


def _palette_from_dict(data: Mapping[str, Any]) -> CamVidPalette:
    names = tuple(str(n) for n in data["classes"])
    name = str(data.get("palette", "custom"))
    for builtin in (CamVidPalette.camvid32(), CamVidPalette.camvid11()):
        if name == builtin.name and names == builtin.names:
            return builtin
    colors = np.array(data.get("colors", [[0, 0, 0]] * len(names)), dtype=np.uint8).reshape(-1, 3)
    void_id = data.get("void_id")
    return CamVidPalette(
        name=name, names=names, colors=colors, void_id=None if void_id is None else int(void_id)
    )


def _as_label_array(array: NDArray[Any], what: str) -> NDArray[np.uint8]:
    if array.dtype == np.uint8:
        return array
    if not np.issubdtype(array.dtype, np.integer):
        raise InvalidImageError(f"{what} must be an integer label map (got dtype {array.dtype})")
    if array.size and (int(array.min()) < 0 or int(array.max()) > UNLABELLED):
        raise InvalidImageError(
            f"{what} ids must be in 0..{UNLABELLED} (got {int(array.min())}..{int(array.max())})"
        )
    return array.astype(np.uint8)


@attrs.define(eq=False)
class ConfusionMatrix:
    """Pixel counts of (ground truth, prediction) pairs, accumulated over a data set.

    ``counts`` has shape ``(N + 1, N + 1)`` for a palette of ``N`` classes (Void included):
    row = ground-truth id, column = predicted id, and the last row and column stand for
    *unlabelled* (id 255). Nothing is dropped when counting (pixels with Void ground truth keep
    their row), so the matrix can be merged, regrouped and saved losslessly; the protocol's
    ignoring happens in :meth:`compute`.

    Attributes:
        palette: The label set of both predictions and ground truth.
        counts: ``(N + 1, N + 1)`` int64 counts.
        num_images: How many :meth:`update` calls went into the counts.

    Example:
        >>> cm = ConfusionMatrix(CamVidPalette.camvid32())
        >>> cm.update(np.array([[17, 255]], np.uint8), np.array([[17, 17]], np.uint8))
        >>> int(cm.counts[17, 17]), int(cm.counts[17, cm.unlabelled_index]), cm.num_images
        (1, 1, 1)
        >>> cm.compute().per_class["Road"]  # abstaining (255) is a miss
        0.5
    """

    palette: CamVidPalette = attrs.field(factory=CamVidPalette.camvid32)
    counts: NDArray[np.int64] = attrs.field()
    num_images: int = attrs.field(default=0)

    @counts.default
    def _zeros(self) -> NDArray[np.int64]:
        size = len(self.palette) + 1
        return np.zeros((size, size), dtype=np.int64)

    def __attrs_post_init__(self) -> None:
        size = len(self.palette) + 1
        counts = np.asarray(self.counts)
        if counts.shape != (size, size):
            raise ConfigError(
                f"counts for {self.palette.name} must have shape ({size}, {size}) "
                f"(got {counts.shape})"
            )
        if not np.issubdtype(counts.dtype, np.integer) or (counts.size and counts.min() < 0):
            raise ConfigError("counts must be non-negative integers")
        self.counts = counts.astype(np.int64, copy=True)
        if self.num_images < 0:
            raise ConfigError(f"num_images must be >= 0 (got {self.num_images})")

    # -- accumulating -------------------------------------------------------------------------

    @property
    def unlabelled_index(self) -> int:
        """Row/column of :attr:`counts` that stands for unlabelled (id 255)."""
        return len(self.palette)

    @property
    def labels(self) -> tuple[str, ...]:
        """Names of the rows/columns of :attr:`counts`: the palette's classes, then unlabelled."""
        return (*self.palette.names, "unlabelled")

    def update(self, prediction: NDArray[Any], ground_truth: NDArray[Any]) -> None:
        """Add one image's pixels.

        Args:
            prediction: Label map, any shape, integer ids of :attr:`palette` or 255.
            ground_truth: Label map of the same shape; Void and 255 pixels are counted but
                ignored by the metrics.

        Raises:
            InvalidImageError: when the shapes differ.
            InvalidLabelError: when either map holds an id that is neither a class of the
                palette nor 255 (the message lists the ids).
        """
        if prediction.shape != ground_truth.shape:
            raise InvalidImageError(
                f"prediction and ground truth must have one shape "
                f"(got {prediction.shape} and {ground_truth.shape})"
            )
        pred = _as_label_array(prediction, "prediction")
        gt = _as_label_array(ground_truth, "ground truth")
        # One pass: key = gt * 256 + pred, counted over all 65536 pairs of uint8 ids, then folded.
        key = gt.astype(np.uint16).reshape(-1)
        key <<= np.uint16(8)
        key |= pred.reshape(-1)
        full = np.bincount(key, minlength=_NUM_KEYS).reshape(256, 256)
        n = len(self.palette)
        check_label_ids(full.sum(axis=1), self.palette, "ground truth")
        check_label_ids(full.sum(axis=0), self.palette, "prediction")
        ids = [*range(n), UNLABELLED]
        self.counts += full[np.ix_(ids, ids)]
        self.num_images += 1

    def merge(self, other: ConfusionMatrix) -> ConfusionMatrix:
        """A new matrix holding both matrices' counts (e.g. from parallel workers).

        Raises:
            ConfigError: when the two use different label sets.
        """
        if self.palette.names != other.palette.names:
            raise ConfigError(
                f"cannot merge confusion matrices of {self.palette.name} and {other.palette.name}"
            )
        return ConfusionMatrix(
            self.palette, self.counts + other.counts, self.num_images + other.num_images
        )

    def __add__(self, other: object) -> ConfusionMatrix:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return self.merge(other)

    @classmethod
    def merge_all(
        cls, matrices: Iterable[ConfusionMatrix], palette: CamVidPalette | None = None
    ) -> ConfusionMatrix:
        """Sum any number of matrices (an empty iterable gives an empty matrix of ``palette``)."""
        total: ConfusionMatrix | None = None
        for matrix in matrices:
            total = matrix if total is None else total.merge(matrix)
        if total is None:
            return cls(palette or CamVidPalette.camvid32())
        return total

    def regroup(self, grouping: ClassGrouping | str = "merge") -> ConfusionMatrix:
        """The same counts in a coarser label set (e.g. CamVid-32 -> CamVid-11).

        Equal to counting the remapped label maps, since a grouping maps each id to one id.

        Raises:
            ConfigError: when ``grouping`` does not start from this matrix's palette.
        """
        group = get_grouping(grouping) if isinstance(grouping, str) else grouping
        if group.source.names != self.palette.names:
            raise ConfigError(
                f"grouping {group.name!r} maps {group.source.name}, not {self.palette.name}"
            )
        target = group.target
        index = np.empty(len(self.palette) + 1, dtype=np.intp)
        for source_id in range(len(self.palette)):
            mapped = int(group.lut[source_id])
            index[source_id] = len(target) if mapped == UNLABELLED else mapped
        index[-1] = len(target)
        counts = np.zeros((len(target) + 1, len(target) + 1), dtype=np.int64)
        np.add.at(counts, (index[:, None], index[None, :]), self.counts)
        return ConfusionMatrix(target, counts, self.num_images)

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_dict` restores an equal matrix."""
        return {
            "format": _JSON_FORMAT,
            "palette": self.palette.name,
            "classes": list(self.palette.names),
            "colors": self.palette.colors.tolist(),
            "void_id": self.palette.void_id,
            "labels": list(self.labels),
            "num_images": self.num_images,
            "counts": self.counts.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ConfusionMatrix:
        """Rebuild a matrix from :meth:`to_dict` output.

        Raises:
            ConfigError: when ``data`` is not a saved confusion matrix.
        """
        try:
            if data.get("format") != _JSON_FORMAT:
                raise ConfigError(
                    f"not a camvidseg confusion matrix (format {data.get('format')!r}, "
                    f"expected {_JSON_FORMAT!r})"
                )
            palette = _palette_from_dict(data)
            counts = np.array(data["counts"], dtype=np.int64)
            return cls(palette, counts, int(data["num_images"]))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"invalid confusion matrix data: {exc!r}") from exc

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ConfusionMatrix:
        """Rebuild a matrix from :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"confusion matrix is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError("confusion matrix JSON must be an object")
        return cls.from_dict(data)

    def equals(self, other: ConfusionMatrix) -> bool:
        """Same label set, same counts and same image count."""
        return (
            self.palette.names == other.palette.names
            and self.num_images == other.num_images
            and bool(np.array_equal(self.counts, other.counts))
        )

    # -- metrics ------------------------------------------------------------------------------

    @property
    def scored_ids(self) -> tuple[int, ...]:
        """Class ids that are scored (every class but Void)."""
        return self.palette.scored_ids

    @property
    def scored_pixels(self) -> int:
        """Pixels whose ground truth is a scored class."""
        return int(self.counts[list(self.scored_ids)].sum())

    @property
    def ignored_pixels(self) -> int:
        """Pixels whose ground truth is Void or unlabelled."""
        return int(self.counts.sum()) - self.scored_pixels

    def class_statistics(self) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
        """``(true_positives, ground_truth, predicted)`` pixel counts per scored class.

        Only pixels whose ground truth is scored count; a prediction of Void or 255 on such a
        pixel adds to ``ground_truth`` but to no class's ``predicted``.
        """
        ids = list(self.scored_ids)
        rows = self.counts[ids]
        true_positives = rows[np.arange(len(ids)), ids]
        return true_positives, rows.sum(axis=1), rows[:, ids].sum(axis=0)

    def compute(self, problems: Sequence[EvaluationProblem] = ()) -> EvaluationResult:
        """The protocol's metrics from these counts.

        Args:
            problems: Per-file problems met while building the matrix, carried into the result.
        """
        tp, gt, pred = self.class_statistics()
        union = gt + pred - tp
        iou = tuple(
            float(t / u) if u else None for t, u in zip(tp.tolist(), union.tolist(), strict=True)
        )
        accuracy = tuple(
            float(t / g) if g else None for t, g in zip(tp.tolist(), gt.tolist(), strict=True)
        )
        defined = [v for v in iou if v is not None]
        measured = [v for v in accuracy if v is not None]
        total = int(gt.sum())
        fw_iou: float | None = None
        if total:
            fw_iou = float(
                sum(g * v for g, v in zip(gt.tolist(), iou, strict=True) if v is not None) / total
            )
        return EvaluationResult(
            classes=tuple(self.palette.names[i] for i in self.scored_ids),
            iou=iou,
            class_accuracy=accuracy,
            class_pixels=tuple(int(g) for g in gt.tolist()),
            miou=float(sum(defined) / len(defined)) if defined else None,
            pixel_accuracy=float(int(tp.sum()) / total) if total else None,
            mean_class_accuracy=float(sum(measured) / len(measured)) if measured else None,
            fw_iou=fw_iou,
            confusion=self,
            problems=tuple(problems),
        )


@attrs.frozen
class EvaluationProblem:
    """One file that could not be evaluated, and why.

    Attributes:
        kind: What went wrong (``"missing_ground_truth"``, ``"size_mismatch"``, ...).
        path: The file concerned.
        message: One line saying what was expected and what was found.
    """

    kind: ProblemKind
    path: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """``{"kind", "path", "message"}``."""
        return {"kind": self.kind, "path": self.path, "message": self.message}


def _fraction(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


@attrs.frozen(eq=False)
class EvaluationResult:
    """Metrics of a data set (fractions in ``[0, 1]``; ``None`` where undefined).

    Attributes:
        classes: Scored class names (Void excluded) in id order.
        iou: IoU per scored class, ``None`` for a class absent from ground truth and prediction.
        class_accuracy: Recall per scored class, ``None`` for a class absent from ground truth.
        class_pixels: Ground-truth pixels per scored class.
        miou: Mean of the defined IoUs.
        pixel_accuracy: Correct scored pixels over all scored pixels.
        mean_class_accuracy: Mean of the defined class accuracies.
        fw_iou: IoUs weighted by each class's share of the ground-truth pixels.
        confusion: The matrix the metrics were computed from.
        problems: Files that could not be evaluated.
    """

    classes: tuple[str, ...]
    iou: tuple[float | None, ...]
    class_accuracy: tuple[float | None, ...]
    class_pixels: tuple[int, ...]
    miou: float | None
    pixel_accuracy: float | None
    mean_class_accuracy: float | None
    fw_iou: float | None
    confusion: ConfusionMatrix
    problems: tuple[EvaluationProblem, ...] = ()

    @property
    def per_class(self) -> dict[str, float | None]:
        """``{class name: IoU or None}`` in id order."""
        return dict(zip(self.classes, self.iou, strict=True))

    @property
    def per_class_accuracy(self) -> dict[str, float | None]:
        """``{class name: accuracy or None}`` in id order."""
        return dict(zip(self.classes, self.class_accuracy, strict=True))

    @property
    def num_images(self) -> int:
        """Images that went into the metrics."""
        return self.confusion.num_images

    @property
    def palette(self) -> CamVidPalette:
        """The label set evaluated."""
        return self.confusion.palette

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready metrics.

        Keys: ``miou``, ``pixel_accuracy``, ``mean_class_accuracy``, ``fw_iou``, ``per_class``
        ({name: IoU or None}), ``per_class_accuracy``, ``per_class_pixels``, ``classes``,
        ``palette``, ``num_images``, ``scored_pixels``, ``ignored_pixels``, ``confusion_matrix``
        (see :meth:`ConfusionMatrix.to_dict`) and ``problems``.
        """
        return {
            "miou": self.miou,
            "pixel_accuracy": self.pixel_accuracy,
            "mean_class_accuracy": self.mean_class_accuracy,
            "fw_iou": self.fw_iou,
            "per_class": self.per_class,
            "per_class_accuracy": self.per_class_accuracy,
            "per_class_pixels": dict(zip(self.classes, self.class_pixels, strict=True)),
            "classes": list(self.classes),
            "palette": self.palette.name,
            "num_images": self.num_images,
            "scored_pixels": self.confusion.scored_pixels,
            "ignored_pixels": self.confusion.ignored_pixels,
            "confusion_matrix": self.confusion.to_dict(),
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON (``None`` becomes ``null``)."""
        return json.dumps(self.to_dict(), indent=indent)

    def table(self) -> str:
        """A plain-text table; see :func:`format_table`."""
        return format_table(self)


def format_table(result: EvaluationResult) -> str:
    """Render a result as a fixed-width text table (percentages; ``n/a`` where undefined).

    Example:
        >>> cm = ConfusionMatrix(CamVidPalette.camvid11())
        >>> cm.update(np.array([[0, 3]], np.uint8), np.array([[0, 0]], np.uint8))
        >>> print(format_table(cm.compute()).splitlines()[1])
        Sky          50.00%      50.00%           2
    """
    width = max(len("class"), *(len(c) for c in result.classes))
    lines = [f"{'class':<{width}}  {'IoU':>7}  {'accuracy':>10}  {'GT pixels':>10}"]
    for name, iou, acc, pixels in zip(
        result.classes, result.iou, result.class_accuracy, result.class_pixels, strict=True
    ):
        lines.append(f"{name:<{width}}  {_fraction(iou):>7}  {_fraction(acc):>10}  {pixels:>10}")
    lines.append("-" * len(lines[0]))
    lines.append(
        f"mIoU {_fraction(result.miou)}  |  pixel accuracy {_fraction(result.pixel_accuracy)}  |  "
        f"mean class accuracy {_fraction(result.mean_class_accuracy)}  |  "
        f"frequency-weighted IoU {_fraction(result.fw_iou)}"
    )
    lines.append(
        f"{result.palette.name}: {result.num_images} images, "
        f"{result.confusion.scored_pixels} scored pixels, "
        f"{result.confusion.ignored_pixels} ignored (Void or unlabelled ground truth)"
    )
    if result.problems:
        lines.append(f"{len(result.problems)} files could not be evaluated")
    return "\n".join(lines)
