"""Fakes and builders for tests — ours and yours.

* :class:`NearestColorBackend`: a numpy model whose answer is the nearest CamVid colour per pixel.
* :class:`SpeckleNoiseBackend`: a model with known noise (deterministic speckles), for tuning.
* :func:`write_fake_savedmodel`: writes a SavedModel with HRNet's ``predict``/``get_features``
  signatures computing the same thing in TensorFlow, so the real ``tensorflow_hub.load`` path runs
  without the real weights (needs the ``tf`` extra).
* :func:`street_scene`: a synthetic street image painted in CamVid colours together with its exact
  label map: the fakes segment it perfectly, which makes exact assertions possible.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from camvidseg._types import ImageArray, LabelMap
from camvidseg.backends.fake import (
    DEFAULT_BACKGROUND_LOGIT,
    DEFAULT_TEMPERATURE,
    NearestColorBackend,
    SpeckleNoiseBackend,
    nearest_color_logits,
)
from camvidseg.palette import CamVidPalette

__all__ = [
    "NearestColorBackend",
    "SpeckleNoiseBackend",
    "nearest_color_logits",
    "street_scene",
    "write_fake_savedmodel",
]

_VOID_ID = 30
#: Largest per-channel noise that can never move a pixel to another class's colour.
SAFE_NOISE = 8


def write_fake_savedmodel(
    path: str | os.PathLike[str],
    *,
    channels: int = 33,
    temperature: float = DEFAULT_TEMPERATURE,
    background_logit: float = DEFAULT_BACKGROUND_LOGIT,
    feature_dim: int = 720,
    feature_seed: int = 0,
) -> Path:
    """Write a SavedModel that behaves like :class:`NearestColorBackend` with HRNet's signatures.

    ``predict(images)``: float32 ``[B, H, W, 3]`` in ``[0, 1]`` -> ``[B, H, W, channels]``
    probabilities; ``get_features(images)`` -> ``[B, ceil(H/4), ceil(W/4), feature_dim]``.

    Args:
        path: Folder to create (must not exist or be empty).
        channels: 33 (background channel 0) or 32 (Void in channel 0).
        feature_dim: Channels of ``get_features``.
        feature_seed: Seed of the fixed projection of ``get_features``: another seed is
            another backbone (with the default 0 the features are
            :meth:`NearestColorBackend.get_features`'s).

    Returns:
        The folder, loadable with ``tensorflow_hub.load`` or ``Segmenter.from_hub``.
    """
    import tensorflow as tf

    if channels not in (32, 33):
        raise ValueError(f"channels must be 32 or 33 (got {channels})")
    colors = CamVidPalette.camvid32().colors.astype(np.float32)
    order = [_VOID_ID, *(i for i in range(32) if i != _VOID_ID)]
    projection = (
        np.random.default_rng(feature_seed).standard_normal((3, feature_dim)).astype(np.float32)
    )
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    class FakeHRNet(tf.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.colors = tf.constant(colors)
            self.projection = tf.constant(projection)

        @tf.function(input_signature=[spec])  # type: ignore[untyped-decorator]
        def predict(self, images: tf.Tensor) -> tf.Tensor:
            pixels = tf.round(images * 255.0)
            dist = (
                tf.reduce_sum(pixels * pixels, axis=-1, keepdims=True)
                - 2.0 * tf.einsum("bhwc,kc->bhwk", pixels, self.colors)
                + tf.reduce_sum(self.colors * self.colors, axis=-1)
            )
            logits = -dist / temperature
            if channels == 33:
                background = tf.fill(tf.concat([tf.shape(logits)[:-1], [1]], 0), background_logit)
                logits = tf.concat([background, logits], axis=-1)
            else:
                logits = tf.gather(logits, order, axis=-1)
            return tf.nn.softmax(logits, axis=-1)

        @tf.function(input_signature=[spec])  # type: ignore[untyped-decorator]
        def get_features(self, images: tf.Tensor) -> tf.Tensor:
            pooled = tf.nn.avg_pool2d(images, ksize=4, strides=4, padding="SAME")
            return tf.einsum("bhwc,cf->bhwf", pooled, self.projection)

    path = Path(path)
    module = FakeHRNet()
    tf.saved_model.save(module, str(path))
    return path


def _shade(rng: np.random.Generator, noise: int, shape: tuple[int, int, int]) -> NDArray[np.int16]:
    return rng.integers(-noise, noise + 1, size=shape, dtype=np.int16)


def street_scene(
    height: int = 360, width: int = 480, *, seed: int = 0, noise: int = SAFE_NOISE
) -> tuple[ImageArray, LabelMap]:
    """A synthetic street scene and its exact CamVid-32 label map.

    The scene (sky, buildings, trees, road with lane markings, sidewalks, a car, a pedestrian, a
    pole, a sign, a fence) is painted in CamVid colours plus uniform noise of at most ``noise``
    levels per channel. With ``noise <= 8`` every pixel's nearest palette colour is still its
    class colour, so :class:`NearestColorBackend` returns exactly ``labels``.

    Returns:
        ``(image, labels)``: ``(H, W, 3)`` uint8 and ``(H, W)`` uint8 CamVid-32 ids.

    Example:
        >>> image, labels = street_scene(36, 48, seed=1)
        >>> image.shape, labels.shape, int(labels[0, 0]) == CamVidPalette.camvid32().id_of("Sky")
        ((36, 48, 3), (36, 48), True)
    """
    if height < 4 or width < 4:
        raise ValueError(f"a street scene needs at least 4x4 pixels (got {height}x{width})")
    palette = CamVidPalette.camvid32()
    ids = {name: palette.id_of(name) for name in palette.names}
    rng = np.random.default_rng(seed)
    canvas = Image.new("L", (width, height), ids["Sky"])
    draw = ImageDraw.Draw(canvas)
    horizon = int(height * rng.uniform(0.42, 0.55))
    h, w = height, width

    # Buildings and trees along the horizon.
    x = 0
    while x < w:
        bw = int(w * rng.uniform(0.08, 0.2)) + 1
        top = int(horizon * rng.uniform(0.1, 0.6))
        kind = rng.choice(["Building", "Building", "Building", "Wall", "Tree", "Tree"])
        if kind == "Tree":
            draw.ellipse([x, top, x + bw, horizon + h // 20], fill=ids["Tree"])
        else:
            draw.rectangle([x, top, x + bw, horizon], fill=ids[str(kind)])
        x += bw
    draw.rectangle([0, horizon, w, h], fill=ids["Sidewalk"])
    # Road: a trapezoid narrowing to the vanishing point.
    vx = int(w * rng.uniform(0.4, 0.6))
    left, right = int(w * rng.uniform(-0.1, 0.15)), int(w * rng.uniform(0.85, 1.1))
    draw.polygon(
        [(vx - w // 20, horizon), (vx + w // 20, horizon), (right, h), (left, h)], fill=ids["Road"]
    )
    # Dashed centre line in perspective.
    for k in range(6):
        t0, t1 = (k + 0.2) / 6, (k + 0.6) / 6
        y0, y1 = horizon + (h - horizon) * t0**1.5, horizon + (h - horizon) * t1**1.5
        half0, half1 = (
            max(1, int(w * 0.004 * (1 + 6 * t0**1.5))),
            max(1, int(w * 0.004 * (1 + 6 * t1**1.5))),
        )
        cx0 = vx + (((left + right) / 2) - vx) * t0**1.5
        cx1 = vx + (((left + right) / 2) - vx) * t1**1.5
        draw.polygon(
            [(cx0 - half0, y0), (cx0 + half0, y0), (cx1 + half1, y1), (cx1 - half1, y1)],
            fill=ids["LaneMkgsDriv"],
        )
    # A fence on the left pavement, a pole with a sign, a car and a pedestrian.
    fence_y = horizon + (h - horizon) // 6
    draw.rectangle([0, fence_y - h // 14, max(2, left + w // 10), fence_y], fill=ids["Fence"])
    px = int(w * rng.uniform(0.75, 0.9))
    draw.rectangle(
        [px, int(horizon * 0.5), px + max(1, w // 120), horizon + h // 8], fill=ids["Column_Pole"]
    )
    draw.rectangle(
        [px - w // 40, int(horizon * 0.5), px + w // 40, int(horizon * 0.5) + h // 25],
        fill=ids["SignSymbol"],
    )
    cw, ch = int(w * rng.uniform(0.15, 0.25)), int(h * rng.uniform(0.1, 0.16))
    cx, cy = int(w * rng.uniform(0.2, 0.55)), int(horizon + (h - horizon) * rng.uniform(0.3, 0.6))
    draw.rectangle([cx, cy, cx + cw, cy + ch], fill=ids["Car"])
    draw.rectangle([cx + cw // 5, cy - ch // 2, cx + 4 * cw // 5, cy], fill=ids["Car"])
    draw.ellipse(
        [cx + cw // 8, cy + 3 * ch // 4, cx + cw // 3, cy + ch + ch // 4], fill=ids["Void"]
    )
    draw.ellipse(
        [cx + 2 * cw // 3, cy + 3 * ch // 4, cx + 7 * cw // 8, cy + ch + ch // 4], fill=ids["Void"]
    )
    bx = int(w * rng.uniform(0.05, 0.15))
    by = int(horizon + (h - horizon) * 0.35)
    draw.rectangle([bx, by, bx + max(1, w // 60), by + h // 6], fill=ids["Pedestrian"])
    draw.ellipse([bx - w // 200, by - h // 30, bx + w // 60 + w // 200, by], fill=ids["Pedestrian"])

    labels = np.asarray(canvas, dtype=np.uint8).copy()
    clean = palette.colors[labels].astype(np.int16)
    image = np.clip(clean + _shade(rng, noise, clean.shape), 0, 255).astype(np.uint8)
    return image, labels
