"""Segmentation settings as a typed, validated, JSON-serialisable value: :class:`SegmentConfig`.

A config file holds what a user tunes about inference and post-processing (resizing, tiling,
test-time augmentation, cleanup, the confidence threshold, the label set) and optionally the
model handle. ``camvidseg tune`` writes one; ``camvidseg segment --config FILE`` reads it (flags
given on the command line win over the file).

The file is a JSON object; every key is optional except that unknown keys are refused, and
``"version"`` (written by :func:`save_config`) must not be newer than this library's
:data:`CONFIG_VERSION`::

    {
      "version": 1,
      "model": null,
      "classes": 32,
      "grouping": "merge",
      "max_side": null,
      "tile": null,
      "overlap": 64,
      "drop_void": false,
      "tta": {"flip": true, "scales": [1.0]},
      "cleanup": {"opening": 0, "closing": 0, "shape": "square", "min_region": 64,
                  "connectivity": 8, "majority": 3, "classes": null},
      "min_confidence": null,
      "precision": "fp32",
      "threads": null,
      "description": "tuned on 233 images"
    }

Example:
    >>> config = SegmentConfig(max_side=1024, cleanup=CleanupConfig(majority=3))
    >>> SegmentConfig.from_dict(config.to_dict()) == config
    True
    >>> sorted(k for k, v in config.segmenter_options().items() if v is not None)
    ['cleanup', 'drop_void', 'grouping', 'max_side', 'overlap', 'palette']
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import attrs

from camvidseg.backends.precision import PRECISIONS, check_precision
from camvidseg.cleanup import SHAPES, CleanupConfig
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import atomic_write
from camvidseg.palette import CamVidPalette, available_groupings
from camvidseg.segmenter import DEFAULT_TILE
from camvidseg.tta import TTAConfig

if TYPE_CHECKING:
    from camvidseg.backends.base import Backend
    from camvidseg.segmenter import Segmenter

__all__ = ["CONFIG_VERSION", "SegmentConfig", "load_config", "save_config"]

#: Version of the config file format this library writes (and the newest it reads).
CONFIG_VERSION = 1


# -- type checks of JSON values (bool is not a number here) ----------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> TypeGuard[float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _is_str(value: object) -> bool:
    return isinstance(value, str)


def _is_bool(value: object) -> bool:
    return isinstance(value, bool)


def _is_mapping(value: object) -> bool:
    return isinstance(value, Mapping)


def _or_null(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


def _list_of(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: isinstance(value, list) and all(check(item) for item in value)


_Schema = Mapping[str, tuple[str, Callable[[object], bool]]]

_TOP_LEVEL: _Schema = {
    "version": ("an integer", _is_int),
    "model": ("a string (model handle or folder) or null", _or_null(_is_str)),
    "classes": ("32 or 11", lambda v: _is_int(v) and v in (32, 11)),
    "grouping": ("a string (a registered 32 -> 11 grouping)", _is_str),
    "max_side": ("an integer >= 1 or null", _or_null(_is_int)),
    "tile": ("an integer >= 1 or null", _or_null(_is_int)),
    "overlap": ("an integer >= 0", _is_int),
    "drop_void": ("true or false", _is_bool),
    "tta": ('an object {"flip": bool, "scales": [numbers]} or null', _or_null(_is_mapping)),
    "cleanup": ("an object (cleanup options) or null", _or_null(_is_mapping)),
    "min_confidence": ("a number in [0, 1] or null", _or_null(_is_number)),
    "precision": (f"one of {', '.join(PRECISIONS)}", lambda v: v in PRECISIONS),
    "threads": ("an integer >= 1 or null", _or_null(_is_int)),
    "description": ("a string", _is_str),
}
_CLEANUP: _Schema = {
    "opening": ("an integer >= 0 (radius; 0 = off)", _is_int),
    "closing": ("an integer >= 0 (radius; 0 = off)", _is_int),
    "shape": (f"one of {', '.join(SHAPES)}", lambda v: v in SHAPES),
    "min_region": ("an integer >= 0 (pixels; 0 = off)", _is_int),
    "connectivity": ("4 or 8", lambda v: _is_int(v) and v in (4, 8)),
    "majority": ("0 (off) or an odd integer window size", _is_int),
    "classes": ("a list of class ids or null", _or_null(_list_of(_is_int))),
}
_TTA: _Schema = {
    "flip": ("true or false", _is_bool),
    "scales": ("a non-empty list of numbers", _list_of(_is_number)),
}


def _check_keys(data: Mapping[str, Any], schema: _Schema, prefix: str) -> None:
    unknown = sorted(str(k) for k in set(data) - set(schema))
    if unknown:
        shown = ", ".join(repr(prefix + k) for k in unknown)
        raise ConfigError(
            f"unknown key(s) {shown}; expected some of {', '.join(prefix + k for k in schema)}"
        )
    for key, value in data.items():
        expected, check = schema[key]
        if not check(value):
            raise ConfigError(
                f"key {prefix + key!r}: expected {expected} (got {json.dumps(value)}, "
                f"{_json_type(value)})"
            )


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object" if isinstance(value, Mapping) else type(value).__name__


# -- field validators and converters ---------------------------------------------------------------


def _to_tta(value: object) -> TTAConfig | None:
    if value is None or (isinstance(value, TTAConfig) and value.is_identity):
        return None
    if isinstance(value, TTAConfig):
        return value
    raise ConfigError(f"tta must be a TTAConfig or None (got {type(value).__name__})")


def _to_cleanup(value: object) -> CleanupConfig:
    if value is None:
        return CleanupConfig()
    if isinstance(value, CleanupConfig):
        return value
    raise ConfigError(f"cleanup must be a CleanupConfig or None (got {type(value).__name__})")


def _positive_or_none(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance
    if value is not None and (not _is_int(value) or value < 1):
        raise ConfigError(f"{attribute.name} must be an integer >= 1 or null (got {value!r})")


def _check_overlap(instance: SegmentConfig, attribute: attrs.Attribute[Any], value: object) -> None:
    del attribute
    if not _is_int(value) or value < 0:
        raise ConfigError(f"overlap must be an integer >= 0 (got {value!r})")
    tile = DEFAULT_TILE if instance.tile is None else instance.tile
    if 2 * value > tile:
        raise ConfigError(f"overlap must be at most half the tile ({tile // 2}; got {value})")


def _check_classes(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance, attribute
    if not _is_int(value) or value not in (32, 11):
        raise ConfigError(f"classes must be 32 or 11 (got {value!r})")


def _check_grouping(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance, attribute
    if not isinstance(value, str) or value not in available_groupings():
        raise ConfigError(
            f"grouping must be one of {', '.join(available_groupings())} (got {value!r})"
        )


def _check_min_confidence(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance, attribute
    if value is None:
        return
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"min_confidence must be a number in [0, 1] or null (got {value!r})")


def _to_min_confidence(value: object) -> object:
    return float(value) if _is_number(value) else value


def _check_precision(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    del instance, attribute
    check_precision(value)


def _check_type(kind: type, what: str) -> Callable[[object, attrs.Attribute[Any], object], None]:
    def check(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
        del instance
        if not isinstance(value, kind):
            raise ConfigError(f"{attribute.name} must be {what} (got {value!r})")

    return check


@attrs.frozen
class SegmentConfig:
    """Inference and post-processing settings of a :class:`~camvidseg.Segmenter`.

    Attributes:
        model: Model handle (tfhub.dev URL, Kaggle handle or SavedModel folder); ``None``: the
            default (``$CAMVIDSEG_MODEL`` on the command line, else the published HRNet).
        classes: Label set of the outputs: 32 (CamVid-32) or 11 (SegNet grouping).
        grouping: Registered 32 -> 11 grouping used with ``classes=11``.
        max_side: Longer side the model sees at most (``None``: full size).
        tile: Tile side for tiled inference (``None``: only very large images are tiled).
        overlap: Minimum overlap of neighbouring tiles in pixels.
        drop_void: With a 32-channel model, drop channel 0 instead of mapping it to Void.
        tta: Test-time augmentation; an identity :class:`~camvidseg.TTAConfig` becomes ``None``.
        cleanup: Label cleanup on the output label set (its ``classes`` are ids of ``classes``);
            all steps off by default.
        min_confidence: Pixels whose top-class confidence is lower become unlabelled (255),
            after the cleanup. Under the evaluation protocol an abstained pixel is a miss, so
            this can never raise pixel accuracy.
        precision: Inference precision, ``"fp32"`` (default) or ``"bf16"`` (CPUs with
            avx512_bf16 or AMX; an error elsewhere). Set explicitly for every backend.
        threads: Inference threads (``None``: the backend's default, all cores).
        description: Free text (``camvidseg tune`` records what it measured).
    """

    model: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(_check_type(str, "a string"))
    )
    classes: int = attrs.field(default=32, validator=_check_classes)
    grouping: str = attrs.field(default="merge", validator=_check_grouping)
    max_side: int | None = attrs.field(default=None, validator=_positive_or_none)
    tile: int | None = attrs.field(default=None, validator=_positive_or_none)
    overlap: int = attrs.field(default=64, validator=_check_overlap)
    drop_void: bool = attrs.field(default=False, validator=_check_type(bool, "true or false"))
    tta: TTAConfig | None = attrs.field(default=None, converter=_to_tta)
    cleanup: CleanupConfig = attrs.field(factory=CleanupConfig, converter=_to_cleanup)
    min_confidence: float | None = attrs.field(
        default=None, converter=_to_min_confidence, validator=_check_min_confidence
    )
    precision: str = attrs.field(default="fp32", validator=_check_precision)
    threads: int | None = attrs.field(default=None, validator=_positive_or_none)
    description: str = attrs.field(default="", validator=_check_type(str, "a string"))

    def __attrs_post_init__(self) -> None:
        if self.cleanup.classes is not None:
            size = len(self.palette)
            bad = [c for c in self.cleanup.classes if c >= size]
            if bad:
                raise ConfigError(
                    f"cleanup.classes must be ids of CamVid-{self.classes} (0..{size - 1}); "
                    f"got {bad}"
                )

    @property
    def palette(self) -> CamVidPalette:
        """The label set of the outputs."""
        return CamVidPalette.by_name(str(self.classes))

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``"version"`` first; :meth:`from_dict` restores an equal config."""
        return {
            "version": CONFIG_VERSION,
            "model": self.model,
            "classes": self.classes,
            "grouping": self.grouping,
            "max_side": self.max_side,
            "tile": self.tile,
            "overlap": self.overlap,
            "drop_void": self.drop_void,
            "tta": None if self.tta is None else self.tta.to_dict(),
            "cleanup": self.cleanup.to_dict(),
            "min_confidence": self.min_confidence,
            "precision": self.precision,
            "threads": self.threads,
            "description": self.description,
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentConfig:
        """Build from a parsed JSON object, checking every key and type.

        Raises:
            ConfigError: naming the key, what was expected and what was found, for an unknown
                key, a value of the wrong type or out of range, or a ``version`` newer than
                :data:`CONFIG_VERSION`.

        Example:
            >>> SegmentConfig.from_dict({"cleanup": {"majority": "3"}})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            camvidseg.exceptions.ConfigError: key 'cleanup.majority': expected 0 (off) or ...
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a JSON object (got {_json_type(data)})")
        _check_keys(data, _TOP_LEVEL, "")
        version = data.get("version", CONFIG_VERSION)
        if version < 1 or version > CONFIG_VERSION:
            raise ConfigError(
                f"key 'version': this camvidseg reads config versions 1..{CONFIG_VERSION} "
                f"(got {version}); upgrade camvidseg to read it"
            )
        values = {k: v for k, v in data.items() if k != "version"}
        cleanup = values.get("cleanup")
        if cleanup is not None:
            _check_keys(cleanup, _CLEANUP, "cleanup.")
            values["cleanup"] = _nested(CleanupConfig.from_dict, cleanup, "cleanup")
        tta = values.get("tta")
        if tta is not None:
            _check_keys(tta, _TTA, "tta.")
            values["tta"] = _nested(TTAConfig.from_dict, tta, "tta")
        return cls(**values)

    # -- building a Segmenter -----------------------------------------------------------------

    def segmenter_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~camvidseg.Segmenter` (all but the backend).

        Keys: ``palette``, ``grouping``, ``max_side``, ``tile``, ``overlap``, ``drop_void``,
        ``tta``, ``cleanup`` (``None`` when no step is on) and ``min_confidence``.
        """
        return {
            "palette": self.palette,
            "grouping": self.grouping,
            "max_side": self.max_side,
            "tile": self.tile,
            "overlap": self.overlap,
            "drop_void": self.drop_void,
            "tta": self.tta,
            "cleanup": self.cleanup if self.cleanup.enabled else None,
            "min_confidence": self.min_confidence,
        }

    def build_segmenter(
        self, backend: Backend | None = None, *, default_model: str | None = None, **options: Any
    ) -> Segmenter:
        """A :class:`~camvidseg.Segmenter` with these settings.

        Args:
            backend: The model to wrap; ``None`` loads :attr:`model` (else ``default_model``,
                else the published HRNet) with :meth:`Segmenter.from_hub`.
            default_model: Handle used when :attr:`model` is ``None``.
            **options: Override :meth:`segmenter_options` or add others (``batch_size``,
                ``cache_dir`` and ``timeout`` for loading, ...).

        Example:
            >>> from camvidseg.testing import NearestColorBackend
            >>> segmenter = SegmentConfig(classes=11).build_segmenter(NearestColorBackend())
            >>> segmenter.palette.name
            'camvid11'
        """
        from camvidseg.segmenter import DEFAULT_HANDLE, Segmenter

        merged = {**self.segmenter_options(), **options}
        if backend is not None:
            return Segmenter(backend, **merged)
        handle = self.model or default_model or DEFAULT_HANDLE
        merged.setdefault("precision", self.precision)
        merged.setdefault("threads", self.threads)
        return Segmenter.from_hub(handle, **merged)


def _nested(build: Callable[[Mapping[str, Any]], Any], data: Mapping[str, Any], key: str) -> Any:
    try:
        return build(data)
    except ConfigError as exc:
        raise ConfigError(f"key {key!r}: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> SegmentConfig:
    """Read a :class:`SegmentConfig` from a JSON file.

    Raises:
        ConfigError: naming the file (and the key, for a bad value) when the file is missing,
            is not JSON, or does not describe a valid config.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = save_config(SegmentConfig(min_confidence=0.4), Path(tmp) / "c.json")
        ...     load_config(path).min_confidence
        0.4
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    try:
        return SegmentConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def save_config(config: SegmentConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``config`` as JSON to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write((config.to_json() + "\n").encode("utf-8"))
    return path
