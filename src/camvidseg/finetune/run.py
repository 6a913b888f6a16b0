"""``finetune``: train a head on a frozen backbone, with validation, checkpoints and resume."""

from __future__ import annotations

import datetime
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from camvidseg._version import __version__
from camvidseg.backends.base import FeatureBackend
from camvidseg.backends.head import (
    FEATURE_STRIDE,
    HEAD_FILE,
    WEIGHTS_FILE,
    HeadInfo,
    HeadWeights,
    backbone_fingerprint,
    same_backbone,
)
from camvidseg.exceptions import ConfigError, InvalidImageError, UnknownColorError
from camvidseg.finetune.crops import CropSampler
from camvidseg.finetune.data import (
    DataError,
    DataOptions,
    Sample,
    class_weights,
    count_classes,
    find_samples,
    read_sample,
    split_samples,
)
from camvidseg.finetune.features import (
    FeatureStats,
    FeatureStore,
    Prepared,
)
from camvidseg.finetune.outputs import (
    CHECKPOINT_FILE,
    CURVES_FILE,
    METRICS_FILE,
    deferred_interrupt,
    draw_curves,
    read_checkpoint,
    write_checkpoint,
    write_json,
)
from camvidseg.finetune.settings import (
    EpochRecord,
    FinetuneConfig,
    FinetuneInterrupted,
    FinetuneResult,
)
from camvidseg.labelset import LabelSet
from camvidseg.metrics import ConfusionMatrix, EvaluationResult
from camvidseg.postprocess import labels_and_confidence, resize_scores

if TYPE_CHECKING:
    from camvidseg.finetune.trainer import Trainer
    from camvidseg.segmenter import Segmenter

__all__ = ["evaluate_head", "finetune"]

log = logging.getLogger("camvidseg")

_CHECKPOINT_FORMAT = "camvidseg-finetune-checkpoint"
_METRICS_FORMAT = "camvidseg-finetune-metrics"
#: Files of a head folder that ``overwrite`` removes (nothing else is touched).
_OWN_FILES = (HEAD_FILE, WEIGHTS_FILE, METRICS_FILE, CURVES_FILE, CHECKPOINT_FILE)
_FEATURES_DIR = "features"


