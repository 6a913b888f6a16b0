"""The real loading path (tensorflow_hub.load) on SavedModels built by the tests."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from camvidseg import ModelLoadError, Segmenter
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.backends.tfhub import (
    DEFAULT_HANDLE,
    KAGGLE_HANDLE,
    TFHubBackend,
    cache_folder,
    classify_handle,
    resolve_cache_dir,
)
from camvidseg.testing import street_scene
from tests.childproc import CHILD_TIMEOUT, cli_command, cli_env
from tests.offline import UNREACHABLE

pytestmark = [pytest.mark.tf, pytest.mark.usefixtures("no_dns")]


@pytest.fixture(scope="module")
def scene() -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    return street_scene(48, 64, seed=11)


def test_local_savedmodel_gives_exact_labels(
    fake_savedmodel: Path, scene: tuple[NDArray[np.uint8], NDArray[np.uint8]]
) -> None:
    image, truth = scene
    segmenter = Segmenter.from_hub(fake_savedmodel)
    assert isinstance(segmenter.backend, TFHubBackend)
    seg = segmenter.segment(image)
    np.testing.assert_array_equal(seg.labels, truth)
    reference = Segmenter(NearestColorBackend()).segment(image)
    np.testing.assert_allclose(seg.confidence, reference.confidence, rtol=1e-4)
    assert segmenter.layout is not None
    assert segmenter.layout.name == "background33"


def test_32_channel_savedmodel(
    fake_savedmodel_32: Path, scene: tuple[NDArray[np.uint8], NDArray[np.uint8]]
) -> None:
    image, truth = scene
    segmenter = Segmenter.from_hub(str(fake_savedmodel_32))
    np.testing.assert_array_equal(segmenter.segment(image).labels, truth)
    assert segmenter.layout is not None
    assert segmenter.layout.name == "void32"


def test_predict_and_features_shapes(fake_savedmodel: Path) -> None:
    backend = TFHubBackend.load(str(fake_savedmodel))
    batch = np.random.default_rng(0).random((2, 10, 13, 3)).astype(np.float32)
    scores = backend.predict(batch)
    assert scores.shape == (2, 10, 13, 33)
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(scores, NearestColorBackend().predict(batch), atol=1e-5)
    assert backend.get_features(batch).shape == (2, 3, 4, 720)


def test_cache_hit_loads_without_network(
    fake_savedmodel: Path, tmp_path: Path, scene: tuple[NDArray[np.uint8], NDArray[np.uint8]]
) -> None:
    # Lay the model out the way tensorflow_hub caches a download; the URL itself is unreachable.
    cache = tmp_path / "cache"
    shutil.copytree(fake_savedmodel, cache_folder(UNREACHABLE, cache))
    segmenter = Segmenter.from_hub(UNREACHABLE, cache_dir=cache, timeout=2)
    np.testing.assert_array_equal(segmenter.segment(scene[0]).labels, scene[1])


def test_cache_dir_from_environment(fake_savedmodel: Path, isolated_tfhub_cache: Path) -> None:
    assert resolve_cache_dir() == isolated_tfhub_cache
    shutil.copytree(fake_savedmodel, cache_folder(UNREACHABLE))
    assert TFHubBackend.load(UNREACHABLE, timeout=2).name == UNREACHABLE


def test_unreachable_url_fails_with_advice(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        Segmenter.from_hub(UNREACHABLE, cache_dir=tmp_path, timeout=2)
    message = str(info.value)
    assert "could not load model" in message
    assert str(cache_folder(UNREACHABLE, tmp_path)) in message
    assert "(absent)" in message
    assert "--model" in message
    assert "TFHUB_CACHE_DIR" in message
    assert isinstance(info.value, OSError)


def test_missing_or_broken_local_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        TFHubBackend.load(str(tmp_path / "nowhere"))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "variables").mkdir()
    with pytest.raises(ModelLoadError, match=r"no saved_model\.pb"):
        TFHubBackend.load(str(tmp_path / "broken"))
    (tmp_path / "broken" / "saved_model.pb").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="could not load model"):
        TFHubBackend.load(str(tmp_path / "broken"))


def test_savedmodel_without_predict(tmp_path: Path) -> None:
    import tensorflow as tf

    tf.saved_model.save(tf.Module(), str(tmp_path / "empty"))
    with pytest.raises(ModelLoadError, match="no `predict` function"):
        TFHubBackend.load(str(tmp_path / "empty"))


def test_kaggle_handle_without_kagglehub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kagglehub", None)
    with pytest.raises(ModelLoadError, match=r"camvidseg\[kaggle\]"):
        TFHubBackend.load(KAGGLE_HANDLE)


def test_classify_handle(tmp_path: Path) -> None:
    assert classify_handle(DEFAULT_HANDLE) == "url"
    assert classify_handle("gs://bucket/model") == "url"
    assert classify_handle(KAGGLE_HANDLE) == "kaggle"
    assert classify_handle(str(tmp_path)) == "path"
    assert classify_handle("./models/hrnet") == "path"


def test_cli_offline_fails_in_one_line(tmp_path: Path) -> None:
    image, _ = street_scene(16, 16)
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "a.png")
    proc = subprocess.run(
        cli_command("segment", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"),
                    "--model", UNREACHABLE, "--cache-dir", str(tmp_path / "c"), "--timeout", "2"),
        env=cli_env(), capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("camvidseg: error: could not load model")
    assert not (tmp_path / "out" / "labels").exists()


def test_cli_with_local_savedmodel(fake_savedmodel: Path, tmp_path: Path) -> None:
    from PIL import Image

    from camvidseg.cli import main
    from camvidseg.imageio import load_label_png

    image, truth = street_scene(32, 40, seed=5)
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "frame.png")
    code = main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model",
                 str(fake_savedmodel), "-q"])  # fmt: skip
    assert code == 0
    np.testing.assert_array_equal(load_label_png(tmp_path / "out" / "labels" / "frame.png"), truth)
