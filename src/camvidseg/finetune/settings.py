"""Training settings of a head, per-epoch records and results (plain values, no TensorFlow)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs

from camvidseg.backends.head import HEAD_KINDS
from camvidseg.exceptions import ConfigError
from camvidseg.finetune.data import CLASS_WEIGHT_MODES
from camvidseg.metrics import EvaluationResult

__all__ = [
    "AUGMENTATIONS",
    "EpochRecord",
    "FinetuneConfig",
    "FinetuneInterrupted",
    "FinetuneResult",
]

#: ``--augment`` choices: no flips, cached mirror images, and on-the-fly scaled views too.
AUGMENTATIONS = ("none", "flip", "scale")


def _int_at_least(minimum: int) -> Any:
    def check(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        del instance
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{attribute.name} must be an integer >= {minimum} (got {value!r})")

    return check


def _positive_float(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
    del instance
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(f"{attribute.name} must be a number > 0 (got {value!r})")
    if not math.isfinite(value):
        raise ConfigError(f"{attribute.name} must be finite (got {value!r})")


def _fraction(lower_open: bool) -> Any:
    def check(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
        del instance
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and lower_open:
            ok = 0.0 < float(value) < 1.0  # type: ignore[arg-type]
        elif ok:
            ok = 0.0 <= float(value) < 1.0  # type: ignore[arg-type]
        if not ok:
            interval = "(0, 1)" if lower_open else "[0, 1)"
            raise ConfigError(f"{attribute.name} must be a number in {interval} (got {value!r})")

    return check


def _choice(choices: tuple[str, ...]) -> Any:
    def check(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
        del instance
        if value not in choices:
            raise ConfigError(
                f"{attribute.name} must be one of {', '.join(choices)} (got {value!r})"
            )

    return check


def _weights_mode(instance: object, attribute: attrs.Attribute[str], value: object) -> None:
    del instance
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{attribute.name} must be {', '.join(CLASS_WEIGHT_MODES)} or a weights file path "
            f"(got {value!r})"
        )


@attrs.frozen
class FinetuneConfig:
    """How a head is trained. The defaults learn a useful head from ~40 labelled frames.

    Attributes:
        epochs: Passes over the training images (each image is seen in about
            ``area / crop**2`` random crops per epoch, at least one).
        learning_rate: Peak AdamW learning rate (after a linear warm-up over the first 5% of
            the steps, it decays to 0 along a cosine).
        weight_decay: AdamW's decoupled weight decay (kernels only).
        batch_size: Crops per training step.
        crop: Side of the square random crops in pixels (at model resolution; never larger
            than the smallest image, rounded down to a multiple of 4).
        class_weights: ``"none"``, ``"inverse"``, ``"median-freq"`` or a weights file.
        patience: Stop after this many epochs without a better validation mIoU (0: never).
        seed: Seeds the split, the initial weights, crops, flips and the batch order.
        val_split: Share of the images held out for validation (without validation folders).
        augment: ``"none"``, ``"flip"`` (mirror images, features cached) or ``"scale"`` (also
            rescaled views, half of the crops, whose features are computed on the fly: slow
            with a real backbone on a CPU).
        head: ``"3x3"`` (a small conv stack, default) or ``"1x1"`` (a linear probe).
        width: Hidden channels of the ``"3x3"`` head.
    """

    epochs: int = attrs.field(default=8, validator=_int_at_least(1))
    learning_rate: float = attrs.field(default=2e-3, validator=_positive_float)
    weight_decay: float = attrs.field(default=1e-4, validator=attrs.validators.ge(0.0))
    batch_size: int = attrs.field(default=8, validator=_int_at_least(1))
    crop: int = attrs.field(default=256, validator=_int_at_least(4))
    class_weights: str = attrs.field(default="none", validator=_weights_mode)
    patience: int = attrs.field(default=3, validator=_int_at_least(0))
    seed: int = attrs.field(default=0, validator=_int_at_least(0))
    val_split: float = attrs.field(default=0.2, validator=_fraction(lower_open=True))
    augment: str = attrs.field(default="flip", validator=_choice(AUGMENTATIONS))
    head: str = attrs.field(default="3x3", validator=_choice(HEAD_KINDS))
    width: int = attrs.field(default=64, validator=_int_at_least(1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every field."""
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        names = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown finetune setting(s) {unknown}; expected {sorted(names)}")
        return cls(**data)


@attrs.frozen
class EpochRecord:
    """One epoch: mean training loss, validation metrics, learning rate at its end, time."""

    epoch: int
    loss: float
    val_miou: float | None
    val_pixel_accuracy: float | None
    learning_rate: float
    seconds: float
    best: bool

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EpochRecord:
        return cls(**data)

    def summary(self, epochs: int) -> str:
        """``"epoch 3/8  loss 0.412  val mIoU 0.532  pixel acc 0.811  lr 1.6e-03  4.2 s  best"``."""
        miou = "n/a" if self.val_miou is None else f"{self.val_miou:.3f}"
        acc = "n/a" if self.val_pixel_accuracy is None else f"{self.val_pixel_accuracy:.3f}"
        return (
            f"epoch {self.epoch}/{epochs}  loss {self.loss:.4f}  val mIoU {miou}  "
            f"pixel acc {acc}  lr {self.learning_rate:.1e}  {self.seconds:.1f} s"
            + ("  best" if self.best else "")
        )


@attrs.frozen(eq=False)
class FinetuneResult:
    """What :func:`~camvidseg.finetune.finetune` did.

    Attributes:
        head_dir: The head folder.
        best_epoch: Epoch of the saved head (1-based).
        validation: Validation metrics of the saved head (the ``evaluate`` protocol).
        frozen: The frozen model's metrics on the same images (CamVid label sets only).
        history: Every epoch so far, resumed ones included.
        epochs_done: Epochs trained in total.
        resumed_from: Epochs already done when this call started.
        stopped_early: Whether early stopping ended the run.
        export: The exported SavedModel folder, if one was written.
    """

    head_dir: Path
    best_epoch: int
    validation: EvaluationResult
    frozen: EvaluationResult | None
    history: tuple[EpochRecord, ...]
    epochs_done: int
    resumed_from: int
    stopped_early: bool
    export: Path | None = None

    def comparison(self) -> str:
        """``"val mIoU: frozen 0.612 → fine-tuned 0.684"`` (or just the fine-tuned figure)."""
        tuned = _score(self.validation.miou)
        if self.frozen is None:
            return f"val mIoU: fine-tuned {tuned}"
        return f"val mIoU: frozen {_score(self.frozen.miou)} → fine-tuned {tuned}"


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class FinetuneInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the best head so far is saved (if an epoch ended) and the run
    resumes from its last checkpoint when started again with the same head folder."""

    def __init__(
        self, head_dir: Path, epochs_done: int, best_epoch: int | None, best_miou: float | None
    ) -> None:
        self.head_dir = head_dir
        self.epochs_done = epochs_done
        self.best_epoch = best_epoch
        self.best_miou = best_miou
        super().__init__(self.message())

    def message(self) -> str:
        if self.best_epoch is None:
            return (
                f"interrupted before the first epoch ended; nothing trained is saved in "
                f"{self.head_dir} (computed features are kept: run the same command to resume)"
            )
        return (
            f"interrupted after {self.epochs_done} epoch(s); the best head so far (epoch "
            f"{self.best_epoch}, val mIoU {_score(self.best_miou)}) is in {self.head_dir}; run "
            "the same command again to resume"
        )
