"""Training data of a head: images paired with labels exactly as ``camvidseg evaluate`` pairs
them, labels read into the head's label set, the validation split, class statistics and weights.

Every image and label is checked before any feature is computed: a size mismatch, unknown
colours, ids outside the label set or an unreadable file stop the run with one error listing
every bad file. Images without a label file are not training data (one warning says how many).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg._types import UNLABELLED, ImageArray, LabelMap
from camvidseg.evaluation import list_image_files
from camvidseg.exceptions import (
    ConfigError,
    InvalidImageError,
)
from camvidseg.groundtruth import (
    LABEL_SUFFIXES,
    LabelFormat,
    UnknownColors,
    index_ground_truth,
    list_files,
    pair_by_stem,
    read_ground_truth,
    read_label_file,
)
from camvidseg.labelset import LabelSet

__all__ = [
    "CLASS_WEIGHT_MODES",
    "DataError",
    "DataOptions",
    "Sample",
    "class_weights",
    "count_classes",
    "find_samples",
    "ignored_mask",
    "model_size",
    "read_labels",
    "read_sample",
    "resize_image",
    "resize_labels",
    "split_samples",
]

log = logging.getLogger("camvidseg")

#: Built-in ``--class-weights`` modes (anything else is a weights file).
CLASS_WEIGHT_MODES = ("none", "inverse", "median-freq")
#: Problems listed in full in a :class:`DataError` message.
_SHOWN = 10


class DataError(ConfigError):
    """Training data that cannot be used: lists every bad file."""


def _check_max_side(
    instance: object, attribute: attrs.Attribute[int | None], value: object
) -> None:
    del instance
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ConfigError(f"{attribute.name} must be an integer >= 1 or None (got {value!r})")


@attrs.frozen
class DataOptions:
    """How training data is read.

    Attributes:
        label_set: The head's classes (labels are read into these ids).
        gt_format: ``"auto"``, ``"rgb"`` or ``"index"`` (as ``evaluate``).
        unknown: RGB colours not in the label set: ``"error"`` or ``"void"`` (ignored pixels;
            needs an ignored class).
        grouping: 32 -> 11 grouping of CamVid-32 labels read for a CamVid-11 label set.
        max_side: The model sees images resized so their longer side is at most this (as
            ``segment --max-side``); labels are resized to match (nearest).
    """

    label_set: LabelSet = attrs.field(factory=LabelSet.camvid32)
    gt_format: LabelFormat = "auto"
    unknown: UnknownColors = "error"
    grouping: str = "merge"
    max_side: int | None = attrs.field(default=None, validator=_check_max_side)

    def __attrs_post_init__(self) -> None:
        if self.gt_format not in ("auto", "rgb", "index"):
            raise ConfigError(f"gt_format must be auto, rgb or index (got {self.gt_format!r})")
        if self.unknown not in ("error", "void"):
            raise ConfigError(f"unknown colours must be error or void (got {self.unknown!r})")
        if self.unknown == "void" and not self.label_set.ignore_ids:
            raise ConfigError(
                f"unknown colours can only become Void in a label set with an ignored class; "
                f'{self.label_set.describe()} has none (mark one with "ignore": true)'
            )

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (the label set by name; ``head.json`` records it in full)."""
        return {
            "label_set": self.label_set.name,
            "gt_format": self.gt_format,
            "unknown_colors": self.unknown,
            "grouping": self.grouping,
            "max_side": self.max_side,
        }


@attrs.frozen
class Sample:
    """One labelled image: its pairing key, image file and label file."""

    key: str
    image: Path
    labels: Path


def find_samples(
    images: str | os.PathLike[str], labels: str | os.PathLike[str]
) -> tuple[list[Sample], list[Path]]:
    """Pair images with label files by name, as ``camvidseg evaluate`` does.

    ``x.png`` pairs with ``x_L.png`` or ``x.png`` anywhere under ``labels``; ``images`` and
    ``labels`` may be the same folder (label files are then not taken as images).

    Returns:
        ``(samples, unlabelled)``: samples sorted by key, and images without a label file.

    Raises:
        ConfigError: a folder is missing, or two images (or label files) share a name.
    """
    label_dir = Path(labels)
    if not label_dir.is_dir():
        raise ConfigError(f"label folder {label_dir}: no such folder")
    if not Path(images).exists():
        raise ConfigError(f"image folder {images}: no such file or folder")
    label_files = list_files(label_dir, LABEL_SUFFIXES)
    chosen, _ = index_ground_truth(label_files)
    taken = {p.resolve() for p in chosen.values()}
    image_files = [p for p in list_image_files(images) if p.resolve() not in taken]
    pairs, problems = pair_by_stem(image_files, label_files, report_unused_ground_truth=False)
    errors = [p.message for p in problems if p.kind == "ambiguous"]
    if errors:
        raise DataError(_listing("files cannot be paired unambiguously", errors))
    paired = {p.source for p in pairs}
    unlabelled = [p for p in image_files if p not in paired]
    return [Sample(p.key, p.source, p.ground_truth) for p in pairs], unlabelled


