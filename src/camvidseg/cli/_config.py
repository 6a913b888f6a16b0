"""The one way from command-line flags to a Segmenter.

Every command that runs the model calls :func:`add_segmenter_options` (the model group and the
settings group), then :func:`config_from_args` (a config file, as ``camvidseg tune`` writes it,
with the flags given applied over it field by field) and :func:`build_segmenter`
(:meth:`SegmentConfig.build_segmenter <camvidseg.config.SegmentConfig.build_segmenter>` with
the load-time options ``--cache-dir`` and ``--timeout``). A flag given on the command line wins
over the file; what neither sets keeps the built-in default (for the model:
``$CAMVIDSEG_MODEL``, else the published HRNet).

A new setting is a field on :class:`~camvidseg.config.SegmentConfig` and one flag of the same
name here (or in ``add_model_options``); :func:`config_from_args` applies it by name.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from camvidseg.cli._common import (
    DEFAULT_MODEL,
    add_model_options,
    non_negative_int,
    unit_float,
)

if TYPE_CHECKING:
    from camvidseg.config import SegmentConfig
    from camvidseg.segmenter import Segmenter

__all__ = [
    "add_config_options",
    "add_model_options",
    "add_segmenter_options",
    "build_segmenter",
    "config_from_args",
    "model_handle",
    "non_negative_int",
    "scale_list",
]


def scale_list(text: str) -> tuple[float, ...]:
    """argparse type of ``--tta-scales``: comma-separated positive numbers."""
    try:
        scales = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers such as 0.75,1,1.25 (got {text!r})"
        ) from None
    if not scales:
        raise argparse.ArgumentTypeError(f"expected at least one scale (got {text!r})")
    return scales


def add_segmenter_options(parser: argparse.ArgumentParser, *, postprocessing: bool = True) -> None:
    """Add the model group (``--model``, ``--cache-dir``, ``--timeout``, ``--batch-size``,
    ``--max-side``, ``--classes``) and the settings group (``--config``, tiling, and with
    ``postprocessing`` TTA, ``--min-confidence`` and cleanup): the one option group of every
    command that runs the model.

    Read them back with :func:`config_from_args` and :func:`build_segmenter`.
    """
    add_model_options(parser)
    add_config_options(parser, postprocessing=postprocessing)


def add_config_options(parser: argparse.ArgumentParser, *, postprocessing: bool = True) -> None:
    """Add the settings group: ``--config`` and the flags that override it (after
    ``add_model_options``; :func:`add_segmenter_options` calls both)."""
    group = parser.add_argument_group(
        "settings", "a config file gives defaults; these flags override it"
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="JSON settings, e.g. written by 'camvidseg tune' (model, classes, max_side, tiling"
        + (", TTA, cleanup, min_confidence)" if postprocessing else ")"),
    )
    group.add_argument(
        "--tile",
        type=non_negative_int,
        default=None,
        metavar="PIXELS",
        help="segment in overlapping tiles of this side, blended on the scores (0: only images "
        "over the memory budget are tiled)",
    )
    group.add_argument(
        "--overlap",
        type=non_negative_int,
        default=None,
        metavar="PIXELS",
        help="minimum overlap of neighbouring tiles (default: 64)",
    )
    if not postprocessing:
        return
    group.add_argument(
        "--tta",
        choices=("none", "flip"),
        default=None,
        help="test-time augmentation: average the scores of the image and its mirror image "
        "(flip), or none",
    )
    group.add_argument(
        "--tta-scales",
        type=scale_list,
        default=None,
        metavar="LIST",
        help="test-time augmentation: also average over these input scales, e.g. 0.75,1,1.25",
    )
    group.add_argument(
        "--min-confidence",
        type=unit_float,
        default=None,
        metavar="P",
        help="pixels whose winning probability is lower become unlabelled (255); under the "
        "evaluation protocol abstaining is a miss and never raises pixel accuracy",
    )
    group.add_argument(
        "--min-region",
        type=non_negative_int,
        default=None,
        metavar="PIXELS",
        help="cleanup: regions smaller than this take the majority label around them (0: off)",
    )
    group.add_argument(
        "--majority",
        type=non_negative_int,
        default=None,
        metavar="K",
        help="cleanup: K x K majority (mode) filter, K odd (0: off)",
    )
    group.add_argument(
        "--opening",
        type=non_negative_int,
        default=None,
        metavar="R",
        help="cleanup: per-class opening of radius R, removing specks and thin parts (0: off)",
    )
    group.add_argument(
        "--closing",
        type=non_negative_int,
        default=None,
        metavar="R",
        help="cleanup: per-class closing of radius R, filling narrow gaps (0: off)",
    )


def _same(value: Any) -> Any:
    return value


#: How a flag's value becomes its field's value, where they differ.
_FLAG_VALUE: dict[str, Callable[[Any], Any]] = {
    "classes": int,  # --classes 32|11 is a choice of strings
    "tile": lambda tile: tile or None,  # --tile 0: automatic tiling, whatever the file says
}
#: Fields set from several flags (below), not from one of their own name.
_SEVERAL_FLAGS = ("tta", "cleanup")


def config_from_args(args: argparse.Namespace) -> SegmentConfig:
    """The config file of ``--config`` (or the defaults) with the flags given applied over it,
    field by field (a flag left out keeps the file's value).

    A flag whose destination is the name of a :class:`~camvidseg.config.SegmentConfig` field
    overrides that field; ``--tta``/``--tta-scales`` and the cleanup flags override parts of
    ``tta`` and ``cleanup``.

    Raises:
        ConfigError: a bad config file (naming it and the key), or flags that do not fit
            together (e.g. ``--tta none`` with ``--tta-scales``).
    """
    import attrs

    from camvidseg.config import SegmentConfig, load_config
    from camvidseg.exceptions import ConfigError
    from camvidseg.tta import TTAConfig

    config = load_config(args.config) if args.config is not None else SegmentConfig()
    changes: dict[str, Any] = {}
    for field in attrs.fields(SegmentConfig):
        value = getattr(args, field.name, None)
        if value is not None and field.name not in _SEVERAL_FLAGS:
            changes[field.name] = _FLAG_VALUE.get(field.name, _same)(value)
    tta_mode = getattr(args, "tta", None)
    scales = getattr(args, "tta_scales", None)
    if tta_mode == "none":
        if scales is not None:
            raise ConfigError("--tta none and --tta-scales contradict each other")
        changes["tta"] = None
    elif tta_mode is not None or scales is not None:
        current = config.tta or TTAConfig()
        changes["tta"] = TTAConfig(
            flip=True if tta_mode == "flip" else current.flip,
            scales=current.scales if scales is None else scales,
        )
    cleanup = {
        name: getattr(args, name)
        for name in ("opening", "closing", "min_region", "majority")
        if getattr(args, name, None) is not None
    }
    try:
        if cleanup:
            changes["cleanup"] = attrs.evolve(config.cleanup, **cleanup)
        config = attrs.evolve(config, **changes)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from the command line)") from None
    if config.head is not None and getattr(args, "classes", None) is not None:
        from camvidseg.backends.head import read_head_info
        from camvidseg.labelset import output_palette

        # An explicit --classes must match the head's label set (or group CamVid-32 to 11).
        output_palette(read_head_info(config.head).label_set, int(args.classes))
    return config


def model_handle(config: SegmentConfig) -> str:
    """The model to load: the config's (after ``--model``), else ``$CAMVIDSEG_MODEL``, else the
    published HRNet."""
    return config.model or os.environ.get("CAMVIDSEG_MODEL") or DEFAULT_MODEL


def build_segmenter(args: argparse.Namespace, config: SegmentConfig) -> Segmenter:
    """The Segmenter of ``config`` (from :func:`config_from_args`), its model opened with the
    load-time options ``--cache-dir`` and ``--timeout``."""
    return config.build_segmenter(
        cache_dir=args.cache_dir, timeout=args.timeout, default_model=model_handle(config)
    )
