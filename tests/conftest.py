from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def fake_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 33-channel fake HRNet SavedModel, built once per test session."""
    pytest.importorskip("tensorflow_hub")
    from camvidseg.testing import write_fake_savedmodel

    return write_fake_savedmodel(tmp_path_factory.mktemp("models") / "fake33")


@pytest.fixture(scope="session")
def fake_savedmodel_32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32-channel (Void in channel 0) fake HRNet SavedModel."""
    pytest.importorskip("tensorflow_hub")
    from camvidseg.testing import write_fake_savedmodel

    return write_fake_savedmodel(tmp_path_factory.mktemp("models") / "fake32", channels=32)


@pytest.fixture(scope="session")
def fake_openvino(fake_savedmodel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fake_savedmodel`` converted to an OpenVINO IR folder (with ``get_features``)."""
    pytest.importorskip("openvino")
    from camvidseg.backends.convert import convert_to_openvino

    out = tmp_path_factory.mktemp("openvino") / "fake33"
    convert_to_openvino(str(fake_savedmodel), out, features=True)
    return out


@pytest.fixture
def isolated_tfhub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "tfhub_cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def street_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``images/`` (PNG) and ``gt/`` (``*_L.png``, exact ground truth) of four street scenes."""
    from PIL import Image

    from camvidseg.palette import CamVidPalette
    from camvidseg.testing import street_scene

    root = tmp_path_factory.mktemp("street_dataset")
    (root / "images").mkdir()
    (root / "gt").mkdir()
    for i in range(4):
        image, truth = street_scene(72, 96, seed=i)
        Image.fromarray(image).save(root / "images" / f"f{i}.png")
        Image.fromarray(CamVidPalette.camvid32().colorize(truth)).save(root / "gt" / f"f{i}_L.png")
    return root
