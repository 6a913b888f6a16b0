"""What :func:`~camvidseg.tune.tune` searches: the :class:`Objective`, candidate
:class:`Setting` values and the :class:`SearchSpace` (read from a grid file by
:func:`load_grid`)."""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from camvidseg import validators
from camvidseg.cleanup import (
    SHAPES,
    CleanupConfig,
    Shape,
)
from camvidseg.config import SegmentConfig, load_json_file
from camvidseg.exceptions import (
    ConfigError,
)
from camvidseg.metrics import EvaluationResult
from camvidseg.palette import CamVidPalette
from camvidseg.predcache import (
    IDENTITY_VIEW,
    View,
)
from camvidseg.tta import TTAConfig

__all__ = ["Objective", "SearchSpace", "Setting", "canonical_cleanup", "load_grid"]


@attrs.frozen
class Objective:
    """What the search maximises: ``"miou"`` or ``"iou:CLASS"`` (one class's IoU).

    Example:
        >>> objective = Objective.parse("iou:road", CamVidPalette.camvid11())
        >>> str(objective), objective.label
        ('iou:Road', 'IoU Road')
    """

    class_name: str | None = None

    @classmethod
    def parse(cls, text: str, palette: CamVidPalette) -> Objective:
        """Parse ``"miou"`` or ``"iou:NAME"`` (a scored class of ``palette``, any case).

        Raises:
            ConfigError: for anything else, listing the class names.
        """
        spec = text.strip()
        if spec.lower() == "miou":
            return cls()
        kind, _, name = spec.partition(":")
        if kind.lower() != "iou" or not name:
            raise ConfigError(f"objective must be 'miou' or 'iou:CLASS' (got {text!r})")
        scored = [palette.names[i] for i in palette.scored_ids]
        for candidate in scored:
            if candidate.lower() == name.strip().lower():
                return cls(candidate)
        raise ConfigError(
            f"objective {text!r}: {name!r} is not a scored class of {palette.name} "
            f"(expected one of {', '.join(scored)})"
        )

    def score(self, result: EvaluationResult) -> float | None:
        """The objective's value for ``result`` (``None`` when undefined)."""
        if self.class_name is None:
            return result.miou
        return result.per_class[self.class_name]

    @property
    def label(self) -> str:
        """Column title: ``"mIoU"`` or ``"IoU <class>"``."""
        return "mIoU" if self.class_name is None else f"IoU {self.class_name}"

    def __str__(self) -> str:
        return "miou" if self.class_name is None else f"iou:{self.class_name}"


# -- candidate settings and the search space -------------------------------------------------------


def canonical_cleanup(cleanup: CleanupConfig) -> CleanupConfig:
    """``cleanup`` with the options that change nothing reset to their defaults.

    E.g. ``shape`` without opening or closing, ``majority=1``, ``min_region=1``: settings that
    give the same labels compare equal, so the search evaluates them once.

    Example:
        >>> canonical_cleanup(CleanupConfig(shape="disk", majority=1)) == CleanupConfig()
        True
    """
    morphology = cleanup.opening > 0 or cleanup.closing > 0
    regions = cleanup.min_region > 1
    return CleanupConfig(
        opening=cleanup.opening,
        closing=cleanup.closing,
        shape=cleanup.shape if morphology else "square",
        min_region=cleanup.min_region if regions else 0,
        connectivity=cleanup.connectivity if cleanup.opening > 0 or regions else 8,
        majority=cleanup.majority if cleanup.majority > 1 else 0,
        classes=cleanup.classes if morphology or regions else None,
    )


def _non_identity(tta: TTAConfig | None) -> TTAConfig | None:
    return None if tta is None or tta.is_identity else tta


def views_of(tta: TTAConfig | None) -> tuple[View, ...]:
    return (IDENTITY_VIEW,) if tta is None else tta.views()


