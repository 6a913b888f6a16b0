"""The OpenVINO backend and converter, on the small fake SavedModel (exact labels) and on tiny
hand-built OpenVINO graphs (tie rules)."""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray

from camvidseg import ConfigError, ModelLoadError, SegmentConfig, Segmenter
from camvidseg.backends import precision as precision_module
from camvidseg.backends.openvino import (
    COMPILED_CACHE_SIZE,
    METADATA_NAME,
    OpenVINOBackend,
    OpenVINOMetadata,
    is_openvino_folder,
    openvino_folder,
    read_metadata,
)
from camvidseg.backends.resolver import OpenOptions, OpenVINOResolver, open_backend, resolver_for
from camvidseg.exceptions import BackendError
from camvidseg.postprocess import ChannelLayout, labels_and_confidence
from camvidseg.testing import street_scene

ov = pytest.importorskip("openvino")
pytestmark = [pytest.mark.openvino, pytest.mark.tf]

NO_BF16 = frozenset({"fpu", "avx2", "fma"})
WITH_BF16 = NO_BF16 | {"avx512f", "avx512_bf16"}


@pytest.fixture(scope="module")
def ir33(fake_openvino: Path) -> Path:
    return fake_openvino


@pytest.fixture(scope="module")
def ir32(fake_savedmodel_32: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from camvidseg.backends.convert import convert_to_openvino

    out = tmp_path_factory.mktemp("ir") / "fake32"
    convert_to_openvino(str(fake_savedmodel_32), out)
    return out


def batch_of(*images: NDArray[np.uint8]) -> NDArray[np.float32]:
    return np.stack([i.astype(np.float32) / np.float32(255.0) for i in images])


def scenes() -> list[NDArray[np.uint8]]:
    return [street_scene(h, w, seed=s)[0] for h, w, s in ((36, 48, 1), (48, 64, 2), (36, 48, 3))]


# -- conversion ----------------------------------------------------------------------------------


def test_converted_folder_and_metadata(ir33: Path, fake_savedmodel: Path) -> None:
    assert sorted(p.name for p in ir33.iterdir()) == [
        METADATA_NAME,
        "features.bin",
        "features.xml",
        "model.bin",
        "model.xml",
    ]
    data = json.loads((ir33 / METADATA_NAME).read_text())
    assert data == {
        "format": "camvidseg-openvino",
        "version": 1,
        "source": str(fake_savedmodel),
        "channels": 33,
        "label_set": None,
        "camvidseg": data["camvidseg"],
        "openvino": ov.__version__,
    }
    assert read_metadata(ir33) == OpenVINOMetadata.from_dict(data)
    # No hidden temp folders left next to it.
    assert [p.name for p in ir33.parent.iterdir()] == [ir33.name]


@pytest.mark.parametrize("fixture", ["fake_savedmodel", "fake_savedmodel_32"])
def test_converted_labels_equal_the_tf_backend_exactly(
    fixture: str, request: pytest.FixtureRequest, ir33: Path, ir32: Path
) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    saved: Path = request.getfixturevalue(fixture)
    ir = ir33 if fixture == "fake_savedmodel" else ir32
    tf_backend, ov_backend = TFHubBackend.load(str(saved)), OpenVINOBackend.load(ir)
    images = scenes()
    for batch_size in (1, 3):
        tf_seg = Segmenter(tf_backend, batch_size=batch_size)
        ov_seg = Segmenter(ov_backend, batch_size=batch_size)
        # Twice: the first chunk learns the layout from scores, later ones use predict_labels.
        for _ in range(2):
            for a, b in zip(
                tf_seg.segment_batch(images), ov_seg.segment_batch(images), strict=True
            ):
                np.testing.assert_array_equal(b.labels, a.labels)
                np.testing.assert_allclose(b.confidence, a.confidence, rtol=1e-5, atol=1e-6)
    truth = [street_scene(h, w, seed=s)[1] for h, w, s in ((36, 48, 1), (48, 64, 2), (36, 48, 3))]
    for image, expected in zip(images, truth, strict=True):
        np.testing.assert_array_equal(Segmenter(ov_backend).segment(image).labels, expected)


def test_scores_match_tensorflow(fake_savedmodel: Path, ir33: Path) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    batch = batch_of(*scenes()[:1])
    expected = TFHubBackend.load(str(fake_savedmodel)).predict(batch)
    got = OpenVINOBackend.load(ir33).predict(batch)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_features_are_converted_when_asked(fake_savedmodel: Path, ir33: Path, ir32: Path) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    batch = batch_of(scenes()[1])
    expected = TFHubBackend.load(str(fake_savedmodel)).get_features(batch)
    got = OpenVINOBackend.load(ir33).get_features(batch)
    assert got.shape == expected.shape == (1, 12, 16, 720)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(BackendError, match="get_features was not converted"):
        OpenVINOBackend.load(ir32).get_features(batch)


def test_savedmodel_folder_converts_to_an_empty_model_without_error(
    fake_savedmodel: Path,
) -> None:
    """The trap the converter avoids: no serving signature, so nothing to convert."""
    model = ov.convert_model(str(fake_savedmodel))
    assert (len(model.inputs), len(model.outputs)) == (0, 0)


def test_empty_conversion_result_is_refused_and_nothing_written(
    fake_savedmodel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camvidseg.backends import convert

    with pytest.raises(convert.ConversionError, match="empty model"):
        convert.check_converted(ov.Model([], [], "empty"), "x")
    monkeypatch.setattr(ov, "convert_model", lambda *a, **k: ov.Model([], [], "empty"))
    with pytest.raises(convert.ConversionError, match=r"empty model \(0 inputs, 0 outputs\)"):
        convert.convert_to_openvino(str(fake_savedmodel), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_conversion_leaves_the_root_logger_alone(
    fake_savedmodel: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openvino.convert_model sets the root logger to ERROR and restores it only on success."""
    from camvidseg.backends import convert

    def failing_convert(*args: object, **kwargs: object) -> None:
        logging.getLogger().setLevel(logging.ERROR)
        logging.getLogger().addFilter(logging.Filter("ovc"))
        raise RuntimeError("Check 'false' failed: conversion went wrong")

    root = logging.getLogger()
    level, filters = root.level, list(root.filters)
    monkeypatch.setattr(ov, "convert_model", failing_convert)
    with pytest.raises(convert.ConversionError, match="conversion went wrong"):
        convert.convert_to_openvino(str(fake_savedmodel), tmp_path / "out")
    assert (root.level, root.filters) == (level, filters)


@pytest.mark.slow
def test_an_operation_openvino_lacks_is_named(tmp_path: Path) -> None:
    import tensorflow as tf

    from camvidseg.backends.convert import ConversionError, convert_to_openvino

    class Odd(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])  # type: ignore[untyped-decorator]
        def predict(self, images: Any) -> Any:
            return tf.nn.softmax(tf.math.igamma(images + 1.0, images + 1.0), axis=-1)

    tf.saved_model.save(Odd(), str(tmp_path / "odd"))
    level = logging.getLogger().level
    with pytest.raises(
        ConversionError, match=r"cannot convert the TensorFlow operation\(s\) Igamma"
    ):
        convert_to_openvino(str(tmp_path / "odd"), tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd"]
    assert logging.getLogger().level == level  # OpenVINO's own failure path leaves it at ERROR


def finetuned_export(saved: Path, folder: Path, channels: int) -> dict[str, Any]:
    """A copy of ``saved`` with label-set metadata (as ``camvidseg finetune --export`` writes);
    returns its label set."""
    shutil.copytree(saved, folder)
    label_set = {
        "name": "roads",
        "classes": [{"id": i, "name": f"c{i}", "color": [i, i, i]} for i in range(channels)],
        "ignore_ids": [],
    }
    meta = {
        "format": "camvidseg-model",
        "version": 1,
        "label_set": label_set,
        "base_model": "x",
        "backbone_fingerprint": "y",
        "channels": channels,
    }
    (folder / "assets").mkdir(exist_ok=True)
    (folder / "assets" / "camvidseg.json").write_text(json.dumps(meta))
    return label_set


@pytest.mark.slow
def test_label_set_metadata_of_a_finetuned_export_is_kept(
    fake_savedmodel: Path, ir32: Path, tmp_path: Path
) -> None:
    from camvidseg.backends.convert import ConversionError, convert_to_openvino

    label_set = finetuned_export(fake_savedmodel, tmp_path / "export", 33)
    target = tmp_path / "ir"
    shutil.copytree(ir32, target)  # replaced with --overwrite
    report = convert_to_openvino(str(tmp_path / "export"), target, overwrite=True)
    assert report.label_set == "roads"
    assert read_metadata(target).label_set == label_set
    assert read_metadata(target).channels == 33
    assert OpenVINOBackend.load(target).metadata.label_set == label_set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "ir"]
    # Checked before converting: the declared channel count must be predict's.
    finetuned_export(fake_savedmodel, tmp_path / "wrong", 5)
    with pytest.raises(ConversionError, match="says 5 channels but predict returns 33"):
        convert_to_openvino(str(tmp_path / "wrong"), tmp_path / "ir2")
    assert not (tmp_path / "ir2").exists()


def test_output_folder_rules(fake_savedmodel: Path, ir32: Path, tmp_path: Path) -> None:
    from camvidseg.backends.convert import convert_to_openvino

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty and holds no OpenVINO model"):
        convert_to_openvino(str(fake_savedmodel), busy)
    with pytest.raises(ConfigError, match="pass --overwrite"):
        convert_to_openvino(str(fake_savedmodel), ir32)
    assert read_metadata(ir32).channels == 32
    with pytest.raises(ConfigError, match="already an OpenVINO IR folder"):
        convert_to_openvino(str(ir32), tmp_path / "again")
    with pytest.raises(ConfigError, match="fake models are numpy code"):
        convert_to_openvino("fake:33", tmp_path / "again")
    with pytest.raises(ConfigError, match="holds no OpenVINO model"):
        convert_to_openvino(str(fake_savedmodel), fake_savedmodel)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


# -- the backend ---------------------------------------------------------------------------------


def test_precision_is_set_explicitly(ir33: Path) -> None:
    backend = OpenVINOBackend.load(ir33, threads=1)
    assert backend.compile_config() == {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_NUM_THREADS": 1,
    }
    assert backend.compile_config(throughput=True) == {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "THROUGHPUT",
        "PERFORMANCE_HINT_NUM_REQUESTS": 2,
        "INFERENCE_NUM_THREADS": 1,
    }
    assert "INFERENCE_NUM_THREADS" not in OpenVINOBackend.load(ir33).compile_config()


def test_bf16_is_refused_on_a_cpu_without_it(
    ir33: Path, fake_savedmodel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    monkeypatch.setattr(precision_module, "cpu_flags", lambda path="": NO_BF16)
    for load in (
        lambda: OpenVINOBackend.load(ir33, precision="bf16"),
        lambda: TFHubBackend.load(str(fake_savedmodel), precision="bf16"),
        lambda: Segmenter.from_hub(ir33, precision="bf16"),
        lambda: SegmentConfig(model=str(ir33), precision="bf16").build_segmenter(),
    ):
        with pytest.raises(ConfigError, match=r"no native bfloat16.*avx512_bf16"):
            load()


def test_bf16_that_openvino_would_run_as_fp32_is_an_error(
    ir33: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the flags claim bf16 but OpenVINO's CPU plugin compiles f32, the backend says so."""
    real_support = precision_module.bf16_support_problem() is None
    monkeypatch.setattr(precision_module, "cpu_flags", lambda path="": WITH_BF16)
    backend = OpenVINOBackend.load(ir33, precision="bf16")
    assert backend.compile_config()["INFERENCE_PRECISION_HINT"] == "bf16"
    image = scenes()[0]
    if real_support:
        labels = Segmenter(backend).segment(image).labels
        assert labels.shape == image.shape[:2]
    else:
        with pytest.raises(ConfigError, match="compiled the model in f32 although bf16"):
            backend.predict(batch_of(image))


def test_batches_run_as_parallel_requests_with_the_same_results(ir33: Path) -> None:
    backend = OpenVINOBackend.load(ir33)
    images = [street_scene(36, 48, seed=s)[0] for s in range(3)]
    batch = batch_of(*images)
    together = backend.predict(batch)
    one_by_one = np.concatenate([backend.predict(batch[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(together, one_by_one, atol=1e-7)
    layout = ChannelLayout.detect(33)
    labels, conf = backend.predict_labels(batch, layout)
    ref_labels, ref_conf = labels_and_confidence(together, layout)
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_allclose(conf, ref_conf, rtol=1e-5)
    assert labels.dtype == np.uint8
    assert conf.dtype == np.float32


def test_one_compiled_model_per_input_size_cached_and_bounded(ir33: Path) -> None:
    backend = OpenVINOBackend.load(ir33)
    for size in ((8, 8), (8, 12), (8, 8)):
        backend.predict(np.zeros((1, *size, 3), np.float32))
    assert backend.compiled_sizes == ((8, 12), (8, 8))
    for width in range(1, COMPILED_CACHE_SIZE + 3):
        backend.predict(np.zeros((1, 4, width, 3), np.float32))
    assert len(backend.compiled_sizes) == COMPILED_CACHE_SIZE


def test_predict_labels_checks_the_layout(ir33: Path) -> None:
    backend = OpenVINOBackend.load(ir33)
    with pytest.raises(BackendError, match="channel count other than layout 'void32'"):
        backend.predict_labels(np.zeros((1, 4, 4, 3), np.float32), ChannelLayout.detect(32))
    with pytest.raises(BackendError, match=r"float32 \[B, H, W, 3\]"):
        backend.predict(np.zeros((4, 4, 3), np.float32))


@pytest.fixture(scope="module")
def matmul_backends(tmp_path_factory: pytest.TempPathFactory) -> dict[int, OpenVINOBackend]:
    """Backends whose scores are ``images @ W`` for a fixed W of small integers (with equal
    columns), so float32 scores are exact and ties are frequent."""
    from openvino import opset13 as ops

    weights = np.random.default_rng(7).integers(0, 3, size=(3, 33)).astype(np.float32)
    weights[:, 20] = weights[:, 9]
    weights[:, 1] = weights[:, 0]
    backends = {}
    for channels in (33, 32):
        images = ops.parameter([-1, -1, -1, 3], np.float32, name="images")
        scores = ops.matmul(images, ops.constant(weights[:, :channels]), False, False)
        model = ov.Model([scores.output(0)], [images], "matmul")
        meta = OpenVINOMetadata(source="test", channels=channels)
        backends[channels] = OpenVINOBackend(model, tmp_path_factory.mktemp("mm"), meta)
    return backends


@given(
    pixels=st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=3 * 12, max_size=3 * 12),
    channels=st.sampled_from([33, 32]),
)
def test_in_graph_labels_follow_numpy_tie_rules(
    matmul_backends: dict[int, OpenVINOBackend], pixels: list[float], channels: int
) -> None:
    backend = matmul_backends[channels]
    batch = np.array(pixels, np.float32).reshape(1, 3, 4, 3)
    scores = backend.predict(batch)
    for layout in (ChannelLayout.detect(channels), ChannelLayout.detect(channels, drop_void=True)):
        labels, conf = backend.predict_labels(batch, layout)
        ref_labels, ref_conf = labels_and_confidence(scores, layout)
        np.testing.assert_array_equal(labels, ref_labels)
        np.testing.assert_allclose(conf, ref_conf, rtol=2.0**-18)


# -- the resolver and the Segmenter ----------------------------------------------------------------


def test_resolver_recognises_the_folder_from_its_files(ir33: Path, fake_savedmodel: Path) -> None:
    resolver = OpenVINOResolver()
    assert resolver.is_supported(str(ir33))
    assert resolver.is_supported(str(ir33 / "model.xml"))
    assert openvino_folder(ir33 / "model.xml") == ir33
    for handle in (str(fake_savedmodel), "fake:33", "https://tfhub.dev/x/1", "missing/folder"):
        assert not resolver.is_supported(handle)
    backend = resolver.open(str(ir33), OpenOptions(threads=1))
    assert isinstance(backend, OpenVINOBackend)
    assert backend.threads == 1
    assert backend.precision == "fp32"


def test_the_resolver_registry_opens_openvino_folders(ir33: Path, fake_savedmodel: Path) -> None:
    assert resolver_for(str(ir33)).name == "openvino"
    assert resolver_for(str(ir33 / "model.xml")).name == "openvino"
    assert resolver_for(str(fake_savedmodel)).name == "savedmodel"
    backend = open_backend(ir33, threads=2, input_multiple=8)
    assert isinstance(backend, OpenVINOBackend)
    assert (backend.threads, backend.input_multiple) == (2, 8)
    with pytest.raises(ConfigError, match="precision"):
        open_backend("fake:33", precision="bf16")


def test_segmenter_and_config_open_an_openvino_folder(ir33: Path) -> None:
    image, truth = street_scene(36, 48, seed=5)
    for segmenter in (
        Segmenter.from_hub(ir33, threads=1),
        SegmentConfig(model=str(ir33), threads=1, classes=11).build_segmenter(),
    ):
        assert isinstance(segmenter.backend, OpenVINOBackend)
        assert segmenter.backend.threads == 1
    np.testing.assert_array_equal(Segmenter.from_hub(str(ir33)).segment(image).labels, truth)


def test_folder_without_metadata_is_explained(ir33: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bare"
    folder.mkdir()
    shutil.copy(ir33 / "model.xml", folder)
    shutil.copy(ir33 / "model.bin", folder)
    assert is_openvino_folder(folder)
    with pytest.raises(ModelLoadError, match=r"no camvidseg_openvino\.json: it was not converted"):
        OpenVINOBackend.load(folder)
    (folder / METADATA_NAME).write_text('{"format": "camvidseg-openvino", "version": 9}')
    with pytest.raises(ModelLoadError, match="metadata version 9"):
        OpenVINOBackend.load(folder)
    (folder / METADATA_NAME).write_text("{")
    with pytest.raises(ModelLoadError, match="cannot read the metadata"):
        OpenVINOBackend.load(folder)
    (folder / METADATA_NAME).write_text(json.dumps(read_metadata(ir33).to_dict()))
    (folder / "model.bin").write_bytes(b"")
    with pytest.raises(ModelLoadError, match="convert the model again"):
        OpenVINOBackend.load(folder).predict(np.zeros((1, 4, 4, 3), np.float32))


def test_without_openvino_installed(ir33: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from camvidseg.backends.openvino_info import describe_openvino

    monkeypatch.setitem(sys.modules, "openvino", None)  # `import openvino` now fails
    with pytest.raises(ModelLoadError, match=r"pip install 'camvidseg\[openvino\]'"):
        OpenVINOBackend.load(ir33)
    info = describe_openvino(ir33)  # the metadata still describes the folder
    assert (info.openvino, info.inputs, info.metadata.channels) == (None, (), 33)
    assert "OpenVINO is not installed here" in info.format()
