"""``camvidseg finetune``: train a new head on the frozen backbone from labelled images."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from camvidseg.cli._common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    add_ground_truth_options,
    add_verbosity,
    non_negative_int,
    positive_int,
)
from camvidseg.cli._config import (
    add_segmenter_options,
    build_segmenter,
    config_from_args,
    model_handle,
)

if TYPE_CHECKING:
    from camvidseg.backends.base import FeatureBackend
    from camvidseg.config import SegmentConfig
    from camvidseg.finetune import EpochRecord, FinetuneResult
    from camvidseg.labelset import LabelSet
    from camvidseg.segmenter import Segmenter

_DESCRIPTION = """\
Train a new head on the frozen HRNet backbone: its features are computed once per image (and
mirror image) and cached as float16; a small head learns the classes of the labels. Images pair
with labels by name, as in 'camvidseg evaluate' (x.png with x_L.png or x.png). Without
--val-images/--val-labels, --val-split of the images (by name, seeded) is held out; the head
with the best validation mIoU (evaluate's protocol, Void ignored) is kept.

HEAD_DIR receives head.json (classes, colours, backbone, settings, versions), head.weights.npz,
metrics.json (val mIoU, per-class IoU, confusion matrix, class frequencies and weights) and
curves.png. Running the same command again resumes from the last epoch; Ctrl-C keeps the best
head so far. Use the head with 'camvidseg segment ... --head HEAD_DIR', or bake backbone and
head into one SavedModel with --export.
"""

_EXAMPLES = """examples:
  camvidseg finetune CamVid/train CamVid/trainannot --classes 11 -o heads/camvid11
  camvidseg finetune frames/ labels/ -o heads/mine --class-list classes.json --epochs 12
  camvidseg finetune train/ trainannot/ --classes 11 --val-images val/ --val-labels valannot/ \\
      -o heads/c11 --class-weights median-freq --export models/camvid11-finetuned
  camvidseg segment photos/ -o out/ --head heads/camvid11

A class list is JSON [{"name": "road", "color": [128, 64, 128]}, ...] (add "ignore": true to a
class that is never trained nor scored, like Void) or CSV lines name,r,g,b[,ignore].
exit status: 0 ok, 2 usage or data error (nothing trained), 130 Ctrl-C (best head kept).
"""


def _unit_open(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="train a new head on the frozen backbone (your classes, your camera)",
        description=_DESCRIPTION,
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("images", type=Path, metavar="IMAGES", help="training images (recursed)")
    parser.add_argument(
        "labels", type=Path, metavar="LABELS", help="their label files (recursed, paired by name)"
    )
    parser.add_argument(
        "-o", "--output", required=True, type=Path, metavar="HEAD_DIR", help="head folder"
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--class-list",
        type=Path,
        default=None,
        metavar="FILE",
        help="your own classes (JSON or CSV, see below) instead of --classes",
    )
    data.add_argument(
        "--val-images", type=Path, default=None, metavar="DIR", help="validation images"
    )
    data.add_argument(
        "--val-labels", type=Path, default=None, metavar="DIR", help="validation labels"
    )
    data.add_argument(
        "--val-split",
        type=_unit_open,
        default=0.2,
        metavar="FRACTION",
        help="share of the images held out for validation without --val-images (default: 0.2)",
    )
    add_ground_truth_options(
        data,
        format_help="labels as RGB colours (*_L.png) or ids (SegNet *annot/, indexed PNGs); "
        "auto looks at each image (default: auto)",
        unknown_help="RGB label colours not in the label set: stop with an error, or treat as "
        "Void (ignored; default: error)",
    )
    data.add_argument(
        "--feature-cache",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the computed features here, shared between runs (default: HEAD_DIR/features, "
        "removed when training completes)",
    )
    training = parser.add_argument_group("training")
    training.add_argument(
        "--epochs", type=positive_int, default=8, metavar="N", help="epochs (default: 8)"
    )
    training.add_argument(
        "--lr",
        type=_positive_float,
        default=2e-3,
        metavar="X",
        help="peak AdamW learning rate, with warm-up and cosine decay (default: 0.002)",
    )
    training.add_argument(
        "--crop",
        type=positive_int,
        default=256,
        metavar="PIXELS",
        help="side of the random training crops (never larger than the images; default: 256)",
    )
    training.add_argument(
        "--class-weights",
        default="none",
        metavar="none|inverse|median-freq|FILE",
        help='per-pixel loss weights by class; FILE: JSON {"name": weight} or CSV name,weight '
        "(default: none)",
    )
    training.add_argument(
        "--patience",
        type=non_negative_int,
        default=3,
        metavar="N",
        help="stop after N epochs without a better validation mIoU (0: never; default: 3)",
    )
    training.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="N", help="random seed (default: 0)"
    )
    training.add_argument(
        "--augment",
        choices=("none", "flip", "scale"),
        default="flip",
        help="flip: mirror images (cached); scale: also rescaled views, computed on the fly "
        "(slow with the real model on a CPU) (default: flip)",
    )
    training.add_argument(
        "--head-type",
        choices=("3x3", "1x1"),
        default="3x3",
        help="a small 3x3 conv stack, or a 1x1 linear probe (default: 3x3)",
    )
    training.add_argument(
        "--width",
        type=positive_int,
        default=64,
        metavar="N",
        help="hidden channels of the 3x3 head (default: 64)",
    )
    training.add_argument(
        "--overwrite",
        action="store_true",
        help="start over instead of resuming a run found in HEAD_DIR",
    )
    training.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="SAVEDMODEL_DIR",
        help="also write backbone + head as one SavedModel (same predict signature as the hub "
        "model, label set in assets/camvidseg.json)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_model_settings(parser)
    add_verbosity(parser)
    parser.set_defaults(run=run)


def _add_model_settings(parser: argparse.ArgumentParser) -> None:
    """The shared model options; --batch-size counts training crops here."""
    add_segmenter_options(parser, postprocessing=False)
    for action in parser._actions:  # argparse keeps no public handle on added options
        if action.dest == "batch_size":
            action.help = "crops per training step, and images per model call (default: 8)"
        elif action.dest == "classes":
            action.help = "train for CamVid-32 or the 11 SegNet classes (default: 32)"
        elif action.dest == "head":
            action.help = argparse.SUPPRESS  # finetune makes heads; it does not take one


def _load(args: argparse.Namespace) -> tuple[SegmentConfig, Segmenter]:
    """The settings and the frozen model (its backend is the backbone)."""
    config = config_from_args(args)
    return config, build_segmenter(args, config)


def _label_set(args: argparse.Namespace, config: SegmentConfig) -> LabelSet:
    from camvidseg.exceptions import ConfigError
    from camvidseg.labelset import LabelSet

    if args.class_list is not None:
        if args.classes is not None:
            raise ConfigError("--classes and --class-list exclude each other")
        return LabelSet.from_file(args.class_list)
    return LabelSet.by_classes(config.classes)


def _printer(args: argparse.Namespace, epochs: int) -> Any:
    def on_epoch(record: EpochRecord) -> None:
        if not args.quiet and not args.json:
            print(f"camvidseg: {record.summary(epochs)}", file=sys.stderr, flush=True)

    return on_epoch


def _summary(result: FinetuneResult) -> dict[str, Any]:
    return {
        "head": str(result.head_dir),
        "best_epoch": result.best_epoch,
        "epochs_done": result.epochs_done,
        "resumed_from": result.resumed_from,
        "stopped_early": result.stopped_early,
        "miou": result.validation.miou,
        "pixel_accuracy": result.validation.pixel_accuracy,
        "frozen_miou": None if result.frozen is None else result.frozen.miou,
        "export": None if result.export is None else str(result.export),
        "history": [r.to_dict() for r in result.history],
    }


def run(args: argparse.Namespace) -> int:
    import attrs

    from camvidseg.exceptions import ConfigError
    from camvidseg.finetune import (
        DataOptions,
        FinetuneConfig,
        FinetuneInterrupted,
        export_savedmodel,
        finetune,
        require_savedmodel,
    )

    if args.head is not None:
        raise ConfigError("finetune trains a new head: --head is for segment and tune")
    if args.export is not None and args.export.exists() and any(args.export.iterdir()):
        raise ConfigError(f"export folder {args.export} exists and is not empty")
    config, segmenter = _load(args)
    label_set = _label_set(args, config)
    backbone = cast("FeatureBackend", segmenter.backend)
    if args.export is not None:
        require_savedmodel(backbone)  # before training, not after
    settings = FinetuneConfig(
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size or 8,
        crop=args.crop,
        class_weights=args.class_weights,
        patience=args.patience,
        seed=args.seed,
        val_split=args.val_split,
        augment=args.augment,
        head=args.head_type,
        width=args.width,
    )
    data = DataOptions(
        label_set=label_set,
        gt_format=args.gt_format,
        unknown=args.unknown_colors,
        grouping=config.grouping,
        max_side=config.max_side,
    )
    progress = sys.stderr.isatty() and not args.quiet and not args.json
    try:
        result = finetune(
            args.images,
            args.labels,
            args.output,
            backbone=backbone,
            base_model=model_handle(config),
            data=data,
            config=settings,
            val_images=args.val_images,
            val_labels=args.val_labels,
            feature_cache=args.feature_cache,
            overwrite=args.overwrite,
            frozen=segmenter,
            progress=progress,
            on_epoch=_printer(args, settings.epochs),
        )
    except FinetuneInterrupted as interrupted:
        print(f"camvidseg: {interrupted.message()}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if args.export is not None:
        exported = export_savedmodel(args.output, backbone, args.export)
        result = attrs.evolve(result, export=exported)
    if args.json:
        print(json.dumps(_summary(result), indent=2))
    elif not args.quiet:
        print(
            f"camvidseg: {result.comparison()} (best epoch {result.best_epoch} of "
            f"{result.epochs_done}); head written to {result.head_dir}",
            file=sys.stderr,
        )
        use = f"camvidseg segment IMAGES -o OUT --head {result.head_dir}"
        if config.model is not None:
            use += f" --model {config.model}"
        print(f"camvidseg: use it with: {use}", file=sys.stderr)
        if result.export is not None:
            print(f"camvidseg: exported to {result.export}", file=sys.stderr)
    return EXIT_OK