@attrs.frozen
class Setting:
    """One candidate: TTA views averaged, a cleanup, a confidence threshold.

    Attributes:
        tta: Test-time augmentation, ``None`` for the image alone.
        cleanup: The cleanup (canonical: see :func:`canonical_cleanup`).
        min_confidence: Abstain below this confidence, ``None`` for never.
    """

    tta: TTAConfig | None = attrs.field(default=None, converter=_non_identity)
    cleanup: CleanupConfig = attrs.field(factory=CleanupConfig, converter=canonical_cleanup)
    min_confidence: float | None = None

    @property
    def model_runs(self) -> int:
        """Model runs per image this setting costs at inference time."""
        return len(views_of(self.tta))

    def complexity(self) -> tuple[float, ...]:
        """Sort key of simplicity: model runs, cleanup steps, their sizes, the threshold.

        Lower is simpler; ties in the objective go to the simpler setting.
        """
        c = self.cleanup
        steps = sum((c.opening > 0, c.closing > 0, c.min_region > 1, c.majority > 1))
        return (
            float(self.model_runs),
            float(steps),
            float(c.opening + c.closing),
            float(c.majority),
            float(c.min_region),
            float(SHAPES.index(c.shape)),
            float(c.connectivity == 4),
            0.0 if self.min_confidence is None else 1.0,
            0.0 if self.min_confidence is None else self.min_confidence,
        )

    def sort_key(self) -> str:
        """A canonical JSON string, the last tie-breaker (deterministic order)."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_dict(self) -> dict[str, Any]:
        """``{"tta": ... or None, "cleanup": {...}, "min_confidence": ... or None}``."""
        return {
            "tta": None if self.tta is None else self.tta.to_dict(),
            "cleanup": self.cleanup.to_dict(),
            "min_confidence": self.min_confidence,
        }

    def describe_tta(self) -> str:
        """``"-"``, ``"flip"``, ``"scales 0.75,1,1.25"`` or ``"flip, scales ..."``."""
        if self.tta is None:
            return "-"
        parts = ["flip"] if self.tta.flip else []
        if self.tta.scales != (1.0,):
            parts.append("scales " + ",".join(f"{s:g}" for s in self.tta.scales))
        return ", ".join(parts)

    def describe_cleanup(self) -> str:
        """The cleanup steps that are on, e.g. ``"open 1 (square) region 64 majority 3"``."""
        c = self.cleanup
        parts = []
        if c.opening:
            parts.append(f"open {c.opening}")
        if c.closing:
            parts.append(f"close {c.closing}")
        if c.opening or c.closing:
            parts.append(f"({c.shape})")
        if c.min_region > 1:
            parts.append(f"region {c.min_region}" + ("/4" if c.connectivity == 4 else ""))
        if c.majority > 1:
            parts.append(f"majority {c.majority}")
        return " ".join(parts) or "-"

    def describe_threshold(self) -> str:
        """``"-"`` or the threshold."""
        return "-" if self.min_confidence is None else f"{self.min_confidence:g}"

    def apply_to(self, base: SegmentConfig) -> SegmentConfig:
        """``base`` with this setting's TTA, cleanup and threshold."""
        return attrs.evolve(
            base, tta=self.tta, cleanup=self.cleanup, min_confidence=self.min_confidence
        )


def dedupe(values: Iterable[Any]) -> tuple[Any, ...]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return tuple(out)