def _versions() -> dict[str, str]:
    from camvidseg.backends.tfhub import import_tensorflow

    tf, _ = import_tensorflow()

    return {
        "camvidseg": __version__,
        "tensorflow": str(tf.__version__),
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def evaluate_head(
    module: Any,
    prepared: Sequence[Prepared],
    label_set: LabelSet,
) -> EvaluationResult:
    """Validation metrics of a head on prepared images, by the ``evaluate`` protocol.

    Probabilities come from the head module's ``probabilities`` (what a head backend returns),
    are resized to each image's own size as the Segmenter resizes them, and turned into labels
    with the same function: the numbers are those ``camvidseg evaluate`` gives on the labels
    ``camvidseg segment --head`` writes.
    """
    from camvidseg.backends.tfhub import import_tensorflow

    tf, _ = import_tensorflow()

    palette = label_set.to_palette()
    layout = label_set.channel_layout()
    extra_ignored = [i for i in label_set.ignore_ids if i != palette.void_id]
    matrix = ConfusionMatrix(palette)
    for item in prepared:
        features = np.load(item.features[0]).astype(np.float32)[None]
        probs = module.probabilities(
            tf.constant(features), tf.constant(item.padded[0]), tf.constant(item.padded[1])
        )
        scores = np.asarray(probs.numpy()[0, : item.size[0], : item.size[1]], dtype=np.float32)
        truth = np.load(item.labels)
        scores = resize_scores(np.ascontiguousarray(scores), (truth.shape[0], truth.shape[1]))
        labels, _ = labels_and_confidence(scores, layout)
        if extra_ignored:
            truth = np.where(np.isin(truth, extra_ignored), np.uint8(255), truth)
        matrix.update(labels, truth)
    return matrix.compute()


class _Run:
    """One call of :func:`finetune` (state shared by its steps)."""

    def __init__(
        self,
        head_dir: Path,
        backbone: FeatureBackend,
        base_model: str,
        data: DataOptions,
        config: FinetuneConfig,
        progress: bool,
    ) -> None:
        self.head_dir = head_dir
        self.backbone = backbone
        self.base_model = base_model
        self.data = data
        self.config = config
        self.progress = progress
        self.label_set = data.label_set
        self.checkpoint_path = head_dir / CHECKPOINT_FILE
        self.state: dict[str, Any] = {}
        self.history: list[EpochRecord] = []
        self.best_weights: HeadWeights | None = None
        self.counts: NDArray[np.int64] = np.zeros(len(self.label_set), np.int64)
        self.weights_by_id: NDArray[np.float64] = np.zeros(len(self.label_set))
        self.train: list[Prepared] = []
        self.val: list[Prepared] = []
        self.labels_at: dict[tuple[str, str], tuple[Path, tuple[int, int]]] = {}

    @property
    def best_result(self) -> EvaluationResult | None:
        """Validation metrics of the best epoch so far."""
        data = self.state.get("best_confusion")
        return None if data is None else _confusion(data)

    @property
    def frozen(self) -> EvaluationResult | None:
        """The frozen model's validation metrics, if measured."""
        data = self.state.get("frozen_confusion")
        return None if data is None else _confusion(data)

    # -- files --------------------------------------------------------------------------------

    def settings(self, train: Sequence[Sample], val: Sequence[Sample]) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "data": self.data.to_dict(),
            "label_set": self.label_set.to_dict(),
            "base_model": self.base_model,
            "train": [s.key for s in train],
            "val": [s.key for s in val],
        }

    def head_info(self, complete: bool) -> HeadInfo:
        best_result = self.best_result
        assert self.best_weights is not None
        assert best_result is not None
        best = self.state["best_epoch"]
        details = {
            "feature_dim": self.best_weights.feature_dim,
            "width": self.best_weights.width,
            "stride": FEATURE_STRIDE,
            "best_epoch": best,
            "val_miou": best_result.miou,
            "epochs_done": len(self.history),
            "complete": complete,
            "training": self.config.to_dict(),
            "data": self.data.to_dict(),
            "seed": self.config.seed,
            "split": {
                "train": self.state["settings"]["train"],
                "val": self.state["settings"]["val"],
            },
            "versions": _versions(),
            "saved": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        return HeadInfo(
            self.label_set, self.base_model, self.state["fingerprint"], self.config.head, details
        )

    def metrics(self, complete: bool) -> dict[str, Any]:
        best, frozen = self.best_result, self.frozen
        assert best is not None
        names = self.label_set.names
        total = int(self.counts.sum())
        return {
            "format": _METRICS_FORMAT,
            "version": 1,
            "best_epoch": self.state["best_epoch"],
            "epochs_done": len(self.history),
            "complete": complete,
            "stopped_early": bool(self.state.get("stopped_early", False)),
            "miou": best.miou,
            "pixel_accuracy": best.pixel_accuracy,
            "frozen_miou": None if frozen is None else frozen.miou,
            "validation": best.to_dict(),
            "frozen": None if frozen is None else frozen.to_dict(),
            "class_pixels": {n: int(c) for n, c in zip(names, self.counts, strict=True)},
            "class_frequencies": {
                n: (int(c) / total if total else 0.0)
                for n, c in zip(names, self.counts, strict=True)
            },
            "class_weights": {n: float(w) for n, w in zip(names, self.weights_by_id, strict=True)},
            "class_weights_mode": self.config.class_weights,
            "train_images": len(self.train),
            "val_images": len(self.val),
            "history": [r.to_dict() for r in self.history],
        }

    def save(self, trainer: Trainer, *, complete: bool, improved: bool) -> None:
        """Write the best head (when it changed), metrics, curves and the checkpoint."""
        self.state["epochs_done"] = len(self.history)
        self.state["history"] = [r.to_dict() for r in self.history]
        self.state["complete"] = complete
        arrays = trainer.state()
        assert self.best_weights is not None
        arrays.update({f"best/{k}": v for k, v in self.best_weights.to_arrays().items()})
        with deferred_interrupt():
            if improved or complete:
                self.best_weights.save(self.head_dir / WEIGHTS_FILE)
                write_json(self.head_dir / HEAD_FILE, self.head_info(complete).to_dict())
            write_json(self.head_dir / METRICS_FILE, self.metrics(complete))
            draw_curves(self.head_dir / CURVES_FILE, self.history, self.state["best_epoch"])
            write_checkpoint(self.checkpoint_path, self.state, arrays)

    # -- data ---------------------------------------------------------------------------------

    def scan(self, store: FeatureStore, train: Sequence[Sample], val: Sequence[Sample]) -> None:
        """Read every label and image once: problems are listed before any feature is made."""
        problems: list[str] = []
        roles = [(s, "train") for s in train] + [(s, "val") for s in val]
        for sample, role in tqdm(
            roles, desc="checking labels", unit="image", disable=not self.progress, leave=False
        ):
            try:
                _, labels = read_sample(sample, self.data)
            except (InvalidImageError, UnknownColorError) as exc:
                problems.append(str(exc))
                continue
            path, size, stored = store.store_labels(sample, labels, role)
            self.labels_at[(sample.key, role)] = (path, size)
            if role == "train":
                self.counts += count_classes(stored, self.label_set)
        if problems:
            raise DataError(
                f"{len(problems)} of {len(roles)} training/validation files cannot be used "
                "(fix or remove them; nothing was trained):\n  "
                + "\n  ".join(problems[:10])
                + (f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else "")
            )

    def class_report(self) -> None:
        if not self.counts.any():
            raise DataError(
                "the training labels hold no pixel of any trained class (only ignored ids or "
                f"unlabelled pixels) of {self.label_set.describe()}; nothing can be learnt"
            )
        names = self.label_set.names
        missing = [names[i] for i in self.label_set.trained_ids if self.counts[i] == 0]
        if missing:
            log.warning(
                "%d class(es) have no training pixels and will never be predicted: %s",
                len(missing),
                ", ".join(missing),
            )
        self.weights_by_id = class_weights(self.config.class_weights, self.counts, self.label_set)

    def prepare(
        self, store: FeatureStore, samples: Sequence[Sample], role: str, stats: FeatureStats | None
    ) -> list[Prepared]:
        views = 2 if role == "train" and self.config.augment != "none" else 1
        out = []
        for sample in tqdm(
            samples, desc=f"features ({role})", unit="image", disable=not self.progress
        ):
            path, size = self.labels_at[(sample.key, role)]
            out.append(store.prepare(sample, path, size, views, stats if role == "train" else None))
        return out

    # -- training -----------------------------------------------------------------------------

    def epoch(self, trainer: Trainer, number: int, sampler: CropSampler) -> float:
        """Train one epoch (0-based ``number``); returns its mean loss."""
        losses = []
        with tqdm(
            total=sampler.steps_per_epoch,
            desc=f"epoch {number + 1}/{self.config.epochs}",
            unit="step",
            disable=not self.progress,
            leave=False,
        ) as bar:
            for features, targets in sampler.batches(sampler.plan(number)):
                losses.append(trainer.train_step(features, targets))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
        return float(np.mean(losses))

    def validate_and_record(
        self, trainer: Trainer, number: int, loss: float, started: float
    ) -> EpochRecord:
        """Validate after epoch ``number``; keep the head if it is the best so far."""
        result = evaluate_head(trainer.module, self.val, self.label_set)
        score = -1.0 if result.miou is None else result.miou
        improved = self.state["best_miou"] is None or score > self.state["best_miou"]
        if improved:
            self.best_weights = trainer.weights()
            self.state.update(
                best_epoch=number + 1,
                best_miou=score,
                since_best=0,
                best_confusion=result.confusion.to_dict(),
            )
        else:
            self.state["since_best"] += 1
        record = EpochRecord(
            number + 1,
            loss,
            result.miou,
            result.pixel_accuracy,
            trainer.last_rate(),
            time.perf_counter() - started,
            improved,
        )
        self.history.append(record)
        return record


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            changed.append(key)
    return changed


def _remove_own_files(head_dir: Path) -> None:
    # Cached features stay: they are named by content and backbone, so they are still right.
    for name in _OWN_FILES:
        (head_dir / name).unlink(missing_ok=True)


def finetune(
    images: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    head_dir: str | os.PathLike[str],
    *,
    backbone: FeatureBackend,
    base_model: str,
    data: DataOptions | None = None,
    config: FinetuneConfig | None = None,
    val_images: str | os.PathLike[str] | None = None,
    val_labels: str | os.PathLike[str] | None = None,
    feature_cache: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    frozen: Segmenter | None = None,
    progress: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> FinetuneResult:
    """Train a head on ``backbone``'s frozen features; write it to ``head_dir``.

    Images pair with label files by name (as ``camvidseg evaluate`` pairs them). Without
    validation folders, ``config.val_split`` of the images (by name, seeded) is held out. Every
    label and image is checked first; then features are computed once per image (and its mirror
    image) and cached as float16 on disk (``head_dir/features``, removed when the run completes,
    or ``feature_cache``, kept). Each epoch trains on random crops and validates on the whole
    held-out images; the head with the best validation mIoU is saved after every epoch that
    improves it, with ``head.json``, ``metrics.json``, ``curves.png`` and a checkpoint. Calling
    again with the same ``head_dir`` resumes from that checkpoint (the settings must be the
    same, or ``overwrite`` starts over). Ctrl-C raises :class:`FinetuneInterrupted` after
    saving.

    Args:
        images: Folder (recursed) or file of training images.
        labels: Folder of label files (``*_L.png`` colours, SegNet index PNGs, indexed PNGs).
        head_dir: Output folder.
        backbone: The frozen model (its ``get_features``).
        base_model: Its handle, recorded in ``head.json``.
        data: How labels are read (label set, format, unknown colours, ``max_side``).
        config: Training settings.
        val_images: Validation images (instead of a split), with ``val_labels``.
        val_labels: Their labels.
        feature_cache: Keep features here (shared between runs) instead of ``head_dir``.
        overwrite: Discard a previous run in ``head_dir`` instead of resuming it.
        frozen: A Segmenter of the frozen model: for CamVid-32/-11 label sets its validation
            mIoU is measured first, for comparison.
        progress: Progress bars on stderr.
        on_epoch: Called after every epoch with its record (e.g. to print a summary line).

    Returns:
        The best epoch, its validation metrics, the frozen model's, and the history.

    Raises:
        DataError: images or labels that cannot be used (all listed), or no pairs at all.
        ConfigError: bad settings, or a previous run in ``head_dir`` with other settings or on
            another backbone.
        FinetuneInterrupted: on Ctrl-C (a ``KeyboardInterrupt``).
    """
    data = data or DataOptions()
    config = config or FinetuneConfig()
    head = Path(head_dir)
    train, val, val_label_dir = _samples(images, labels, val_images, val_labels, config)
    run = _Run(head, backbone, base_model, data, config, progress)
    if overwrite:
        _remove_own_files(head)
    fingerprint = backbone_fingerprint(backbone)
    arrays = _resume(run, run.settings(train, val), fingerprint)
    if run.state["complete"]:
        log.info("%s is complete (%d epochs): nothing to do", head, len(run.history))
        return _result(run, len(run.history))
    resumed_from = len(run.history)
    try:
        trainer, sampler = _prepare(run, train, val, fingerprint, arrays, feature_cache)
        if (
            run.state["frozen_confusion"] is None
            and frozen is not None
            and data.label_set.is_camvid
        ):
            frozen_result = _evaluate_frozen(frozen, run, val, val_label_dir)
            run.state["frozen_confusion"] = frozen_result.confusion.to_dict()
        _train(run, trainer, sampler, on_epoch)
    except KeyboardInterrupt:
        best_epoch = run.state["best_epoch"]
        raise FinetuneInterrupted(
            head, len(run.history), best_epoch, run.state["best_miou"] if best_epoch else None
        ) from None
    run.save(trainer, complete=True, improved=True)
    feature_dir = head / _FEATURES_DIR
    if feature_cache is None and feature_dir.is_dir():
        shutil.rmtree(feature_dir, ignore_errors=True)
    return _result(run, resumed_from)


def _samples(
    images: str | os.PathLike[str],
    labels: str | os.PathLike[str],
    val_images: str | os.PathLike[str] | None,
    val_labels: str | os.PathLike[str] | None,
    config: FinetuneConfig,
) -> tuple[list[Sample], list[Sample], Path]:
    """``(train, val, folder of the validation labels)``."""
    if (val_images is None) != (val_labels is None):
        raise ConfigError("validation folders come in pairs: give both val images and val labels")
    samples, unlabelled = find_samples(images, labels)
    if not samples:
        raise DataError(
            f"no image in {images} pairs with a label file in {labels}; files pair by name: "
            "'x.png' with 'x_L.png' or 'x.png'"
        )
    if unlabelled:
        log.warning(
            "%d image(s) have no label file and are not used, e.g. %s",
            len(unlabelled),
            unlabelled[0],
        )
    if val_images is None or val_labels is None:
        train, val = split_samples(samples, config.val_split, config.seed)
        return train, val, Path(labels)
    val = find_samples(val_images, val_labels)[0]
    if not val:
        raise DataError(f"no image in {val_images} pairs with a label file in {val_labels}")
    return samples, val, Path(val_labels)


def _resume(
    run: _Run, settings: dict[str, Any], fingerprint: str
) -> dict[str, NDArray[Any]] | None:
    """Load the checkpoint of ``run``'s folder into it (checking that it is the same run), or
    start a new state; returns the checkpoint's arrays (``None`` for a new run)."""
    head = run.head_dir
    previous = read_checkpoint(run.checkpoint_path)
    if previous is None:
        if (head / HEAD_FILE).exists():
            raise ConfigError(
                f"{head} holds a head but no checkpoint to resume; pass --overwrite "
                "(overwrite=True) to train a new one there, or choose another folder"
            )
        run.state = {
            "format": _CHECKPOINT_FORMAT,
            "version": 1,
            "settings": settings,
            "fingerprint": fingerprint,
            "best_epoch": None,
            "best_miou": None,
            "since_best": 0,
            "stopped_early": False,
            "complete": False,
            "frozen_confusion": None,
            "best_confusion": None,
        }
        return None
    state, arrays = previous
    if state.get("format") != _CHECKPOINT_FORMAT:
        raise ConfigError(f"{run.checkpoint_path}: not a finetune checkpoint")
    changed = _differences(state["settings"], settings)
    if changed:
        raise ConfigError(
            f"{head} holds a run with other settings ({', '.join(changed)} differ); run with "
            "the same settings to resume it, pass --overwrite to start over, or choose another "
            "folder"
        )
    if not same_backbone(state["fingerprint"], fingerprint):
        raise ConfigError(
            f"{head} was trained on another backbone ({state['settings']['base_model']}); "
            "pass --overwrite to start over with this one"
        )
    run.state = state
    run.history = [EpochRecord.from_dict(r) for r in state["history"]]
    if not state["complete"]:
        log.info("resuming %s after epoch %d", head, len(run.history))
    return arrays


def _prepare(
    run: _Run,
    train: Sequence[Sample],
    val: Sequence[Sample],
    fingerprint: str,
    arrays: dict[str, NDArray[Any]] | None,
    feature_cache: str | os.PathLike[str] | None,
) -> tuple[Trainer, CropSampler]:
    """Check the data, compute the features, build the trainer (fresh or resumed)."""
    from camvidseg.finetune.trainer import Trainer

    config = run.config
    run.head_dir.mkdir(parents=True, exist_ok=True)
    folder = Path(feature_cache) if feature_cache is not None else run.head_dir / _FEATURES_DIR
    store = FeatureStore(folder, run.backbone, fingerprint, run.data)
    run.scan(store, train, val)
    run.class_report()
    stats = FeatureStats() if arrays is None else None
    run.train = run.prepare(store, train, "train", stats)
    run.val = run.prepare(store, val, "val", None)
    log.info("features: %d computed, %d reused", store.computed, store.reused)
    assert store.feature_dim is not None
    sampler = CropSampler(run.train, run.label_set, config, store)
    if stats is not None:
        mean, scale = stats.mean_and_scale()
        initial = HeadWeights.initial(
            config.head,
            store.feature_dim,
            run.label_set.channels,
            width=config.width,
            seed=config.seed,
            mean=mean,
            scale=scale,
        )
    else:
        assert arrays is not None
        initial = HeadWeights.from_arrays(config.head, _prefixed(arrays, "weights/"))
    trainer = Trainer(
        initial,
        run.weights_by_id[list(run.label_set.trained_ids)],
        total_steps=sampler.steps_per_epoch * config.epochs,
        peak_rate=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    if arrays is not None:
        trainer.load_state(arrays)
        run.best_weights = HeadWeights.from_arrays(config.head, _prefixed(arrays, "best/"))
    log.info(
        "training a %s head on %d images (%d held out): %d steps of %d crops of %dx%d per epoch",
        config.head,
        len(run.train),
        len(run.val),
        sampler.steps_per_epoch,
        config.batch_size,
        sampler.crop[0],
        sampler.crop[1],
    )
    return trainer, sampler


def _prefixed(arrays: dict[str, NDArray[Any]], prefix: str) -> dict[str, NDArray[Any]]:
    return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}


def _train(
    run: _Run,
    trainer: Trainer,
    sampler: CropSampler,
    on_epoch: Callable[[EpochRecord], None] | None,
) -> None:
    """Epochs until the last one, or early stopping; saves after each."""
    config = run.config
    while len(run.history) < config.epochs and not run.state["stopped_early"]:
        number = len(run.history)
        started = time.perf_counter()
        loss = run.epoch(trainer, number, sampler)
        record = run.validate_and_record(trainer, number, loss, started)
        log.info("%s", record.summary(config.epochs))
        if config.patience and run.state["since_best"] >= config.patience:
            run.state["stopped_early"] = True
            log.info("no better validation mIoU for %d epochs: stopping", config.patience)
        run.save(trainer, complete=False, improved=record.best)
        if on_epoch is not None:
            on_epoch(record)


def _result(run: _Run, resumed_from: int) -> FinetuneResult:
    return FinetuneResult(
        head_dir=run.head_dir,
        best_epoch=int(run.state["best_epoch"]),
        validation=_confusion(run.state["best_confusion"]),
        frozen=None
        if run.state["frozen_confusion"] is None
        else _confusion(run.state["frozen_confusion"]),
        history=tuple(run.history),
        epochs_done=len(run.history),
        resumed_from=resumed_from,
        stopped_early=bool(run.state["stopped_early"]),
    )


def _confusion(data: dict[str, Any]) -> EvaluationResult:
    return ConfusionMatrix.from_dict(data).compute()


def _evaluate_frozen(
    segmenter: Segmenter, run: _Run, val: Sequence[Sample], label_dir: Path
) -> EvaluationResult:
    from camvidseg.evaluation import evaluate_segmenter

    log.info("evaluating the frozen model on the %d validation images", len(val))
    result = evaluate_segmenter(
        segmenter,
        [s.image for s in val],
        label_dir,
        classes=32 if run.label_set == LabelSet.camvid32() else 11,
        gt_format=run.data.gt_format,
        unknown=run.data.unknown,
        grouping=run.data.grouping,
        progress=run.progress,
    )
    log.info("frozen model: val mIoU %s", result.miou)
    return result
