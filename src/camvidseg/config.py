"""Segmentation settings as a typed, validated, JSON-serialisable value: :class:`SegmentConfig`.

A config file holds what a user tunes about inference and post-processing (resizing, tiling,
test-time augmentation, cleanup, the confidence threshold, the label set) and optionally the
model handle. ``camvidseg tune`` writes one; ``camvidseg segment --config FILE`` reads it (flags
given on the command line win over the file).

The file is a JSON object; every key is optional except that unknown keys are refused, and
``"version"`` (written by :func:`save_config`) must not be newer than this library's
:data:`CONFIG_VERSION`. ``"batch_size"`` (added later) is only written when it is not 1::

    {
      "version": 1,
      "model": null,
      "classes": 32,
      "grouping": "merge",
      "max_side": null,
      "batch_size": 4,
      "tile": null,
      "overlap": 64,
      "drop_void": false,
      "tta": {"flip": true, "scales": [1.0]},
      "cleanup": {"opening": 0, "closing": 0, "shape": "square", "min_region": 64,
                  "connectivity": 8, "majority": 3, "classes": null},
      "min_confidence": null,
      "description": "tuned on 233 images"
    }

Example:
    >>> config = SegmentConfig(max_side=1024, cleanup=CleanupConfig(majority=3))
    >>> SegmentConfig.from_dict(config.to_dict()) == config
    True
    >>> sorted(k for k, v in config.segmenter_options().items() if v is not None)
    ['batch_size', 'cleanup', 'drop_void', 'grouping', 'max_side', 'overlap', 'palette']
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from camvidseg import validators
from camvidseg.backends.handles import DEFAULT_TIMEOUT
from camvidseg.backends.precision import PRECISIONS
from camvidseg.cleanup import CleanupConfig
from camvidseg.exceptions import ConfigError
from camvidseg.imageio import atomic_write
from camvidseg.palette import CamVidPalette, available_groupings
from camvidseg.segmenter import DEFAULT_TILE
from camvidseg.tta import TTAConfig

if TYPE_CHECKING:
    from camvidseg.backends.base import Backend, FeatureBackend
    from camvidseg.segmenter import Segmenter

__all__ = [
    "ADDED_LATER",
    "CONFIG_VERSION",
    "NOT_A_SEGMENTER_ARGUMENT",
    "SegmentConfig",
    "load_config",
    "load_json_file",
    "save_config",
]

#: Version of the config file format this library writes (and the newest it reads).
CONFIG_VERSION = 1
#: Field metadata of a setting added to the file format after version 1:
#: :meth:`SegmentConfig.to_dict` writes it only when it differs from its default, so a file that
#: does not use it stays readable by an older camvidseg (which refuses unknown keys).
ADDED_LATER: Mapping[str, object] = {"omit_default": True}
#: Field metadata of a setting that is not a :class:`~camvidseg.Segmenter` argument (the model
#: handle is opened by :meth:`SegmentConfig.build_segmenter`; ``classes`` becomes the palette).
NOT_A_SEGMENTER_ARGUMENT: Mapping[str, object] = {"segmenter": False}

_T = TypeVar("_T")


# -- field validators and converters ---------------------------------------------------------------


def _to_tta(value: object) -> TTAConfig | None:
    if isinstance(value, TTAConfig):
        return None if value.is_identity else value
    validators.optional(validators.instance_of(TTAConfig, "a TTAConfig")).check(value, "tta")
    return None


def _to_cleanup(value: object) -> CleanupConfig:
    if isinstance(value, CleanupConfig):
        return value
    validators.optional(validators.instance_of(CleanupConfig, "a CleanupConfig")).check(
        value, "cleanup"
    )
    return CleanupConfig()


def _check_overlap(instance: SegmentConfig, attribute: attrs.Attribute[Any], value: int) -> None:
    del attribute
    validators.check_tile_overlap(DEFAULT_TILE if instance.tile is None else instance.tile, value)


def _to_min_confidence(value: object) -> object:
    return float(value) if validators.is_number(value) else value


_POSITIVE_OR_NULL = validators.optional(validators.int_range(1))
_STRING = validators.instance_of(str, "a string")
_OBJECT = validators.optional(validators.instance_of(Mapping, "an object"))
#: A setting added after format version 1 that the model is opened with (not a Segmenter one).
_LOAD_OPTION: Mapping[str, object] = {**ADDED_LATER, **NOT_A_SEGMENTER_ARGUMENT}


@attrs.frozen
class SegmentConfig:
    """Inference and post-processing settings of a :class:`~camvidseg.Segmenter`.

    The one description of a segmenter's settings: the command line applies its flags over a
    loaded config field by field and builds the Segmenter with :meth:`build_segmenter`.

    Attributes:
        model: Model handle (tfhub.dev URL, Kaggle handle, SavedModel folder or ``fake:...``);
            ``None``: the default (``$CAMVIDSEG_MODEL`` on the command line, else the published
            HRNet).
        classes: Label set of the outputs: 32 (CamVid-32) or 11 (SegNet grouping).
        grouping: Registered 32 -> 11 grouping used with ``classes=11``.
        max_side: Longer side the model sees at most (``None``: full size).
        batch_size: Images (or tiles of one image) per model call.
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
            avx512_bf16 or AMX; an error elsewhere), set explicitly for every backend.
        threads: Inference threads (``None``: the backend's default, all cores).
        description: Free text (``camvidseg tune`` records what it measured).
        head: A head folder written by ``camvidseg finetune`` (added later: written only when
            set): the model's features go through it and the outputs are its classes. With a
            head, ``classes`` 32 (the default) means the head's own label set and 11 groups a
            CamVid-32 head's outputs (or is a CamVid-11 head's own).
    """

    model: str | None = attrs.field(
        default=None,
        validator=validators.optional(
            validators.instance_of(str, "a string (model handle or folder)")
        ),
        metadata=NOT_A_SEGMENTER_ARGUMENT,
    )
    classes: int = attrs.field(
        default=32, validator=validators.in_((32, 11)), metadata=NOT_A_SEGMENTER_ARGUMENT
    )
    grouping: str = attrs.field(default="merge", validator=validators.in_(available_groupings))
    max_side: int | None = attrs.field(default=None, validator=_POSITIVE_OR_NULL)
    batch_size: int = attrs.field(
        default=1, validator=validators.int_range(1), metadata=ADDED_LATER
    )
    tile: int | None = attrs.field(default=None, validator=_POSITIVE_OR_NULL)
    overlap: int = attrs.field(default=64, validator=_check_overlap)
    drop_void: bool = attrs.field(
        default=False, validator=validators.instance_of(bool, "true or false")
    )
    tta: TTAConfig | None = attrs.field(default=None, converter=_to_tta)
    cleanup: CleanupConfig = attrs.field(factory=CleanupConfig, converter=_to_cleanup)
    min_confidence: float | None = attrs.field(
        default=None,
        converter=_to_min_confidence,
        validator=validators.optional(validators.in_range(0, 1)),
    )
    precision: str = attrs.field(
        default="fp32", validator=validators.in_(PRECISIONS), metadata=_LOAD_OPTION
    )
    threads: int | None = attrs.field(
        default=None, validator=_POSITIVE_OR_NULL, metadata=_LOAD_OPTION
    )
    description: str = attrs.field(default="", validator=_STRING, metadata=NOT_A_SEGMENTER_ARGUMENT)
    head: str | None = attrs.field(
        default=None,
        validator=validators.optional(validators.instance_of(str, "a string (head folder)")),
        metadata={**ADDED_LATER, **NOT_A_SEGMENTER_ARGUMENT},
    )

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
        """The label set of the outputs (with a head: its own, or CamVid-11 grouped from it)."""
        if self.head is not None:
            from camvidseg.backends.head import read_head_info
            from camvidseg.labelset import output_palette

            label_set = read_head_info(self.head).label_set
            return output_palette(label_set, 11 if self.classes == 11 else None)
        return CamVidPalette.by_name(str(self.classes))

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with ``"version"`` first, then every field in order;
        :meth:`from_dict` restores an equal config.

        Fields added after format version 1 (``batch_size``) are left out at their defaults.
        """
        data: dict[str, Any] = {"version": CONFIG_VERSION}
        for field in attrs.fields(SegmentConfig):
            value = getattr(self, field.name)
            if field.metadata.get("omit_default") and value == field.default:
                continue
            data[field.name] = value.to_dict() if hasattr(value, "to_dict") else value
        return data

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentConfig:
        """Build from a parsed JSON object, checking every key and value.

        Raises:
            ConfigError: naming the key, what was expected and what was found, for an unknown
                key, a value of the wrong type or out of range, or a ``version`` newer than
                :data:`CONFIG_VERSION`.

        Example:
            >>> SegmentConfig.from_dict({"cleanup": {"majority": 4}})  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            camvidseg.exceptions.ConfigError: key 'cleanup': majority must be 0 (off) or ...
        """
        validators.instance_of(Mapping, "a JSON object").check(data, "a config")
        validators.check_keys(data, ("version", *(f.name for f in attrs.fields(cls))))
        version = data.get("version", CONFIG_VERSION)
        if not validators.int_range(1, CONFIG_VERSION).accepts(version):
            raise ConfigError(
                f"key 'version': this camvidseg reads config versions 1..{CONFIG_VERSION} "
                f"(got {version!r}); upgrade camvidseg to read it"
            )
        values = {k: v for k, v in data.items() if k != "version"}
        nested: tuple[tuple[str, type[CleanupConfig] | type[TTAConfig]], ...] = (
            ("cleanup", CleanupConfig),
            ("tta", TTAConfig),
        )
        for key, kind in nested:
            value = values.get(key)
            _OBJECT.check(value, key)
            if value is not None:
                fields = [f.name for f in attrs.fields(kind)]
                validators.check_keys(value, fields, prefix=f"{key}.")
                values[key] = _nested(kind.from_dict, value, key)
        return cls(**values)

    # -- building a Segmenter -----------------------------------------------------------------

    def segmenter_options(self) -> dict[str, Any]:
        """Keyword arguments of :class:`~camvidseg.Segmenter` (all but the backend).

        Every field that is a Segmenter argument, under its own name (``grouping``,
        ``max_side``, ``batch_size``, ``tile``, ``overlap``, ``drop_void``, ``tta``,
        ``min_confidence``; ``cleanup`` is ``None`` when no step is on), and ``palette`` for
        ``classes``.
        """
        options = {
            field.name: getattr(self, field.name)
            for field in attrs.fields(SegmentConfig)
            if field.metadata.get("segmenter", True)
        }
        options["palette"] = self.palette
        options["cleanup"] = self.cleanup if self.cleanup.enabled else None
        return options

    def build_segmenter(
        self,
        backend: Backend | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        default_model: str | None = None,
        **options: Any,
    ) -> Segmenter:
        """A :class:`~camvidseg.Segmenter` with these settings: the one way to build one from
        settings (the command line, ``tune`` and other front-ends all come here).

        Args:
            backend: The model to wrap; ``None`` opens :attr:`model` (else ``default_model``,
                else the published HRNet) with :func:`camvidseg.backends.open_backend`.
            cache_dir: TF Hub cache for opening the model (a load-time option, not a setting).
            timeout: Seconds a network read may stall while opening the model.
            default_model: Handle used when :attr:`model` is ``None``.
            **options: Override :meth:`segmenter_options` or add other :class:`Segmenter`
                arguments (``keep_image``, ``max_pixels``, ...).

        Raises:
            ModelLoadError: when the model cannot be opened (listing what was tried).

        Example:
            >>> segmenter = SegmentConfig(model="fake:noisy", classes=11).build_segmenter()
            >>> segmenter.palette.name, segmenter.backend.name
            ('camvid11', 'fake:nearest-color-33+speckle0.1/0')
        """
        from camvidseg.backends.resolver import open_backend
        from camvidseg.segmenter import Segmenter

        merged = {**self.segmenter_options(), **options}
        if backend is None:
            backend = open_backend(
                self.model or default_model,
                cache_dir=cache_dir,
                timeout=timeout,
                precision=self.precision,
                threads=self.threads,
            )
        if self.head is not None:
            from camvidseg.backends.head import HeadBackend, attach_head

            if not isinstance(backend, HeadBackend):  # a backend may carry the head already
                backend = attach_head(cast("FeatureBackend", backend), self.head)
        return Segmenter(backend, **merged)


def _nested(build: Callable[[Mapping[str, Any]], Any], data: Mapping[str, Any], key: str) -> Any:
    try:
        return build(data)
    except ConfigError as exc:
        raise ConfigError(f"key {key!r}: {exc}") from None


def load_json_file(
    path: str | os.PathLike[str], build: Callable[[Any], _T], *, what: str = "config"
) -> _T:
    """Read a JSON file and build a value from it with ``build`` (e.g. ``from_dict``).

    The one reader of camvidseg's JSON settings files (configs, tune's search grids).

    Args:
        path: The file.
        build: Turns the parsed JSON into the value, raising :class:`ConfigError` if it is bad.
        what: What the file is, for messages (``"config"``, ``"grid"``).

    Raises:
        ConfigError: naming the file (and ``build``'s message) when it is missing, a folder,
            unreadable, not JSON, or does not describe a valid value.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what} file") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from None
    try:
        return build(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


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
    return load_json_file(path, SegmentConfig.from_dict, what="config")


def save_config(config: SegmentConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``config`` as JSON to ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_write(path) as handle:
        handle.write((config.to_json() + "\n").encode("utf-8"))
    return path