def _axis(name: str, value: object, check: Callable[[Any], Any]) -> tuple[Any, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ConfigError(f"search axis {name!r} must list at least one value")
    return dedupe(check(item) for item in items)


def _values(name: str, rule: validators.Validator) -> Callable[[Any], Any]:
    """A check of one value of search axis ``name``, worded as ``rule`` words it."""

    def check(value: Any) -> Any:
        rule.check(value, f"search axis {name!r}: values")
        return int(value) if validators.is_integer(value) else value  # numpy ints are not JSON

    return check


_THRESHOLD = validators.optional(validators.in_range(0, 1))


def _check_threshold(value: Any) -> float | None:
    _THRESHOLD.check(value, "search axis 'min_confidence': values")
    return None if value is None else float(value)


def _check_tta(value: object) -> TTAConfig | None:
    if value is None:
        return None
    tta: TTAConfig
    if isinstance(value, TTAConfig):
        tta = value
    elif isinstance(value, Mapping):
        try:
            tta = TTAConfig.from_dict(value)
        except ConfigError as exc:
            raise ConfigError(f"search axis 'tta': {exc}") from None
    else:
        raise ConfigError(
            f'search axis \'tta\': values must be null or {{"flip": ..., "scales": [...]}} '
            f"(got {value!r})"
        )
    return None if tta.is_identity else tta


def _tta_axis(value: object) -> tuple[TTAConfig | None, ...]:
    return _axis("tta", value, _check_tta)


def _opening_axis(value: object) -> tuple[int, ...]:
    return _axis("opening", value, _values("opening", validators.int_range(0)))


def _closing_axis(value: object) -> tuple[int, ...]:
    return _axis("closing", value, _values("closing", validators.int_range(0)))


def _shape_axis(value: object) -> tuple[Shape, ...]:
    return _axis("shape", value, _values("shape", validators.in_(SHAPES)))


def _min_region_axis(value: object) -> tuple[int, ...]:
    return _axis("min_region", value, _values("min_region", validators.int_range(0)))


def _connectivity_axis(value: object) -> tuple[int, ...]:
    return _axis("connectivity", value, _values("connectivity", validators.in_((4, 8))))


def _majority_axis(value: object) -> tuple[int, ...]:
    return _axis("majority", value, _values("majority", validators.odd_or_zero()))


def _threshold_axis(value: object) -> tuple[float | None, ...]:
    return _axis("min_confidence", value, _check_threshold)


@attrs.frozen
class SearchSpace:
    """The values tried for every tuned setting (each axis a tuple, searched as a product).

    The defaults make a small, sensible grid for CamVid-sized images (96 TTA x cleanup
    combinations, each with 5 thresholds, which cost nothing extra).

    Attributes:
        tta: TTA settings (``None``: the image alone).
        opening: Opening radii (0: off).
        closing: Closing radii (0: off).
        shape: Structuring elements of opening and closing.
        min_region: Smallest region kept, in pixels (0: off).
        connectivity: 4 or 8, for regions.
        majority: Majority-filter windows (0: off).
        min_confidence: Confidence thresholds (``None``: never abstain).

    Example:
        >>> space = SearchSpace.from_dict({"tta": [None], "opening": [0], "closing": [0],
        ...                                 "majority": [0, 3], "min_region": [0, 32]})
        >>> space.size, len(space.settings()), space.views()
        (4, 20, ((1.0, False),))
        >>> SearchSpace.from_dict(space.to_dict()) == space
        True
    """

    tta: tuple[TTAConfig | None, ...] = attrs.field(
        default=(None, TTAConfig(flip=True)), converter=_tta_axis
    )
    opening: tuple[int, ...] = attrs.field(default=(0, 1), converter=_opening_axis)
    closing: tuple[int, ...] = attrs.field(default=(0, 1), converter=_closing_axis)
    shape: tuple[Shape, ...] = attrs.field(default=("square",), converter=_shape_axis)
    min_region: tuple[int, ...] = attrs.field(default=(0, 16, 64, 256), converter=_min_region_axis)
    connectivity: tuple[int, ...] = attrs.field(default=(8,), converter=_connectivity_axis)
    majority: tuple[int, ...] = attrs.field(default=(0, 3, 5), converter=_majority_axis)
    min_confidence: tuple[float | None, ...] = attrs.field(
        default=(None, 0.2, 0.3, 0.4, 0.5), converter=_threshold_axis
    )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Build from a JSON object of axes (lists, or single values); missing axes keep their
        defaults.

        Raises:
            ConfigError: for an unknown axis or a bad value, naming it.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a search grid must be a JSON object (got {type(data).__name__})")
        known = [field.name for field in attrs.fields(cls)]
        validators.check_keys(data, known, noun="search axis(es)")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, list[Any]]:
        """JSON-ready axes."""
        return {
            "tta": [None if t is None else t.to_dict() for t in self.tta],
            "opening": list(self.opening),
            "closing": list(self.closing),
            "shape": list(self.shape),
            "min_region": list(self.min_region),
            "connectivity": list(self.connectivity),
            "majority": list(self.majority),
            "min_confidence": list(self.min_confidence),
        }

    def cleanups(self) -> tuple[CleanupConfig, ...]:
        """Every distinct (canonical) cleanup of the product of the cleanup axes, in order."""
        product = itertools.product(
            self.opening,
            self.closing,
            self.shape,
            self.min_region,
            self.connectivity,
            self.majority,
        )
        return dedupe(
            canonical_cleanup(
                CleanupConfig(
                    opening=o, closing=c, shape=s, min_region=r, connectivity=n, majority=m
                )
            )
            for o, c, s, r, n, m in product
        )

    @property
    def size(self) -> int:
        """Distinct (TTA, cleanup) combinations (each is tried with every threshold)."""
        return len(self.tta) * len(self.cleanups())

    def settings(self) -> list[Setting]:
        """Every candidate of the grid (thresholds included), in grid order."""
        return [
            Setting(tta, cleanup, threshold)
            for tta in self.tta
            for cleanup in self.cleanups()
            for threshold in self.min_confidence
        ]

    def views(self) -> tuple[View, ...]:
        """Every view some TTA setting needs, the plain image first."""
        return dedupe([IDENTITY_VIEW, *(v for t in self.tta for v in views_of(t))])


def load_grid(path: str | os.PathLike[str]) -> SearchSpace:
    """Read a :class:`SearchSpace` from a JSON file (axes not given keep their defaults).

    Raises:
        ConfigError: naming the file, for a missing file, bad JSON or a bad axis.
    """
    return load_json_file(path, SearchSpace.from_dict, what="grid")
