"""Array aliases and small protocols shared across the package.

Only numpy-level names live here so every layer can import them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, TypeAlias, Union

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from PIL import Image

#: An RGB image, shape ``(H, W, 3)``, dtype ``uint8``.
ImageArray: TypeAlias = NDArray[np.uint8]
#: A label map, shape ``(H, W)``, dtype ``uint8``: class ids of a palette, or :data:`UNLABELLED`.
LabelMap: TypeAlias = NDArray[np.uint8]
#: Per-pixel probabilities, shape ``(..., H, W, C)``, dtype ``float32``.
Scores: TypeAlias = NDArray[np.float32]
#: Per-pixel confidence in ``[0, 1]``, shape ``(H, W)``, dtype ``float32``.
ConfidenceMap: TypeAlias = NDArray[np.float32]
#: Colour table, shape ``(N, 3)``, dtype ``uint8``.
ColorTable: TypeAlias = NDArray[np.uint8]
#: A model as the tiling and TTA functions see it: images in, one ``(h, w, C)`` float32 scores
#: array per image out, each at its image's size (see :func:`camvidseg.tiling.predict_tiled`).
BatchPredict: TypeAlias = Callable[[Sequence[ImageArray]], Sequence[Scores]]
#: Resizes an ``(H, W, 3)`` image to ``(height, width)``, e.g.
#: :func:`camvidseg.imageio.resize_image` (Pillow, bilinear), the one the Segmenter uses.
ImageResize: TypeAlias = Callable[[ImageArray, tuple[int, int]], ImageArray]
#: Anything :func:`camvidseg.imageio.load_image` accepts.
ImageLike: TypeAlias = Union["Image.Image", NDArray[np.uint8], str, "os.PathLike[str]"]

#: Label id given to pixels whose confidence is below a threshold (drawn black, ignored by metrics).
UNLABELLED: int = 255
