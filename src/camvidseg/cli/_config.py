"""``--config FILE`` and the inference/post-processing flags that override it.

A config file (:class:`camvidseg.config.SegmentConfig`, as ``camvidseg tune`` writes it) gives
the defaults; a flag given on the command line wins over the file; what neither sets keeps the
built-in default (for the model: ``$CAMVIDSEG_MODEL``, else the published HRNet).
"""

from __future__ import annotations

import argparse
import copy
import os
from typing import TYPE_CHECKING, Any

from camvidseg.cli._common import DEFAULT_MODEL, load_segmenter, non_negative_int, unit_float

if TYPE_CHECKING:
    from camvidseg.config import SegmentConfig
    from camvidseg.segmenter import Segmenter

__all__ = [
    "add_config_options",
    "build_segmenter",
    "config_from_args",
    "configure",
    "model_handle",
    "non_negative_int",
    "resolved_args",
    "scale_list",
]

#: Options of ``add_model_options`` whose built-in default is applied after the config file.
_DEFERRED = ("model", "classes", "max_side", "precision")


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


def add_config_options(parser: argparse.ArgumentParser, *, postprocessing: bool = True) -> None:
    """Add ``--config`` and the flags that override it (call after ``add_model_options``).

    The model options ``--model``, ``--classes`` and ``--max-side`` then default to the config
    file's values.
    """
    for action in parser._actions:  # argparse keeps no public handle on added options
        if action.dest in _DEFERRED:
            action.default = None
        if action.dest == "model":
            action.help = (
                "tfhub.dev URL, Kaggle Models handle, or local SavedModel folder (default: the "
                f"config's model, else $CAMVIDSEG_MODEL, else {DEFAULT_MODEL})"
            )
        elif action.dest == "classes":
            action.help = (
                "label set of the outputs: CamVid-32 or the 11-class SegNet grouping "
                "(default: the config's, else 32)"
            )
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


def config_from_args(args: argparse.Namespace) -> SegmentConfig:
    """The config file of ``--config`` (or the defaults) with the flags given applied over it.

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
    if args.model is not None:
        changes["model"] = args.model
    if args.classes is not None:
        changes["classes"] = int(args.classes)
    if args.max_side is not None:
        changes["max_side"] = args.max_side
    if getattr(args, "precision", None) is not None:
        changes["precision"] = args.precision
    if getattr(args, "threads", None) is not None:
        changes["threads"] = args.threads
    if args.tile is not None:
        changes["tile"] = args.tile or None
    if args.overlap is not None:
        changes["overlap"] = args.overlap
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
    if getattr(args, "min_confidence", None) is not None:
        changes["min_confidence"] = args.min_confidence
    cleanup = {
        name: getattr(args, name)
        for name in ("opening", "closing", "min_region", "majority")
        if getattr(args, name, None) is not None
    }
    try:
        if cleanup:
            changes["cleanup"] = attrs.evolve(config.cleanup, **cleanup)
        return attrs.evolve(config, **changes)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (from the command line)") from None


def model_handle(config: SegmentConfig) -> str:
    """The model to load: the config's (after ``--model``), else ``$CAMVIDSEG_MODEL``, else the
    published HRNet."""
    return config.model or os.environ.get("CAMVIDSEG_MODEL", DEFAULT_MODEL)


def resolved_args(args: argparse.Namespace, config: SegmentConfig) -> argparse.Namespace:
    """A copy of ``args`` whose model options hold ``config``'s values, for ``load_segmenter``."""
    resolved = copy.copy(args)
    resolved.model = model_handle(config)
    resolved.classes = str(config.classes)
    resolved.max_side = config.max_side
    resolved.precision = config.precision
    resolved.threads = config.threads
    return resolved


def configure(segmenter: Segmenter, config: SegmentConfig) -> Segmenter:
    """``segmenter`` with ``config``'s tiling, TTA, cleanup, threshold and grouping."""
    import attrs

    options = config.segmenter_options()
    options.pop("palette")
    options.pop("max_side")
    return attrs.evolve(segmenter, **options)


def build_segmenter(args: argparse.Namespace, config: SegmentConfig) -> Segmenter:
    """Load the model the options and ``config`` name, with ``config``'s settings."""
    return configure(load_segmenter(resolved_args(args, config)), config)
