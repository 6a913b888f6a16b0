"""Fine-tuning a head on the fake SavedModel: learning, the head folder, exact reproduction by
the saved head and the exported SavedModel, resume, Ctrl-C, the CLI."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from camvidseg import ConfigError, Segmenter
from camvidseg.backends.head import HEAD_FILE, HeadBackend, read_head, same_backbone
from camvidseg.backends.tfhub import TFHubBackend
from camvidseg.cli import main
from camvidseg.finetune import (
    DataOptions,
    EpochRecord,
    FinetuneConfig,
    FinetuneInterrupted,
    FinetuneResult,
    export_savedmodel,
    finetune,
)
from camvidseg.finetune.data import read_labels
from camvidseg.imageio import read_label_png
from camvidseg.labelset import LabelSet, read_model_metadata
from camvidseg.metrics import ConfusionMatrix
from camvidseg.models import describe, verify
from tests.finetune_data import block_scene, write_blocks, write_streets

pytestmark = pytest.mark.tf

#: Settings that learn the block task in a few seconds (the default 3x3 head, narrow).
FAST = FinetuneConfig(epochs=10, batch_size=2, width=16, learning_rate=5e-3, patience=0)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_blocks(tmp_path_factory.mktemp("blocks"), 12)


@pytest.fixture(scope="module")
def backbone(fake_savedmodel: Path) -> TFHubBackend:
    return TFHubBackend.load(str(fake_savedmodel))


@pytest.fixture(scope="module")
def trained(
    blocks: Path, backbone: TFHubBackend, fake_savedmodel: Path
) -> tuple[FinetuneResult, list[EpochRecord]]:
    records: list[EpochRecord] = []
    result = finetune(
        blocks / "images",
        blocks / "labels",
        blocks / "head",
        backbone=backbone,
        base_model=str(fake_savedmodel),
        data=DataOptions(label_set=LabelSet.from_file(blocks / "classes.json")),
        config=FAST,
        on_epoch=records.append,
    )
    return result, records


def test_loss_falls_and_the_head_learns_the_task(
    trained: tuple[FinetuneResult, list[EpochRecord]],
) -> None:
    result, records = trained
    assert [r.epoch for r in records] == list(range(1, 11))
    assert records[-1].loss < 0.3 * records[0].loss
    assert result.validation.miou is not None
    assert result.validation.miou >= 0.9
    best = records[result.best_epoch - 1]
    assert best.best
    assert best.val_miou == result.validation.miou
    assert result.frozen is None  # a custom label set: no frozen comparison
    assert result.comparison().startswith("val mIoU: fine-tuned 0.9")


def test_head_folder(trained: tuple[FinetuneResult, list[EpochRecord]], blocks: Path) -> None:
    result, records = trained
    head_dir = result.head_dir
    assert sorted(p.name for p in head_dir.iterdir()) == [
        "checkpoint.npz",
        "curves.png",
        "head.json",
        "head.weights.npz",
        "metrics.json",
    ]  # the feature cache is gone once training completed
    info = json.loads((head_dir / HEAD_FILE).read_text())
    assert info["format"] == "camvidseg-head"
    assert [c["name"] for c in info["label_set"]["classes"]] == ["red", "green", "blue", "void"]
    assert info["label_set"]["ignore_ids"] == [3]
    assert info["kind"] == "3x3"
    assert (info["feature_dim"], info["width"], info["stride"]) == (720, 16, 4)
    assert info["training"]["learning_rate"] == 5e-3
    assert info["seed"] == 0
    assert info["best_epoch"] == result.best_epoch
    assert info["complete"] is True
    assert set(info["versions"]) == {"camvidseg", "tensorflow", "numpy", "python"}
    assert len(info["split"]["val"]) == 2
    assert len(info["split"]["train"]) == 10
    assert info["base_model"].endswith("fake33")
    assert same_backbone(
        info["backbone_fingerprint"], read_head(head_dir).info.backbone_fingerprint
    )
    metrics = json.loads((head_dir / "metrics.json").read_text())
    assert metrics["miou"] == result.validation.miou
    assert metrics["best_epoch"] == result.best_epoch
    assert set(metrics["validation"]["per_class"]) == {"red", "green", "blue"}
    assert metrics["validation"]["confusion_matrix"] == result.validation.confusion.to_dict()
    assert sum(metrics["class_frequencies"].values()) == pytest.approx(1.0)
    assert metrics["class_pixels"]["void"] == 0  # ignored: never counted
    assert metrics["class_weights"] == {"red": 1.0, "green": 1.0, "blue": 1.0, "void": 0.0}
    assert [h["loss"] for h in metrics["history"]] == [r.loss for r in records]
    with Image.open(head_dir / "curves.png") as curves:
        assert (curves.format, curves.size) == ("PNG", (880, 340))


def test_saved_head_reproduces_the_validation_exactly(
    trained: tuple[FinetuneResult, list[EpochRecord]],
    blocks: Path,
    fake_savedmodel: Path,
) -> None:
    result, _ = trained
    segmenter = Segmenter.from_hub(fake_savedmodel, head=result.head_dir)
    assert isinstance(segmenter.backend, HeadBackend)
    assert segmenter.palette.name == "classes"
    val = json.loads((result.head_dir / HEAD_FILE).read_text())["split"]["val"]
    images = [blocks / "images" / f"{key}.png" for key in val]
    # Segmenting the validation images with the saved head gives the confusion matrix that
    # training measured with the head in memory, count for count.
    evaluated = _evaluate_custom(segmenter, images, blocks / "labels")
    assert evaluated.equals(result.validation.confusion)


def _evaluate_custom(segmenter: Segmenter, images: list[Path], labels: Path) -> ConfusionMatrix:
    matrix = ConfusionMatrix(segmenter.palette)
    for image in images:
        truth = np.asarray(Image.open(labels / image.name))
        matrix.update(segmenter.segment(image).labels, truth)
    return matrix


def test_export_reproduces_the_head_exactly(
    trained: tuple[FinetuneResult, list[EpochRecord]],
    backbone: TFHubBackend,
    fake_savedmodel: Path,
    tmp_path: Path,
) -> None:
    result, _ = trained
    exported = export_savedmodel(result.head_dir, backbone, tmp_path / "export")
    metadata = read_model_metadata(exported)
    assert metadata is not None
    assert metadata.channels == 3
    assert metadata.label_set.names == ("red", "green", "blue", "void")
    with_head = Segmenter.from_hub(fake_savedmodel, head=result.head_dir)
    alone = Segmenter.from_hub(exported)
    assert isinstance(alone.backend, TFHubBackend)
    assert alone.palette.name == "classes"
    image, _ = block_scene(40)
    odd = image[:30, :45]  # not a multiple of the feature stride: padded inside the model
    for picture in (image, odd):
        expected = with_head.predict_scores([picture])[0]
        got = alone.predict_scores([picture])[0]
        assert got.shape == (*picture.shape[:2], 3)
        assert np.array_equal(got, expected)
        assert np.array_equal(alone.segment(picture).labels, with_head.segment(picture).labels)
    with pytest.raises(ConfigError, match="exists and is not empty"):
        export_savedmodel(result.head_dir, backbone, exported)
    info = describe(exported)
    assert (info.channels, info.layout) == (3, "exact")
    assert [c.name for c in info.classes] == ["red", "green", "blue"]
    report = verify(exported)
    assert report.ok
    assert report.layout == "exact"


def test_head_refused_on_another_backbone(
    trained: tuple[FinetuneResult, list[EpochRecord]], tmp_path: Path
) -> None:
    from camvidseg.testing import write_fake_savedmodel

    other = write_fake_savedmodel(tmp_path / "other", feature_seed=1)
    with pytest.raises(ConfigError, match="trained on another backbone"):
        Segmenter.from_hub(other, head=trained[0].head_dir)


def _run(blocks: Path, backbone: TFHubBackend, head: Path, **kwargs: Any) -> FinetuneResult:
    options: dict[str, Any] = {
        "data": DataOptions(label_set=LabelSet.from_file(blocks / "classes.json")),
        "config": FinetuneConfig(epochs=4, batch_size=4, head="1x1", patience=0),
        "feature_cache": blocks / "features",
    }
    options.update(kwargs)
    return finetune(
        blocks / "images",
        blocks / "labels",
        head,
        backbone=backbone,
        base_model="fake",
        **options,
    )


def test_interrupt_keeps_the_best_head_and_resume_finishes_exactly(
    blocks: Path, backbone: TFHubBackend, tmp_path: Path
) -> None:
    straight = _run(blocks, backbone, tmp_path / "straight")

    def stop_after_two(record: EpochRecord) -> None:
        if record.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(FinetuneInterrupted) as excinfo:
        _run(blocks, backbone, tmp_path / "resumed", on_epoch=stop_after_two)
    assert excinfo.value.epochs_done == 2
    assert excinfo.value.best_epoch in (1, 2)
    assert "run the same command again to resume" in excinfo.value.message()
    saved = read_head(tmp_path / "resumed")  # the best head so far is there
    assert json.loads((tmp_path / "resumed" / HEAD_FILE).read_text())["complete"] is False
    assert saved.info.details["best_epoch"] == excinfo.value.best_epoch
    with pytest.raises(ConfigError, match=r"other settings \(config.learning_rate differ\)"):
        _run(
            blocks,
            backbone,
            tmp_path / "resumed",
            config=FinetuneConfig(epochs=4, batch_size=4, head="1x1", patience=0, learning_rate=1),
        )
    resumed = _run(blocks, backbone, tmp_path / "resumed")
    assert (resumed.resumed_from, resumed.epochs_done) == (2, 4)
    # Seeded and checkpointed: the interrupted run ends exactly where the straight one did.
    assert [r.loss for r in resumed.history] == [r.loss for r in straight.history]
    assert read_head(tmp_path / "resumed").weights.equals(read_head(tmp_path / "straight").weights)
    again = _run(blocks, backbone, tmp_path / "resumed")  # complete: nothing to do
    assert (again.resumed_from, again.best_epoch) == (4, resumed.best_epoch)
    assert (blocks / "features").is_dir()  # a cache given by the caller is kept


def test_an_existing_head_needs_overwrite(
    blocks: Path, backbone: TFHubBackend, tmp_path: Path
) -> None:
    head = tmp_path / "head"
    head.mkdir()
    (head / HEAD_FILE).write_text("{}")
    with pytest.raises(ConfigError, match="holds a head but no checkpoint"):
        _run(blocks, backbone, head)
    result = _run(
        blocks,
        backbone,
        head,
        overwrite=True,
        config=FinetuneConfig(epochs=1, batch_size=4, head="1x1", augment="scale"),
    )
    assert result.epochs_done == 1
    assert read_head(head).info.kind == "1x1"


def test_cli_finetune_segment_and_interrupt(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    streets = write_streets(tmp_path / "streets", 6)
    head = tmp_path / "head"
    common = ["--model", "fake:33", "--classes", "11", "--batch-size", "4", "--width", "8"]
    data = ["finetune", str(streets / "images"), str(streets / "labels")]
    args = [*data, "-o", str(head)]
    with caplog.at_level(logging.WARNING, "camvidseg"):
        assert main([*args, *common, "--epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert "camvidseg: epoch 1/2  loss" in err
    assert "val mIoU: frozen 1.000 → fine-tuned" in err
    assert f"--head {head}" in err
    warnings = [m for m in caplog.messages if "no training pixels" in m]
    assert len(warnings) == 1
    assert "Bicyclist" in warnings[0]
    metrics = json.loads((head / "metrics.json").read_text())
    assert metrics["frozen_miou"] == 1.0
    assert read_head(head).label_set is LabelSet.camvid11()

    out = tmp_path / "out"
    seg_args = ["segment", str(streets / "images"), "-o", str(out), "--model", "fake:33"]
    assert main([*seg_args, "--head", str(head), "--outputs", "labels,panel"]) == 0
    assert (out / "panel" / "s00.png").is_file()
    labels, embedded = read_label_png(out / "labels" / "s00.png")
    assert embedded is not None
    assert embedded[:12].tolist() == LabelSet.camvid11().colors.tolist()
    assert int(labels.max()) <= 10
    manifest = json.loads((out / "manifest.json").read_text())
    assert "+head:" in json.dumps(manifest)
    capsys.readouterr()
    assert main([*seg_args, "--head", str(head), "--classes", "32"]) == 2
    assert "classes 32 does not fit the model's label set camvid11" in capsys.readouterr().err
    assert main([*args, *common, "--head", str(head)]) == 2
    assert main([*args, *common, "--export", str(tmp_path / "export")]) == 2
    assert "exporting needs a SavedModel backbone" in capsys.readouterr().err
    # tune follows the head's classes (CamVid-11 here) and writes it into the config.
    tuned = tmp_path / "tuned.json"
    tune_args = ["tune", str(streets / "images"), str(streets / "labels"), "--model", "fake:33"]
    grid = tmp_path / "grid.json"
    grid.write_text(
        '{"majority": [0, 3], "min_region": [0], "opening": [0], "closing": [0], '
        '"tta": [null], "min_confidence": [null]}'
    )
    cache = ["--cache", str(tmp_path / "cache"), "--grid", str(grid), "-o", str(tuned)]
    assert main([*tune_args, "--head", str(head), *cache]) == 0
    assert json.loads(tuned.read_text())["head"] == str(head)
    capsys.readouterr()
    again = tmp_path / "again"
    seg_config = ["segment", str(streets / "images"), "-o", str(again), "--model", "fake:33"]
    assert main([*seg_config, "--config", str(tuned), "--outputs", "labels"]) == 0
    _, embedded = read_label_png(again / "labels" / "s01.png")
    assert embedded is not None
    assert embedded[:12].tolist() == LabelSet.camvid11().colors.tolist()

    # Ctrl-C during the second epoch of a new run: exit 130, the first epoch's head is kept.
    from camvidseg.finetune import run as run_module

    real_epoch = run_module._Run.epoch
    calls = []

    def interrupted_epoch(self: Any, *a: Any, **k: Any) -> float:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(self, *a, **k)

    monkeypatch.setattr(run_module._Run, "epoch", interrupted_epoch)
    other = tmp_path / "other"
    assert main([*data, "-o", str(other), *common, "--epochs", "3", "--json"]) == 130
    assert "the best head so far (epoch 1" in capsys.readouterr().err
    assert json.loads((other / HEAD_FILE).read_text())["best_epoch"] == 1
    monkeypatch.setattr(run_module._Run, "epoch", real_epoch)
    assert main([*data, "-o", str(other), *common, "--epochs", "3", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["resumed_from"], summary["epochs_done"]) == (1, 3)


@pytest.mark.slow
def test_defaults_beat_a_majority_class_predictor(tmp_path: Path) -> None:
    """The default settings (8 epochs, 3x3 head) on 40 labelled street frames, CamVid-11."""
    from camvidseg.backends.fake import NearestColorBackend

    streets = write_streets(tmp_path / "streets", 40, height=120, width=160)
    data = DataOptions(label_set=LabelSet.camvid11())
    result = finetune(
        streets / "images",
        streets / "labels",
        tmp_path / "head",
        backbone=NearestColorBackend(),
        base_model="fake:33",
        data=data,
    )
    split = json.loads((tmp_path / "head" / HEAD_FILE).read_text())["split"]
    counts = np.zeros(256, np.int64)
    for key in split["train"]:
        counts += np.bincount(
            read_labels(streets / "labels" / f"{key}_L.png", data).ravel(), minlength=256
        )
    counts[11:] = 0
    majority = ConfusionMatrix(LabelSet.camvid11().to_palette())
    for key in split["val"]:
        truth = read_labels(streets / "labels" / f"{key}_L.png", data)
        majority.update(np.full_like(truth, int(counts.argmax())), truth)
    baseline = majority.compute().miou
    assert baseline is not None
    assert result.validation.miou is not None
    assert result.validation.miou >= baseline + 0.3
