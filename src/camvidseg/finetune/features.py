"""Backbone features computed once per image (and its mirror image), kept as float16 on disk.

The real backbone takes seconds per frame on a CPU, so features are computed once and every
epoch reads random crops of them. Each view is one ``.npy`` file read through a memory map that
is closed after each crop: memory holds a batch of crops, never the whole set, whatever the
number of images. Files are named by a digest of the image's bytes, the backbone and
``max_side``, so a cache folder can be shared by several runs and a re-run only computes what is
missing. Every file is written under a temporary name and moved into place.

An image of model size ``(h, w)`` is padded (edge pixels repeated, as the Segmenter pads) to
``(Hp, Wp)``, multiples of :data:`~camvidseg.backends.head.FEATURE_STRIDE`; its features are
``(Hp/4, Wp/4, F)``, and the cell ``(i, j)`` covers pixels ``[4i, 4i+4) x [4j, 4j+4)``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED, ImageArray, LabelMap
from camvidseg.backends.base import FeatureBackend
from camvidseg.backends.head import FEATURE_STRIDE
from camvidseg.exceptions import BackendError
from camvidseg.finetune.data import DataOptions, Sample, model_size, resize_image, resize_labels
from camvidseg.imageio import atomic_write, open_image

__all__ = [
    "FeatureStats",
    "FeatureStore",
    "Prepared",
    "model_input",
    "read_crop",
]

log = logging.getLogger("camvidseg")


def model_input(image: ImageArray) -> tuple[NDArray[np.float32], tuple[int, int]]:
    """``image`` as a float32 ``[1, Hp, Wp, 3]`` batch in ``[0, 1]``, edge-padded to multiples of
    the feature stride (exactly what the Segmenter gives a head backend), and ``(Hp, Wp)``."""
    array = image.astype(np.float32) / np.float32(255.0)
    pad_h, pad_w = -array.shape[0] % FEATURE_STRIDE, -array.shape[1] % FEATURE_STRIDE
    if pad_h or pad_w:
        array = np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return array[None], (int(array.shape[0]), int(array.shape[1]))


@attrs.frozen
class Prepared:
    """One labelled image whose features are on disk.

    Attributes:
        sample: The image and label files.
        size: ``(h, w)`` the model sees (after ``max_side``), before padding.
        padded: ``(Hp, Wp)``, multiples of the feature stride.
        features: One ``(Hp/4, Wp/4, F)`` float16 file per view (as is, then mirrored).
        labels: uint8 label ids of the label set: ``size`` for training, the image's own size
            for validation (scored at full resolution, like ``evaluate``).
    """

    sample: Sample
    size: tuple[int, int]
    padded: tuple[int, int]
    features: tuple[Path, ...]
    labels: Path


@attrs.define
class FeatureStats:
    """Running per-channel sums of features, for the head's standardisation."""

    total: NDArray[np.float64] | None = None
    squares: NDArray[np.float64] | None = None
    count: int = 0

    def add(self, features: NDArray[np.float16]) -> None:
        flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
        if self.total is None or self.squares is None:
            self.total = np.zeros(flat.shape[1])
            self.squares = np.zeros(flat.shape[1])
        self.total += flat.sum(axis=0)
        self.squares += np.einsum("ij,ij->j", flat, flat)
        self.count += flat.shape[0]

    def mean_and_scale(self) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """``(mean, 1 / std)`` per channel; near-constant channels are not blown up."""
        if self.total is None or self.squares is None or not self.count:
            raise BackendError("no training features to standardise")
        mean = self.total / self.count
        var = np.maximum(self.squares / self.count - mean * mean, 0.0)
        floor = 1e-4 * float(var.mean()) + 1e-12
        scale = 1.0 / np.sqrt(var + floor)
        return mean.astype(np.float32), scale.astype(np.float32)


def _digest(*parts: bytes | str) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(part.encode() if isinstance(part, str) else part)
        hasher.update(b"\0")
    return hasher.hexdigest()[:32]


def _save(path: Path, array: NDArray[np.generic]) -> None:
    with atomic_write(path) as handle:
        np.save(handle, array, allow_pickle=False)


