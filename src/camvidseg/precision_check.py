"""How much bfloat16 changes a model's labels, and how much faster it is, on the user's images.

bfloat16 keeps 8 bits of mantissa, so some near-tied pixels change class. How many depends on
the weights and the images, which is why ``--precision bf16`` is opt-in and
``camvidseg model verify MODEL --compare-precision IMAGES...`` measures it: label agreement
between fp32 and bf16, the IoU of every class between the two label maps, and the speed ratio.

Example (on a CPU with avx512_bf16 or AMX)::

    >>> result = compare_precision("/models/hrnet-ov", ["a.png", "b.png"])  # doctest: +SKIP
    >>> print(result.format())  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ImageArray, LabelMap
from camvidseg.backends.precision import require_bf16
from camvidseg.evaluation import list_image_files
from camvidseg.exceptions import CamVidSegError, ConfigError, InvalidImageError
from camvidseg.imageio import load_image
from camvidseg.palette import CamVidPalette

__all__ = ["ImageComparison", "PrecisionComparison", "compare_precision", "label_agreement_iou"]

_CLASSES = 256  # label ids are uint8


@attrs.frozen
class ImageComparison:
    """fp32 vs bf16 on one image: pixels, share of equal labels, seconds per precision."""

    path: Path
    pixels: int
    agreement: float
    fp32_seconds: float
    bf16_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "pixels": self.pixels,
            "agreement": self.agreement,
            "fp32_seconds": round(self.fp32_seconds, 4),
            "bf16_seconds": round(self.bf16_seconds, 4),
        }


@attrs.frozen
class PrecisionComparison:
    """The outcome of :func:`compare_precision`.

    Attributes:
        model: The handle compared.
        images: One row per image segmented.
        agreement: Share of all pixels whose label is the same at fp32 and bf16.
        class_iou: IoU between the fp32 and bf16 masks of every class either predicts.
        fp32_seconds, bf16_seconds: Total model time over the images (after one warm-up run
            per image size, so compilation is not counted).
        errors: ``(path, message)`` of inputs that could not be read.
    """

    model: str
    images: tuple[ImageComparison, ...]
    agreement: float
    class_iou: dict[str, float]
    fp32_seconds: float
    bf16_seconds: float
    errors: tuple[tuple[Path, str], ...] = ()

    @property
    def speedup(self) -> float:
        """fp32 time over bf16 time (above 1: bf16 is faster)."""
        return self.fp32_seconds / self.bf16_seconds if self.bf16_seconds > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "agreement": self.agreement,
            "class_iou": self.class_iou,
            "fp32_seconds": round(self.fp32_seconds, 4),
            "bf16_seconds": round(self.bf16_seconds, 4),
            "speedup": self.speedup,
            "images": [i.to_dict() for i in self.images],
            "errors": [{"path": str(p), "error": m} for p, m in self.errors],
        }

    def format(self) -> str:
        pixels = sum(i.pixels for i in self.images)
        lines = [
            f"fp32 vs bf16 on {len(self.images)} image(s) ({pixels} pixels) with {self.model}",
            f"label agreement  {self.agreement:.4%}",
            f"speed            bf16 {self.speedup:.2f}x fp32's speed "
            f"({self.fp32_seconds:.3f} s vs {self.bf16_seconds:.3f} s of model time)",
            "class IoU between fp32 and bf16 labels (lowest first):",
        ]
        for name, iou in sorted(self.class_iou.items(), key=lambda item: (item[1], item[0])):
            lines.append(f"  {name:<20} {iou:.4f}")
        lines.append("per image:")
        lines.extend(
            f"  {image.path}: {image.agreement:.4%} equal; "
            f"{image.fp32_seconds:.3f} s fp32, {image.bf16_seconds:.3f} s bf16"
            for image in self.images
        )
        lines.extend(f"  {path}: not compared ({message})" for path, message in self.errors)
        return "\n".join(lines)


def label_agreement_iou(
    first: LabelMap, second: LabelMap, num_classes: int = _CLASSES
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Per-class ``(intersection, union)`` counts of two label maps, and the equal-pixel count.

    Returns:
        ``(intersection, union, equal)``: int64 arrays of length ``num_classes`` (the pixels
        both maps give class ``c``, and those either gives it), and a 0-d array with the
        number of pixels where the maps agree.

    Example:
        >>> a = np.array([[1, 1, 2]], np.uint8); b = np.array([[1, 2, 2]], np.uint8)
        >>> inter, union, equal = label_agreement_iou(a, b, 3)
        >>> inter.tolist(), union.tolist(), int(equal)
        ([0, 1, 1], [0, 2, 2], 2)
    """
    if first.shape != second.shape:
        raise InvalidImageError(
            f"label maps must have one shape (got {first.shape} and {second.shape})"
        )
    pairs = first.astype(np.int64).ravel() * num_classes + second.astype(np.int64).ravel()
    table = np.bincount(pairs, minlength=num_classes * num_classes).reshape(
        num_classes, num_classes
    )
    intersection = np.diagonal(table).copy()
    union = table.sum(axis=0) + table.sum(axis=1) - intersection
    return intersection, union, np.asarray(intersection.sum())