def _listing(what: str, messages: Sequence[str]) -> str:
    shown = "\n  ".join(messages[:_SHOWN])
    more = f"\n  ... and {len(messages) - _SHOWN} more" if len(messages) > _SHOWN else ""
    return f"{len(messages)} {what}:\n  {shown}{more}"


def read_labels(path: Path, options: DataOptions) -> LabelMap:
    """A label file as ``(H, W)`` uint8 ids of ``options.label_set`` (or 255).

    CamVid-32 and CamVid-11 label sets read every format ``evaluate`` reads (CamVid-32 colour
    labels are grouped for CamVid-11); a custom label set reads colour labels in its own colours
    and index files holding its ids.

    Raises:
        InvalidImageError, UnknownColorError, InvalidLabelError: the file's own problem.
        ConfigError: the file holds another label set's ids.
    """
    label_set = options.label_set
    palette = label_set.to_palette()
    if label_set.is_camvid:
        return read_ground_truth(
            path,
            palette,
            label_format=options.gt_format,
            unknown=options.unknown,
            grouping=options.grouping,
            command="finetune",
        ).labels
    read = read_label_file(
        path,
        label_format=options.gt_format,
        rgb_palette=palette,
        index_palette=palette,
        unknown=options.unknown,
    )
    if read.palette.names != palette.names:
        raise ConfigError(
            f"{path} holds {read.palette.name} ids (its palette says so), not ids of "
            f"{label_set.describe()}; relabel it or pass --gt-format rgb"
        )
    return read.labels


def model_size(height: int, width: int, max_side: int | None) -> tuple[int, int]:
    """``(height, width)`` the model sees (the Segmenter's rule for ``max_side``).

    Example:
        >>> model_size(360, 480, 240), model_size(360, 480, None)
        ((180, 240), (360, 480))
    """
    if max_side is None or max(height, width) <= max_side:
        return height, width
    factor = max_side / max(height, width)
    return max(1, round(height * factor)), max(1, round(width * factor))


def resize_image(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    """``image`` resized bilinearly with Pillow to ``size = (height, width)`` (as the Segmenter
    resizes for ``max_side``); the same array if the size is unchanged."""
    if size == image.shape[:2]:
        return image
    pil = Image.fromarray(np.ascontiguousarray(image))
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.BILINEAR))


def resize_labels(labels: LabelMap, size: tuple[int, int]) -> LabelMap:
    """Nearest-neighbour resize of a label map to ``size = (height, width)``."""
    if size == labels.shape:
        return labels
    pil = Image.fromarray(np.ascontiguousarray(labels), mode="L")
    return np.asarray(pil.resize((size[1], size[0]), Image.Resampling.NEAREST), dtype=np.uint8)


def split_samples(
    samples: Sequence[Sample], fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """``(train, val)``: ``round(fraction * n)`` samples (at least 1, at most ``n - 1``) for
    validation, chosen by a seeded hash of their names (so the split does not depend on the
    order files are found in, and adding images moves few of the others).

    Raises:
        ConfigError: fewer than 2 samples, or ``fraction`` outside ``(0, 1)``.

    Example:
        >>> s = [Sample(k, Path(k), Path(k)) for k in "abcdefghij"]
        >>> train, val = split_samples(s, 0.2, seed=0)
        >>> len(train), len(val), split_samples(s, 0.2, seed=0)[1] == val
        (8, 2, True)
    """
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"the validation split must be in (0, 1) (got {fraction})")
    if len(samples) < 2:
        raise ConfigError(
            f"{len(samples)} labelled image(s): at least 2 are needed to hold some out for "
            "validation (or pass validation folders)"
        )
    count = min(len(samples) - 1, max(1, round(fraction * len(samples))))

    def rank(sample: Sample) -> str:
        return hashlib.sha256(f"{seed}\0{sample.key}".encode()).hexdigest()

    chosen = {s.key for s in sorted(samples, key=rank)[:count]}
    return [s for s in samples if s.key not in chosen], [s for s in samples if s.key in chosen]


