"""A cleanup pipeline as one settings value: :class:`CleanupConfig`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import attrs
import numpy as np

from camvidseg import validators
from camvidseg._types import LabelMap
from camvidseg.cleanup.checks import check_labels, class_table, copy_labels
from camvidseg.cleanup.footprints import SHAPES, Shape
from camvidseg.cleanup.morphology import closing, majority_filter, opening
from camvidseg.cleanup.regions import remove_small_regions
from camvidseg.exceptions import ConfigError

__all__ = ["CleanupConfig"]

# -- a cleanup pipeline ----------------------------------------------------------------------------


def _to_classes(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ConfigError(f"classes must be a list of label ids or null (got {value!r})")
    items = list(value)
    if not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) for c in items):
        raise ConfigError(f"classes must be integers (got {items!r})")
    ids = tuple(sorted({int(c) for c in items}))
    class_table(ids)
    return ids


@attrs.frozen
class CleanupConfig:
    """A label-map cleanup pipeline; every step is off by default.

    Steps run in this order: :func:`opening`, :func:`closing` (radius, ``shape``; removed
    pixels take the surrounding majority), :func:`remove_small_regions` (``min_region``,
    ``connectivity``), :func:`majority_filter` (window ``majority``). ``classes`` limits the
    first three steps to those ids; the majority filter applies to all.

    Attributes:
        opening: Opening radius, 0 = off.
        closing: Closing radius, 0 = off.
        shape: Structuring element for opening and closing.
        min_region: Regions smaller than this many pixels are reassigned, 0 = off.
        connectivity: 4 or 8, for regions.
        majority: Odd majority-filter window, 0 = off.
        classes: Class ids the morphology and region removal may change (``None``: all).

    Example:
        >>> config = CleanupConfig.from_dict({"min_region": 50, "majority": 3})
        >>> config.to_dict()["min_region"], config.enabled
        (50, True)
        >>> CleanupConfig.from_dict(config.to_dict()) == config
        True
    """

    opening: int = attrs.field(default=0, validator=validators.int_range(0))
    closing: int = attrs.field(default=0, validator=validators.int_range(0))
    shape: Shape = attrs.field(default="square", validator=validators.in_(SHAPES))
    min_region: int = attrs.field(default=0, validator=validators.int_range(0))
    connectivity: int = attrs.field(default=8, validator=validators.in_((4, 8)))
    majority: int = attrs.field(default=0, validator=validators.odd_or_zero())
    classes: tuple[int, ...] | None = attrs.field(default=None, converter=_to_classes)

    @property
    def enabled(self) -> bool:
        """Whether any step would run."""
        return bool(self.opening or self.closing or self.min_region > 1 or self.majority > 1)

    def apply(self, labels: LabelMap) -> LabelMap:
        """Run the pipeline on an ``(H, W)`` uint8 label map; returns a new array."""
        out = copy_labels(check_labels(labels))
        if self.opening:
            out = opening(
                out,
                self.opening,
                shape=self.shape,
                classes=self.classes,
                connectivity=self.connectivity,
            )
        if self.closing:
            out = closing(out, self.closing, shape=self.shape, classes=self.classes)
        if self.min_region > 1:
            out = remove_small_regions(
                out, self.min_region, connectivity=self.connectivity, classes=self.classes
            )
        if self.majority > 1:
            out = majority_filter(out, self.majority)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``classes`` as a list or ``None``)."""
        data = attrs.asdict(self)
        data["classes"] = None if self.classes is None else list(self.classes)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CleanupConfig:
        """Build from :meth:`to_dict` output; unknown keys are a :class:`ConfigError`."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a cleanup config must be a mapping (got {type(data).__name__})")
        known = [field.name for field in attrs.fields(cls)]
        validators.check_keys(data, known, noun="cleanup option(s)")
        return cls(**{key: cast(Any, value) for key, value in data.items()})