def _inputs(images: Iterable[str | os.PathLike[str]]) -> list[Path]:
    files: list[Path] = []
    for item in images:
        files += list_image_files(item)
    if not files:
        raise ConfigError("--compare-precision: no images given (or none in the folders given)")
    return files


def _read(path: Path) -> ImageArray | str:
    """The image, or why it could not be read."""
    try:
        return load_image(path)
    except (CamVidSegError, OSError) as exc:
        return str(exc)


def _timed_labels(
    segmenter: Any, images: Sequence[ImageArray]
) -> tuple[list[LabelMap], list[float]]:
    """Labels and model seconds of each image; one untimed run per image size first."""
    seen: set[tuple[int, ...]] = set()
    for image in images:
        if image.shape not in seen:
            seen.add(image.shape)
            segmenter.segment(image)
    labels, seconds = [], []
    for image in images:
        started = time.perf_counter()
        labels.append(segmenter.segment(image).labels)
        seconds.append(time.perf_counter() - started)
    return labels, seconds


def compare_precision(
    handle: str | os.PathLike[str],
    images: Iterable[str | os.PathLike[str]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    threads: int | None = None,
) -> PrecisionComparison:
    """Segment ``images`` at fp32 and at bf16 and compare the CamVid-32 labels and times.

    Works for every model handle (TensorFlow or an OpenVINO IR folder). With TensorFlow, whose
    precision setting is process-wide, the model is loaded a second time for bf16.

    Args:
        handle: Model handle or folder.
        images: Image files and folders (their images, recursively).
        cache_dir: TF Hub cache for URL handles.
        timeout: Seconds a network read may stall.
        threads: Inference threads for both runs (default: all cores).

    Raises:
        ConfigError: if this CPU has no native bfloat16 (before anything is loaded), or no
            image could be read.
    """
    from camvidseg.segmenter import Segmenter

    require_bf16("--compare-precision", "there is no bf16 to compare with on this machine")
    loaded: list[tuple[Path, ImageArray]] = []
    errors: list[tuple[Path, str]] = []
    for path in _inputs(images):
        image = _read(path)
        if isinstance(image, str):
            errors.append((path, image))
        else:
            loaded.append((path, image))
    if not loaded:
        raise ConfigError(f"--compare-precision: none of the {len(errors)} input(s) could be read")
    arrays = [image for _, image in loaded]
    runs = {}
    for precision in ("fp32", "bf16"):
        segmenter = Segmenter.from_hub(
            os.fspath(handle),
            cache_dir=cache_dir,
            timeout=timeout,
            precision=precision,
            threads=threads,
            keep_image=False,
        )
        runs[precision] = _timed_labels(segmenter, arrays)
        del segmenter
    (fp32_labels, fp32_seconds), (bf16_labels, bf16_seconds) = runs["fp32"], runs["bf16"]
    intersection = np.zeros(_CLASSES, np.int64)
    union = np.zeros(_CLASSES, np.int64)
    rows, equal_total = [], 0
    for i, (path, _) in enumerate(loaded):
        inter, uni, equal = label_agreement_iou(fp32_labels[i], bf16_labels[i])
        intersection += inter
        union += uni
        equal_total += int(equal)
        pixels = int(fp32_labels[i].size)
        rows.append(
            ImageComparison(path, pixels, int(equal) / pixels, fp32_seconds[i], bf16_seconds[i])
        )
    names = CamVidPalette.camvid32().names
    class_iou = {
        (names[c] if c < len(names) else str(c)): float(intersection[c] / union[c])
        for c in np.flatnonzero(union)
    }
    total = sum(r.pixels for r in rows)
    return PrecisionComparison(
        model=os.fspath(handle),
        images=tuple(rows),
        agreement=equal_total / total,
        class_iou=class_iou,
        fp32_seconds=float(sum(fp32_seconds)),
        bf16_seconds=float(sum(bf16_seconds)),
        errors=tuple(errors),
    )
