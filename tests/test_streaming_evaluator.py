"""StreamingEvaluator: scoring label maps one at a time, from several threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camvidseg import CamVidPalette, ConfigError, Segmenter, get_grouping
from camvidseg.evaluation import StreamingEvaluator, evaluate_segmenter
from camvidseg.testing import SpeckleNoiseBackend, street_scene

C32 = CamVidPalette.camvid32()
C11 = CamVidPalette.camvid11()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for i in range(6):
        image, truth = street_scene(30, 40, seed=i)
        Image.fromarray(image).save(tmp_path / f"f{i}.png")
        Image.fromarray(C32.colorize(truth)).save(tmp_path / f"f{i}_L.png")
    return tmp_path


def test_concurrent_adds_equal_evaluate_segmenter(folder: Path) -> None:
    segmenter = Segmenter(SpeckleNoiseBackend())
    images = [folder / f"f{i}.png" for i in range(6)]
    expected = evaluate_segmenter(segmenter, images, folder)
    for classes in (32, 11):
        evaluator = StreamingEvaluator(folder, classes=classes)
        labels = [segmenter.segment(path).labels for path in images]
        with ThreadPoolExecutor(4) as pool:
            futures = [
                pool.submit(evaluator.add, path, label_map, C32)
                for path, label_map in zip(images, labels, strict=True)
            ]
        for future in futures:
            future.result()
        result = evaluator.result()
        reference = expected.confusion if classes == 32 else expected.confusion.regroup()
        assert result.confusion.equals(reference)
        assert result.problems == ()


def test_problems_and_label_files(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    evaluator = StreamingEvaluator(folder)
    _, truth = street_scene(30, 40, seed=0)
    evaluator.add("elsewhere/x.png", truth, C32)  # no ground truth
    evaluator.add("f1.jpg", truth[:20], C32)  # size mismatch
    evaluator.skip("f2.png", "not segmented")
    labels_dir = tmp_path_factory.mktemp("labels")
    Image.fromarray(truth).save(labels_dir / "f0.png")  # grayscale ids, read as CamVid-32 ids
    evaluator.add_file("photos/f0.jpg", labels_dir / "f0.png")
    (labels_dir / "broken.png").write_bytes(b"no")
    evaluator.add_file("f3.png", labels_dir / "broken.png")
    result = evaluator.result()
    assert result.num_images == 1
    assert result.miou == 1.0
    assert [p.kind for p in result.problems] == [
        "missing_ground_truth",
        "size_mismatch",
        "missing_prediction",
        "unreadable",
    ]
    assert "elsewhere/x.png: no ground truth for 'x'" in result.problems[0].message


def test_camvid11_labels_in_32_classes_is_an_error(folder: Path) -> None:
    evaluator = StreamingEvaluator(folder)
    grouped = get_grouping("merge").remap(street_scene(30, 40, seed=4)[1])
    with pytest.raises(ConfigError, match="cannot evaluate camvid11 labels as camvid32"):
        evaluator.add("f4.png", grouped, C11)


def test_fails_early_on_unusable_ground_truth(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        StreamingEvaluator(tmp_path / "missing")
    with pytest.raises(ConfigError, match="holds no label files"):
        StreamingEvaluator(tmp_path)
    _, truth = street_scene(30, 40, seed=1)
    Image.fromarray(get_grouping("merge").remap(truth), mode="L").save(tmp_path / "f1.png")
    with pytest.raises(ConfigError, match="evaluate with --classes 11"):
        StreamingEvaluator(tmp_path)
    evaluator = StreamingEvaluator(tmp_path, classes=11)
    evaluator.add("f1.jpg", get_grouping("merge").remap(truth), C11)
    assert evaluator.result().miou == 1.0


def test_ambiguous_ground_truth(tmp_path: Path) -> None:
    _, truth = street_scene(30, 40, seed=1)
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray(C32.colorize(truth)).save(tmp_path / sub / "f1_L.png")
    evaluator = StreamingEvaluator(tmp_path)
    evaluator.add("f1.png", truth, C32)
    result = evaluator.result()
    assert [p.kind for p in result.problems] == ["ambiguous"]
    assert result.num_images == 0
    assert np.all(result.confusion.counts == 0)