class FeatureStore:
    """Features and labels of prepared images in one folder.

    Args:
        folder: Where the files go (created).
        backbone: Computes missing features.
        fingerprint: The backbone's fingerprint (part of every feature file's name).
        options: How labels are read and images sized.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        backbone: FeatureBackend,
        fingerprint: str,
        options: DataOptions,
    ) -> None:
        self.folder = Path(folder)
        self.backbone = backbone
        self.fingerprint = fingerprint
        self.options = options
        self.feature_dim: int | None = None
        self.computed = 0
        self.reused = 0

    def _feature_path(self, image_digest: str, view: int) -> Path:
        key = _digest(image_digest, self.fingerprint, str(self.options.max_side))
        return self.folder / "features" / f"{key}-{view}.npy"

    def labels_path(self, sample: Sample, role: str) -> Path:
        """Where the prepared labels of ``sample`` go (``role``: ``"train"`` or ``"val"``)."""
        options = repr((self.options.to_dict(), self.options.label_set.to_dict(), role))
        return self.folder / "labels" / f"{_digest(str(sample.labels.resolve()), options)}.npy"

    def store_labels(
        self, sample: Sample, labels: LabelMap, role: str
    ) -> tuple[Path, tuple[int, int], LabelMap]:
        """Write the labels of ``sample`` as used in ``role``; returns the path, the model size
        and the stored labels (model size for training, full size for validation)."""
        size = model_size(labels.shape[0], labels.shape[1], self.options.max_side)
        stored = resize_labels(labels, size) if role == "train" else labels
        path = self.labels_path(sample, role)
        _save(path, np.ascontiguousarray(stored))
        return path, size, stored

    def prepare(
        self,
        sample: Sample,
        labels_path: Path,
        size: tuple[int, int],
        views: int,
        stats: FeatureStats | None = None,
    ) -> Prepared:
        """Compute (or find) the features of ``views`` views of ``sample``'s image.

        ``stats`` accumulates the as-is view's features (for the head's standardisation).

        Raises:
            InvalidImageError: the image cannot be read.
            BackendError: the backbone fails or returns features of an unexpected shape.
        """
        image_digest = _digest(sample.image.read_bytes())
        paths = tuple(self._feature_path(image_digest, view) for view in range(views))
        padded = (-(-size[0] // FEATURE_STRIDE) * FEATURE_STRIDE,
                  -(-size[1] // FEATURE_STRIDE) * FEATURE_STRIDE)  # fmt: skip
        cells = (padded[0] // FEATURE_STRIDE, padded[1] // FEATURE_STRIDE)
        missing = [v for v, p in enumerate(paths) if not self._valid(p, cells)]
        image = None
        if missing:
            image = resize_image(open_image(sample.image).array, size)
        for view, path in enumerate(paths):
            if view in missing:
                assert image is not None
                features = self.compute(image[:, ::-1] if view else image)
                _save(path, features)
                self.computed += 1
            else:
                self.reused += 1
            if view == 0 and stats is not None:
                stats.add(np.load(path, mmap_mode="r"))
        return Prepared(sample, size, padded, paths, labels_path)

    def _valid(self, path: Path, cells: tuple[int, int]) -> bool:
        """Whether ``path`` holds features of the expected shape (a damaged file is redone)."""
        if not path.is_file():
            return False
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError, EOFError):
            return False
        ok = array.dtype == np.float16 and array.ndim == 3 and array.shape[:2] == cells
        if ok and self.feature_dim is None:
            self.feature_dim = int(array.shape[2])
        return bool(ok and array.shape[2] == self.feature_dim)

    def compute(self, image: ImageArray) -> NDArray[np.float16]:
        """Float16 features ``(Hp/4, Wp/4, F)`` of a model-size image.

        Raises:
            BackendError: the backbone's features do not have the expected shape.
        """
        batch, padded = model_input(image)
        features: NDArray[np.float32] = np.asarray(self.backbone.get_features(batch))
        cells = (padded[0] // FEATURE_STRIDE, padded[1] // FEATURE_STRIDE)
        if features.ndim != 4 or features.shape[:3] != (1, *cells):
            raise BackendError(
                f"{self.backbone.name}: get_features returned shape {features.shape} for an "
                f"input of shape {batch.shape}; expected [1, {cells[0]}, {cells[1]}, F]"
            )
        depth = int(features.shape[3])
        if self.feature_dim is None:
            self.feature_dim = depth
        elif depth != self.feature_dim:
            raise BackendError(
                f"{self.backbone.name}: {depth} feature channels now, {self.feature_dim} before"
            )
        half: NDArray[np.float16] = features[0].astype(np.float16)
        return half


def read_crop(path: Path, top: int, left: int, cells: tuple[int, int]) -> NDArray[np.float16]:
    """``cells = (rows, cols)`` feature cells of a view file from cell ``(top, left)`` (a copy;
    the memory map is closed before returning)."""
    mapped = np.load(path, mmap_mode="r")
    crop: NDArray[np.float16] = np.array(mapped[top : top + cells[0], left : left + cells[1]])
    del mapped
    return crop


def label_crop(
    labels: LabelMap, top: int, left: int, size: tuple[int, int], flip: bool
) -> LabelMap:
    """Pixels ``size`` of (mirrored, if ``flip``) ``labels`` from ``(top, left)``, 255 where
    the crop passes the labels' edge (the padding)."""
    view = labels[:, ::-1] if flip else labels
    out = np.full(size, UNLABELLED, dtype=np.uint8)
    part = view[top : top + size[0], left : left + size[1]]
    out[: part.shape[0], : part.shape[1]] = part
    return out


def stack(arrays: Sequence[NDArray[np.generic]]) -> NDArray[np.generic]:
    """``np.stack``, typed."""
    return np.stack(list(arrays))
