"""Checks of the arguments every cleanup operation takes: the label map, the connectivity,
the classes an operation may change."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import LabelMap
from camvidseg.exceptions import ConfigError, InvalidImageError


def check_labels(labels: object) -> LabelMap:
    if not isinstance(labels, np.ndarray) or labels.dtype != np.uint8 or labels.ndim != 2:
        shape = getattr(labels, "shape", None)
        dtype = getattr(labels, "dtype", type(labels).__name__)
        raise InvalidImageError(f"labels must be an HxW uint8 array (got shape {shape}, {dtype})")
    array: LabelMap = np.ascontiguousarray(labels)
    return array


def copy_labels(labels: LabelMap) -> LabelMap:
    out: LabelMap = labels.copy()
    return out


def check_connectivity(connectivity: int) -> None:
    if connectivity not in (4, 8):
        raise ConfigError(f"connectivity must be 4 or 8 (got {connectivity!r})")


def class_table(classes: Iterable[int] | None) -> NDArray[np.bool_]:
    """``table[label]`` is True for labels the operation may change (all when ``None``)."""
    table = np.ones(256, dtype=bool)
    if classes is None:
        return table
    ids = [int(c) for c in classes]
    bad = [c for c in ids if not 0 <= c <= 255]
    if bad:
        raise ConfigError(f"classes must be label ids in 0..255 (got {bad})")
    table[:] = False
    table[ids] = True
    return table
