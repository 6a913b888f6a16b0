"""Where to write class names on large regions of a segmentation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg._types import UNLABELLED
from camvidseg.cleanup import label_regions
from camvidseg.segmenter import Segmentation
from camvidseg.visualize._text import Box, Text

__all__ = ["RegionLabel", "draw_region_labels", "region_labels"]

#: Label maps are analysed for region labels on a grid with at most this many cells per side.
_REGION_GRID = 256
_WHITE = (255, 255, 255)


@attrs.frozen
class RegionLabel:
    """Where a class name is written on a large region.

    Attributes:
        class_id: Id of the region's class.
        name: Its name.
        xy: ``(x, y)`` anchor in image pixel coordinates (a pixel of the region, well inside it
            and near its centroid).
        area: The region's (connected component's) fraction of the image.
    """

    class_id: int
    name: str
    xy: tuple[float, float]
    area: float


def _depth(components: NDArray[np.integer[Any]]) -> NDArray[np.int32]:
    """How many 4-neighbour erosions each pixel survives inside its component (edges: 1)."""
    inner = np.zeros(components.shape, dtype=bool)
    inner[1:-1, 1:-1] = True
    inner[1:, :] &= components[1:, :] == components[:-1, :]
    inner[:-1, :] &= components[:-1, :] == components[1:, :]
    inner[:, 1:] &= components[:, 1:] == components[:, :-1]
    inner[:, :-1] &= components[:, :-1] == components[:, 1:]
    depth = np.zeros(components.shape, dtype=np.int32)
    alive = np.ones(components.shape, dtype=bool)
    while alive.any():
        depth += alive
        survivors = alive & inner
        survivors[1:-1, 1:-1] &= (
            alive[:-2, 1:-1] & alive[2:, 1:-1] & alive[1:-1, :-2] & alive[1:-1, 2:]
        )
        alive = survivors
    return depth


def region_labels(segmentation: Segmentation, min_area: float = 0.02) -> tuple[RegionLabel, ...]:
    """Large connected regions and where to write their class names, largest first.

    Regions are 4-connected areas of one class (unlabelled pixels excluded), found on a grid of
    at most 256 cells per side. Each anchor is a pixel of its region near the region's centroid
    but at least half as deep inside it as the region's deepest point, so names sit inside
    L-shaped or ring-shaped regions too.

    Args:
        segmentation: The result to label.
        min_area: Smallest region, as a fraction of the image, that gets a label.

    Returns:
        One :class:`RegionLabel` per region of at least ``min_area``.

    Example:
        >>> from camvidseg import Segmentation
        >>> labels = np.full((4, 8), 21, np.uint8); labels[2:, :] = 17  # sky above road
        >>> seg = Segmentation(labels, np.ones((4, 8), np.float32))
        >>> [(r.name, r.xy, r.area) for r in region_labels(seg)]
        [('Road', (3.5, 2.5), 0.5), ('Sky', (3.5, 0.5), 0.5)]
    """
    labels = segmentation.labels
    height, width = labels.shape
    step = max(1, math.ceil(max(height, width) / _REGION_GRID))
    offset = step // 2
    grid = labels[offset::step, offset::step]
    components = label_regions(grid, 4)[0] - 1  # 4-connected, ids 0..K-1
    depth = _depth(components)
    count = int(components.max()) + 1
    sizes = np.bincount(components.reshape(-1), minlength=count)
    rows: NDArray[np.intp] = np.indices(grid.shape)[0]
    cols: NDArray[np.intp] = np.indices(grid.shape)[1]
    found: list[RegionLabel] = []
    for component in np.flatnonzero(sizes / grid.size >= min_area):
        inside = components == component
        class_id = int(grid[inside][0])
        if class_id == UNLABELLED:
            continue
        deep = inside & (depth >= max(1, int(depth[inside].max()) / 2))
        centre_r, centre_c = rows[inside].mean(), cols[inside].mean()
        candidates_r, candidates_c = rows[deep], cols[deep]
        best = int(np.argmin((candidates_r - centre_r) ** 2 + (candidates_c - centre_c) ** 2))
        r, c = int(candidates_r[best]), int(candidates_c[best])
        found.append(
            RegionLabel(
                class_id=class_id,
                name=segmentation.palette.name_of(class_id),
                xy=(c * step + offset + 0.5, r * step + offset + 0.5),
                area=float(sizes[component] / grid.size),
            )
        )
    found.sort(key=lambda region: (-region.area, region.class_id, region.xy))
    return tuple(found)


def draw_region_labels(
    tile: Image.Image, regions: Sequence[RegionLabel], scale: int, font_size: int
) -> None:
    text = Text(font_size)
    stroke = max(1, font_size // 10)
    taken: list[Box] = []
    margin = stroke + 1
    for region in regions:
        width = text.width(region.name, stroke)
        height = text.line_height + 2 * stroke
        if width > tile.width or height > tile.height:
            continue
        x = round(region.xy[0] * scale - width / 2)
        y = round(region.xy[1] * scale - height / 2)
        x = min(max(0, x), tile.width - width)
        y = min(max(0, y), tile.height - height)
        box = (x - margin, y - margin, x + width + margin, y + height + margin)
        if any(_overlaps(box, other) for other in taken):
            continue
        taken.append(box)
        text.draw(tile, (x + stroke, y + stroke), region.name, _WHITE, stroke, (0, 0, 0))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
