"""Test-time augmentation: horizontal flips and input scales whose scores are averaged.

:func:`predict_with_tta` runs a ``predict`` callback once per *view* of the images (a scale,
flipped or not), undoes the view on the scores (flip back, bilinear resize to the image's size
with :func:`camvidseg.postprocess.resize_scores`) and averages the class probabilities over the
views; the :class:`~camvidseg.Segmenter` then takes the argmax. Scales are relative to the size
the model would otherwise see (after ``max_side``, or the tile). :class:`TTAConfig` says which
views.

Example:
    >>> def predict(images):  # a pixel-local "model": the red channel as one score
    ...     return [image[..., :1].astype(np.float32) for image in images]
    >>> image = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)
    >>> predict_with_tta([image], predict, TTAConfig(flip=True))[0][..., 0].tolist()
    [[0.0, 3.0]]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from camvidseg import validators
from camvidseg._types import BatchPredict, ImageArray, ImageResize, Scores
from camvidseg.exceptions import BackendError, ConfigError
from camvidseg.postprocess import resize_scores

__all__ = ["MAX_SCALE", "TTAConfig", "predict_with_tta", "view_size"]

#: Largest accepted scale (the model's memory grows with its square).
MAX_SCALE = 4.0
_SCALE = validators.in_range(0.0, MAX_SCALE, low_open=True)


def _to_scales(value: object) -> tuple[float, ...]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"scales must be a list of numbers (got {value!r})")
    items = list(value)
    if not items:
        raise ConfigError("scales must not be empty")
    for item in items:
        _SCALE.check(item, "every scale")
    scales = [float(item) for item in items]
    if len(set(scales)) != len(scales):
        raise ConfigError(f"scales must be distinct (got {scales})")
    return tuple(scales)


@attrs.frozen
class TTAConfig:
    """Which augmented views to average.

    Attributes:
        flip: Also run every scale on the horizontally flipped image.
        scales: Input scales relative to the normal model input (1.0 = unchanged).

    Example:
        >>> tta = TTAConfig(flip=True, scales=(0.75, 1.0, 1.25))
        >>> tta.views()
        ((0.75, False), (0.75, True), (1.0, False), (1.0, True), (1.25, False), (1.25, True))
        >>> TTAConfig.from_dict(tta.to_dict()) == tta, TTAConfig().is_identity
        (True, True)
    """

    flip: bool = attrs.field(default=False, validator=validators.instance_of(bool, "true or false"))
    scales: tuple[float, ...] = attrs.field(default=(1.0,), converter=_to_scales)

    def views(self) -> tuple[tuple[float, bool], ...]:
        """``(scale, flipped)`` of every model run, in the order they are averaged."""
        flips = (False, True) if self.flip else (False,)
        return tuple((scale, flipped) for scale in self.scales for flipped in flips)

    @property
    def is_identity(self) -> bool:
        """True when the only view is the unchanged image."""
        return self.views() == ((1.0, False),)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"flip": bool, "scales": [float, ...]}``."""
        return {"flip": self.flip, "scales": list(self.scales)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TTAConfig:
        """Build from :meth:`to_dict` output; unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a TTA config must be a mapping (got {type(data).__name__})")
        validators.check_keys(data, ("flip", "scales"), noun="TTA option(s)")
        return cls(**dict(data))


def view_size(
    shape: tuple[int, ...], scale: float = 1.0, max_side: int | None = None
) -> tuple[int, int]:
    """``(height, width)`` a model sees for an image of ``shape``: its longer side limited to
    ``max_side``, then times ``scale`` (one combined factor, rounded, at least 1 pixel).

    Example:
        >>> view_size((40, 60), 0.5, max_side=30), view_size((40, 60)), view_size((3, 5), 0.1)
        ((10, 15), (40, 60), (1, 1))
    """
    height, width = int(shape[0]), int(shape[1])
    factor = scale
    if max_side is not None and max(height, width) > max_side:
        factor = max_side / max(height, width) * scale
    if factor == 1.0:
        return height, width
    return max(1, round(height * factor)), max(1, round(width * factor))


def predict_with_tta(
    images: Sequence[ImageArray],
    predict: BatchPredict,
    config: TTAConfig | None,
    *,
    max_side: int | None = None,
    resize: ImageResize | None = None,
) -> list[Scores]:
    """Scores of each image at its own size, averaged over the views of ``config``.

    For every view in :meth:`TTAConfig.views` order, each image is flipped (if the view says
    so), then resized to :func:`view_size` (``max_side``, then the view's scale) and all of them
    go to ``predict`` in one call; the scores are flipped back, resized to the image's size
    (:func:`~camvidseg.postprocess.resize_scores`) and folded into a running mean, which is
    exact when all views agree. ``config=None`` is one unchanged view.

    Args:
        images: ``(H, W, 3)`` uint8 images (sizes may differ).
        predict: The model: a sequence of images in, one ``(h, w, C)`` float32 array per image
            at that image's size out (see :data:`camvidseg._types.BatchPredict`).
        config: The views to average (``None``: no augmentation).
        max_side: Limit of the longer side the model sees, before the scales.
        resize: Resizes an image to ``(height, width)``; needed only when a view changes the
            size (a scale other than 1, or ``max_side``).

    Returns:
        One ``(H, W, C)`` float32 array per image.

    Raises:
        ConfigError: when a view needs a resize and ``resize`` is ``None``.
        BackendError: when ``predict`` returns the wrong number of arrays or wrong sizes.
    """
    views = ((1.0, False),) if config is None else config.views()
    means: list[Scores] = []
    for count, (scale, flip) in enumerate(views, start=1):
        inputs = []
        for image in images:
            view = image[:, ::-1] if flip else image
            size = view_size(image.shape, scale, max_side)
            if size != view.shape[:2]:
                if resize is None:
                    raise ConfigError(
                        f"TTA view (scale {scale}, max_side {max_side}) resizes a "
                        f"{image.shape[0]}x{image.shape[1]} image; pass resize="
                    )
                view = resize(view, size)
            inputs.append(view)
        outputs = predict(inputs)
        if len(outputs) != len(inputs):
            raise BackendError(
                f"predict returned {len(outputs)} score arrays for {len(inputs)} images"
            )
        for i, (view, scores) in enumerate(zip(inputs, outputs, strict=True)):
            if scores.ndim != 3 or scores.shape[:2] != view.shape[:2]:
                raise BackendError(
                    f"predict must return (h, w, C) scores at the image's size {view.shape[:2]} "
                    f"(got shape {scores.shape})"
                )
            if flip:
                scores = scores[:, ::-1]
            scores = resize_scores(scores, (images[i].shape[0], images[i].shape[1]))
            if count == 1:
                means.append(scores)
            else:
                means[i] = means[i] + (scores - means[i]) * np.float32(1.0 / count)
    return means
