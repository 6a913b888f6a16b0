"""Test-time augmentation settings: horizontal flips and input scales whose scores are averaged.

The :class:`~camvidseg.Segmenter` runs the model once per *view* (a scale, flipped or not),
undoes the view on the scores (flip back, bilinear resize to the un-augmented size with
:func:`camvidseg.postprocess.resize_scores`), averages the class probabilities over the views and
only then takes the argmax. Scales are relative to the size the model would otherwise see (after
``max_side``, or the tile).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from camvidseg import validators
from camvidseg.exceptions import ConfigError

__all__ = ["MAX_SCALE", "TTAConfig"]

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