def class_weights(mode: str, counts: NDArray[np.int64], label_set: LabelSet) -> NDArray[np.float64]:
    """Loss weight per class id (0 for ignored ids and classes without training pixels).

    Args:
        mode: ``"none"`` (1 each), ``"inverse"`` (``total / (present * count)``: every class
            present weighs the same in total), ``"median-freq"`` (``median(freq) / freq``,
            SegNet's median frequency balancing) or a weights file: JSON ``{"class name":
            weight}`` or CSV ``name,weight`` lines; classes it does not name weigh 1.
        counts: ``(N,)`` training pixels per class id.
        label_set: The classes.

    Raises:
        ConfigError: a weights file that cannot be read, names an unknown class, gives a
            negative weight, or names a class that has no training pixels.

    Example:
        >>> ls = LabelSet.from_classes("x", [("a", (0, 0, 0)), ("b", (1, 1, 1)), ("c", (2, 2, 2))])
        >>> class_weights("inverse", np.array([30, 10, 0]), ls).tolist()
        [0.6666666666666666, 2.0, 0.0]
    """
    counts = np.asarray(counts, dtype=np.int64)
    trained = np.zeros(len(label_set), dtype=bool)
    trained[list(label_set.trained_ids)] = True
    present = trained & (counts > 0)
    weights = np.zeros(len(label_set), dtype=np.float64)
    if not present.any():
        return weights
    if mode == "none":
        weights[present] = 1.0
    elif mode == "inverse":
        weights[present] = counts[present].sum() / (present.sum() * counts[present])
    elif mode == "median-freq":
        freq = counts[present] / counts[present].sum()
        weights[present] = float(np.median(freq)) / freq
    else:
        weights[present] = 1.0
        for class_id, weight in _read_weights_file(Path(mode), label_set).items():
            if not present[class_id]:
                raise ConfigError(
                    f"class weights file {mode} gives a weight to {label_set.names[class_id]!r}, "
                    "which has no training pixels"
                    + (" (it is ignored)" if not trained[class_id] else "")
                )
            weights[class_id] = weight
    return weights


def _read_weights_file(path: Path, label_set: LabelSet) -> dict[int, float]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"class weights {str(path)!r}: no such file (expected {', '.join(CLASS_WEIGHT_MODES)} "
            "or a JSON/CSV weights file)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"class weights file {path}: cannot read it ({exc})") from None
    entries: list[tuple[str, object, str]] = []
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"class weights file {path}: not valid JSON ({exc.msg} at line {exc.lineno})"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f'class weights file {path}: expected {{"class name": weight}}')
        entries = [(str(k), v, f"key {k!r}") for k, v in data.items()]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            cells = [c.strip() for c in line.split(",")]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if len(cells) != 2:
                raise ConfigError(f"class weights file {path}, line {number}: expected name,weight")
            if number == 1 and cells == ["name", "weight"]:
                continue
            entries.append((cells[0], cells[1], f"line {number}"))
    lower = [n.lower() for n in label_set.names]
    out: dict[int, float] = {}
    for name, raw, where in entries:
        if name.lower() not in lower:
            raise ConfigError(
                f"class weights file {path}, {where}: no class {name!r} in {label_set.describe()}"
            )
        weight = math.nan
        if isinstance(raw, (int, float, str)) and not isinstance(raw, bool):
            with contextlib.suppress(ValueError):
                weight = float(raw)
        if not math.isfinite(weight) or weight < 0:
            raise ConfigError(
                f"class weights file {path}, {where}: weight must be a number >= 0 (got {raw!r})"
            )
        out[lower.index(name.lower())] = weight
    return out


def count_classes(labels: LabelMap, label_set: LabelSet) -> NDArray[np.int64]:
    """Pixels per class id of ``label_set`` (0 for ignored ids; 255 is not counted).

    Example:
        >>> count_classes(np.array([[0, 30, 30, 255]], np.uint8), LabelSet.camvid32())[[0, 30]]
        array([1, 0])
    """
    counts = np.bincount(labels.reshape(-1), minlength=256)[: len(label_set)].astype(np.int64)
    counts[list(label_set.ignore_ids)] = 0
    return counts


def ignored_mask(labels: LabelMap, label_set: LabelSet) -> NDArray[np.bool_]:
    """Pixels that count nowhere: ignored ids and 255."""
    table = np.zeros(256, dtype=bool)
    table[list(label_set.ignore_ids)] = True
    table[UNLABELLED] = True
    mask: NDArray[np.bool_] = table[labels]
    return mask


def read_sample(sample: Sample, options: DataOptions) -> tuple[ImageArray, LabelMap]:
    """The image and its labels (ids of the label set, full size), checked to match in size.

    Raises:
        InvalidImageError: unreadable file, or image and labels of different sizes.
        UnknownColorError: unknown colours in an RGB label (with ``unknown="error"``).
        InvalidLabelError: ids outside the label set.
        ConfigError: the label file holds another label set's ids.
    """
    from camvidseg.imageio import open_image

    labels = read_labels(sample.labels, options)
    image = open_image(sample.image).array
    if image.shape[:2] != labels.shape:
        raise InvalidImageError(
            f"{sample.image}: size {image.shape[1]}x{image.shape[0]} does not match its labels "
            f"{sample.labels} ({labels.shape[1]}x{labels.shape[0]})"
        )
    return image, labels
