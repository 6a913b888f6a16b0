"""open_backend: one resolver per kind of model handle, tried in order."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import camvidseg
from camvidseg import ConfigError, ModelLoadError, Segmenter
from camvidseg.backends import (
    DEFAULT_HANDLE,
    Backend,
    NearestColorBackend,
    OpenOptions,
    Resolver,
    SpeckleNoiseBackend,
    open_backend,
    register_resolver,
    resolver_for,
)
from camvidseg.backends.fake import FakeHandle, parse_fake_handle
from camvidseg.backends.handles import KAGGLE_HANDLE
from camvidseg.backends.resolver import (
    FakeResolver,
    KaggleResolver,
    SavedModelResolver,
    UrlResolver,
    reset_resolvers,
    resolvers,
    unregister_resolver,
)
from camvidseg.config import SegmentConfig
from camvidseg.testing import street_scene

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True)
def builtin_resolvers() -> Iterator[None]:
    """Every test starts and ends with the built-in resolvers only."""
    reset_resolvers()
    yield
    reset_resolvers()


class _Marked(NearestColorBackend):
    """A fake whose name says which resolver opened it."""

    @property
    def name(self) -> str:
        return "opened-by-custom"


class _CustomFake(Resolver):
    name = "custom-fake"
    description = "a custom resolver for fake: handles"

    def is_supported(self, handle: str) -> bool:
        return handle.startswith("fake:")

    def open(self, handle: str, options: OpenOptions) -> Backend:
        return _Marked()


class _IRFolder(Resolver):
    """Stands in for another kind of model folder (e.g. an OpenVINO IR folder)."""

    name = "ir-folder"
    description = "a folder holding model.xml"

    def is_supported(self, handle: str) -> bool:
        return (Path(handle) / "model.xml").is_file()

    def open(self, handle: str, options: OpenOptions) -> Backend:
        return _Marked()


# -- each kind and the order -----------------------------------------------------------------------


def test_builtin_order() -> None:
    assert [r.name for r in resolvers()] == ["fake", "openvino", "savedmodel", "url", "kaggle"]


@pytest.mark.parametrize(
    ("handle", "expected"),
    [
        ("fake:33", {"fake"}),
        ("fake:noisy?latency=0.1", {"fake"}),
        (DEFAULT_HANDLE, {"url"}),
        ("http://example.com/model.tar.gz", {"url"}),
        ("gs://bucket/hrnet", {"url"}),
        (KAGGLE_HANDLE, {"kaggle"}),
        ("google/hrnet/tensorFlow2/camvid-hrnetv2-w48", {"kaggle"}),
        ("./google/hrnet/tensorFlow2/camvid", set()),
        ("/nonexistent/model", set()),
        ("models/hrnet", set()),
    ],
)
def test_is_supported_of_each_kind(handle: str, expected: set[str]) -> None:
    supported = {r.name for r in resolvers() if r.is_supported(handle)}
    assert supported == expected


def test_an_existing_path_is_a_savedmodel_folder_even_if_it_looks_like_another_kind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert SavedModelResolver().is_supported(str(tmp_path))
    assert SavedModelResolver().is_supported("~") == Path("~").expanduser().exists()
    monkeypatch.chdir(tmp_path)
    kaggle_like = "owner/model/framework/variation"
    assert resolver_for(kaggle_like).name == "kaggle"
    (tmp_path / kaggle_like).mkdir(parents=True)
    assert resolver_for(kaggle_like).name == "savedmodel"
    assert resolver_for(Path(kaggle_like)).name == "savedmodel"  # os.PathLike too
    # A URL is never a path, even where a folder of that name exists.
    (tmp_path / "https:").mkdir()
    assert not SavedModelResolver().is_supported("https://example.com/m")
    assert UrlResolver().is_supported("https://example.com/m")
    assert not KaggleResolver().is_supported("https://a/b/c/d")
    assert not FakeResolver().is_supported(str(tmp_path / "fake:33"))


# -- fake: handles from the library ----------------------------------------------------------------


def test_fake_handles_open_the_fakes() -> None:
    plain = open_backend("fake:33")
    assert isinstance(plain, NearestColorBackend)
    assert (plain.channels, plain.latency) == (33, 0.0)
    void32 = open_backend("fake:32?latency=0.25")
    assert isinstance(void32, NearestColorBackend)
    assert (void32.channels, void32.latency) == (32, 0.25)
    noisy = open_backend("fake:noisy", input_multiple=8)
    assert isinstance(noisy, SpeckleNoiseBackend)
    assert noisy.name == "fake:nearest-color-33+speckle0.1/0"
    assert noisy.input_multiple == 8
    assert open_backend("fake:").name == "fake:nearest-color-33"


def test_segmenter_from_hub_opens_fake_handles() -> None:
    image, truth = street_scene(24, 32, seed=4)
    segmenter = Segmenter.from_hub("fake:33", batch_size=2)
    assert segmenter.batch_size == 2
    np.testing.assert_array_equal(segmenter.segment(image).labels, truth)
    void32 = Segmenter.from_hub("fake:32").segment(image)
    np.testing.assert_array_equal(void32.labels, truth)


def test_a_config_naming_a_fake_model_builds_its_segmenter() -> None:
    image, _ = street_scene(24, 32, seed=5)
    segmenter = SegmentConfig(model="fake:noisy", classes=11, batch_size=3).build_segmenter()
    assert isinstance(segmenter.backend, SpeckleNoiseBackend)
    assert (segmenter.palette.name, segmenter.batch_size) == ("camvid11", 3)
    reference = Segmenter(
        SpeckleNoiseBackend(), palette=camvidseg.CamVidPalette.camvid11(), batch_size=3
    )
    np.testing.assert_array_equal(segmenter.segment(image).labels, reference.segment(image).labels)
    # The speckles are there: the noisy model differs from the clean one somewhere.
    clean = SegmentConfig(model="fake:33", classes=11).build_segmenter().segment(image)
    assert (clean.labels != segmenter.segment(image).labels).any()


@pytest.mark.parametrize(
    ("handle", "message"),
    [
        ("fake:7", "unknown fake model 'fake:7' (use fake:33, fake:32 or fake:noisy)"),
        ("fake:noisy32", "unknown fake model"),
        ("fake:33?speed=2", "unknown fake model parameter 'speed' in 'fake:33?speed=2'"),
        ("fake:33?latency=-1", "fake model latency must be a number >= 0 (got -1.0)"),
        ("fake:33?latency=soon", "fake model latency must be a number >= 0 (got 'soon')"),
        ("fake:33?latency=inf", "fake model latency must be a number >= 0 (got inf)"),
    ],
)
def test_bad_fake_handles(handle: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        open_backend(handle)
    assert message in str(info.value)


@given(
    channels=st.sampled_from([32, 33]),
    latency=st.floats(0.0, 1e6, allow_nan=False),
    noisy=st.booleans(),
)
def test_fake_handle_round_trip(channels: int, latency: float, noisy: bool) -> None:
    spec = "noisy" if noisy else str(channels)
    parsed = parse_fake_handle(f"fake:{spec}?latency={latency!r}")
    assert parsed == FakeHandle(33 if noisy else channels, latency, noisy)


# -- registering resolvers -------------------------------------------------------------------------


def test_a_registered_resolver_wins() -> None:
    register_resolver(_CustomFake())
    assert resolvers()[0].name == "custom-fake"
    assert open_backend("fake:33").name == "opened-by-custom"
    assert Segmenter.from_hub("fake:32").backend.name == "opened-by-custom"
    unregister_resolver("custom-fake")
    assert open_backend("fake:33").name == "fake:nearest-color-33"


def test_register_before_a_named_resolver(tmp_path: Path) -> None:
    register_resolver(_IRFolder(), before="openvino")
    assert [r.name for r in resolvers()] == [
        "fake",
        "ir-folder",
        "openvino",
        "savedmodel",
        "url",
        "kaggle",
    ]
    (tmp_path / "ir").mkdir()
    (tmp_path / "ir" / "model.xml").write_text("<net/>")
    (tmp_path / "saved").mkdir()
    assert resolver_for(tmp_path / "ir").name == "ir-folder"
    assert open_backend(tmp_path / "ir").name == "opened-by-custom"
    assert resolver_for(tmp_path / "saved").name == "savedmodel"
    # Registering under the same name again replaces it (idempotent imports).
    register_resolver(_IRFolder(), before="openvino")
    assert [r.name for r in resolvers()].count("ir-folder") == 1
    reset_resolvers()
    assert resolver_for(tmp_path / "ir").name == "openvino"  # the built-in one


def test_registering_checks_its_arguments() -> None:
    with pytest.raises(ConfigError, match=r"resolver must be a Resolver \(got 'fake:'\)"):
        register_resolver("fake:")  # type: ignore[arg-type]
    with pytest.raises(
        ConfigError, match="before must be one of fake, openvino, savedmodel, url, kaggle"
    ):
        register_resolver(_IRFolder(), before="nope")
    with pytest.raises(ConfigError, match="resolver name must be one of"):
        unregister_resolver("nope")
    assert [r.name for r in resolvers()] == ["fake", "openvino", "savedmodel", "url", "kaggle"]


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, r"timeout must be a number > 0 \(got 0\)"),
        ({"timeout": float("nan")}, r"timeout must be a number > 0"),
        ({"precision": "fp16"}, r"precision must be fp32 or bf16 \(got 'fp16'\)"),
        (
            {"precision": "bf16"},
            r"precision \(with a fake model.*\) must be one of fp32 \(got 'bf16'\)",
        ),
        ({"threads": 0}, r"threads must be an integer >= 1 or null \(got 0\)"),
        ({"input_multiple": 0}, r"input_multiple must be an integer >= 1 \(got 0\)"),
        ({"cache_dir": 3}, r"cache_dir must be a folder path or null \(got 3\)"),
        ({"threads": 2}, r"threads cannot be set with a fake model \(fake:33, fake:32, "),
    ],
)
def test_open_options_are_validated(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_backend("fake:33", **options)  # type: ignore[arg-type]


def test_open_options_value() -> None:
    options = OpenOptions(cache_dir="~/tfhub", timeout=5, threads=4)
    assert options.cache_dir == Path("~/tfhub").expanduser()
    assert (options.timeout, options.precision, options.threads) == (5, "fp32", 4)
    assert OpenOptions() == OpenOptions(cache_dir=None, timeout=30.0)


# -- failures --------------------------------------------------------------------------------------


def test_a_missing_local_path_lists_every_kind_tried(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "model"
    with pytest.raises(ModelLoadError) as info:
        open_backend(missing)
    message = str(info.value)
    assert isinstance(info.value, OSError)
    assert message.startswith(f"cannot open model {str(missing)!r}: there is no file or folder")
    for resolver in resolvers():
        assert resolver.description in message
    assert message.index("1. a fake model") < message.index("3. a local SavedModel folder")
    with pytest.raises(ModelLoadError, match="cannot open model 'models/hrnet'"):
        SegmentConfig(model="models/hrnet").build_segmenter()


def test_a_missing_local_path_fails_without_loading_tensorflow(tmp_path: Path) -> None:
    # Nothing is downloaded or imported before a resolver takes the handle: the error comes at
    # once, whatever the network does.
    code = (
        "import sys\n"
        "from camvidseg import ModelLoadError, Segmenter\n"
        "try:\n"
        f"    Segmenter.from_hub({str(tmp_path / 'missing')!r})\n"
        "except ModelLoadError as exc:\n"
        "    print(str(exc).startswith('cannot open model '))\n"
        "print(sorted(m for m in ('tensorflow', 'tensorflow_hub', 'kagglehub') "
        "if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.splitlines() == ["True", "[]"]


# -- one default handle ----------------------------------------------------------------------------


def test_one_default_handle_under_every_old_name() -> None:
    from camvidseg import models, segmenter
    from camvidseg.backends import handles, tfhub
    from camvidseg.cli import _common

    assert DEFAULT_HANDLE == "https://tfhub.dev/google/HRNet/camvid-hrnetv2-w48/1"
    for same in (
        camvidseg.DEFAULT_HANDLE,
        segmenter.DEFAULT_HANDLE,
        tfhub.DEFAULT_HANDLE,
        models.DEFAULT_HANDLE,
        _common.DEFAULT_MODEL,
    ):
        assert same is handles.DEFAULT_HANDLE


@pytest.mark.tf
def test_a_savedmodel_folder_opens_with_tensorflow(fake_savedmodel: Path) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    backend = open_backend(fake_savedmodel, input_multiple=4)
    assert isinstance(backend, TFHubBackend)
    assert (backend.name, backend.input_multiple) == (str(fake_savedmodel), 4)
    image, truth = street_scene(24, 32, seed=2)
    config = SegmentConfig(model=str(fake_savedmodel), batch_size=2)
    np.testing.assert_array_equal(config.build_segmenter().segment(image).labels, truth)
