from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
def isolated_groupings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Groupings registered by the test are gone after it (the registry is process-wide)."""
    import camvidseg.palette

    before = camvidseg.palette.available_groupings()
    # The palette module offers no way to unregister; swap in a copy of its registry instead.
    monkeypatch.setattr(camvidseg.palette, "_GROUPINGS", dict(camvidseg.palette._GROUPINGS))
    yield
    monkeypatch.undo()
    assert camvidseg.palette.available_groupings() == before


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail fast, and fail the test, on any name lookup other than the loopback address.

    Offline tests must not depend on the machine's resolver (a silent DNS server stalls
    ``getaddrinfo`` far longer than any socket timeout) or reach an outside host.
    """
    real = socket.getaddrinfo
    looked_up: list[str] = []

    def local_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in (None, "localhost", "127.0.0.1", "::1"):
            looked_up.append(str(name))
            raise socket.gaierror(socket.EAI_NONAME, f"no DNS in tests (looked up {name!r})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    yield
    assert looked_up == [], f"the test looked up outside hosts: {looked_up}"


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
