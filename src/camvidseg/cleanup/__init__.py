"""Pure-numpy morphological cleanup of label maps: opening, closing, majority, small regions.

Every operation treats all classes in one pass over the image (no loop over classes): per-class
binary morphology runs on one-hot bit-packed masks (one bit per class present, so a whole
structuring-element reduction is a handful of bitwise ``and``/``or`` over shifted arrays), and
connected components are found on row runs with a vectorised union-find.

Conventions shared by the fast code here, the slow references in the tests and the
``scipy.ndimage`` comparisons:

* **Structuring elements** (:func:`structuring_element`) are symmetric: ``square`` (all of the
  ``(2r+1) x (2r+1)`` box), ``cross`` (the centre row and column) and ``disk``
  (``dy**2 + dx**2 <= r**2``).
* **Border**: erosion treats pixels outside the image as belonging to *every* class, dilation as
  belonging to *none*; so opening only removes and closing only adds pixels, and a region is not
  eaten just because it touches the image border. In ``scipy.ndimage`` terms, per class:
  ``binary_erosion(..., border_value=1)`` and ``binary_dilation(..., border_value=0)``.
* **Connectivity** is 4 (edge neighbours) or 8 (edge and corner neighbours). The *boundary* of a
  region is the set of pixels outside it that are neighbours of one of its pixels, under the same
  connectivity; each boundary pixel votes once with its label, and the majority wins, ties going
  to the smallest id.
* The unlabelled id (255) is an ordinary label here; pass ``classes`` to leave it alone.

The package's modules (after scikit-image's ``morphology``):
:mod:`~camvidseg.cleanup.footprints` (structuring elements), :mod:`~camvidseg.cleanup.morphology`
(opening, closing, majority filter), :mod:`~camvidseg.cleanup.regions` (connected regions) and
:mod:`~camvidseg.cleanup.config` (:class:`CleanupConfig`). Import public names from
``camvidseg.cleanup``.

Example:
    >>> import numpy as np
    >>> labels = np.array([[1, 1, 1, 1],
    ...                    [1, 7, 1, 1],
    ...                    [1, 1, 1, 2],
    ...                    [1, 1, 2, 2]], np.uint8)
    >>> remove_small_regions(labels, 2).tolist()
    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 2], [1, 1, 2, 2]]
    >>> CleanupConfig(min_region=2, majority=3).apply(labels).tolist()
    [[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 2], [1, 1, 2, 2]]
"""

from __future__ import annotations

from camvidseg.cleanup.config import CleanupConfig
from camvidseg.cleanup.footprints import SHAPES, Shape, structuring_element
from camvidseg.cleanup.morphology import closing, majority_filter, opening
from camvidseg.cleanup.regions import fill_regions, label_regions, remove_small_regions

__all__ = [
    "SHAPES",
    "CleanupConfig",
    "Shape",
    "closing",
    "fill_regions",
    "label_regions",
    "majority_filter",
    "opening",
    "remove_small_regions",
    "structuring_element",
]
