"""Labels and confidence computed inside the backend (the LabelBackend capability).

The fused TF op and the Segmenter's fused path must give exactly the labels of the numpy path
(camvidseg.postprocess.labels_and_confidence; first maximum in channel order on ties) and its
confidence within CONFIDENCE_RTOL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
from numpy.typing import NDArray

from camvidseg import BackendError, Segmenter
from camvidseg.backends import Backend, LabelBackend, NearestColorBackend
from camvidseg.postprocess import CONFIDENCE_RTOL, ChannelLayout, labels_and_confidence
from camvidseg.testing import street_scene
from tests.reference import labels_and_confidence_reference

LAYOUTS = [
    ChannelLayout.detect(33),
    ChannelLayout.detect(32),
    ChannelLayout.detect(32, drop_void=True),
]
ROAD, SKY = (128, 64, 128), (128, 128, 128)


def tied_scores(channels: int, seed: int) -> NDArray[np.float32]:
    """``(2, 9, 11, C)`` scores from a tiny set of dyadic values (so every summation order
    gives the same sum): ties everywhere, channel 0 often among the winners, all-zero pixels,
    negative values and -0.0 (which numpy's argmax treats as equal to 0.0)."""
    rng = np.random.default_rng(seed)
    values = np.array([0.0, -0.0, 0.125, 0.25, 0.5, 0.5, 1.0, -0.25], np.float32)
    scores = values[rng.integers(0, len(values), (2, 9, 11, channels))]
    scores[0, 0] = 0.0
    scores[0, 1] = 0.25
    scores[1, 0, :, 0] = 1.0
    scores[1, 1] = -0.0
    scores[1, 1, :, 3] = 0.0  # +0.0 after -0.0: the first (-0.0) must win
    scores[1, 2] = -0.5
    scores[1, 2, :, 5] = -0.25
    return scores


def assert_matches_numpy(
    labels: NDArray[np.uint8], conf: NDArray[np.float32], scores: Any, layout: ChannelLayout
) -> None:
    ref_labels, ref_conf = labels_and_confidence_reference(np.asarray(scores), layout)
    fast_labels, fast_conf = labels_and_confidence(np.asarray(scores), layout)
    assert labels.dtype == np.uint8
    assert conf.dtype == np.float32
    np.testing.assert_array_equal(labels, ref_labels)
    np.testing.assert_array_equal(labels, fast_labels)
    np.testing.assert_allclose(conf, ref_conf, rtol=CONFIDENCE_RTOL, atol=0)
    np.testing.assert_allclose(conf, fast_conf, rtol=CONFIDENCE_RTOL, atol=0)


def midway_image() -> NDArray[np.uint8]:
    """A street scene with a band of pixels exactly between Road and Sky: a tie of two
    classes in the fake model's scores (first one, Road = 17, must win)."""
    image, _ = street_scene(24, 40, seed=5)
    image[10:14] = (np.array(ROAD) + np.array(SKY)) // 2
    return image


def spy_on_predict_labels() -> Any:
    original = NearestColorBackend.predict_labels
    return mock.patch.object(
        NearestColorBackend, "predict_labels", autospec=True, side_effect=original
    )


# -- numpy fake ----------------------------------------------------------------------------------


def test_nearest_color_backend_is_a_label_backend() -> None:
    backend = NearestColorBackend()
    assert isinstance(backend, LabelBackend)
    batch = midway_image()[None].astype(np.float32) / np.float32(255)
    labels, conf = backend.predict_labels(batch, LAYOUTS[0])
    assert (labels[0, 10:14] == 17).all()
    assert_matches_numpy(labels, conf, backend.predict(batch), LAYOUTS[0])


class _ScoresOnly:
    name = "scores-only"
    input_multiple = 1

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return NearestColorBackend().predict(batch)


def test_plain_backend_is_not_a_label_backend() -> None:
    assert isinstance(_ScoresOnly(), Backend)
    assert not isinstance(_ScoresOnly(), LabelBackend)
    seg = Segmenter(_ScoresOnly()).segment(midway_image())
    assert (seg.labels[10:14] == 17).all()


@pytest.mark.parametrize("channels", [33, 32])
def test_segmenter_uses_predict_labels_after_the_first_chunk(channels: int) -> None:
    images = [midway_image(), street_scene(17, 23, seed=1)[0], midway_image()[:, :31]]
    backend = NearestColorBackend(channels)
    fused = list(Segmenter(backend).segment_batch(images))
    plain = list(Segmenter(NearestColorBackend(channels), fused_labels=False).segment_batch(images))
    with spy_on_predict_labels() as spy:
        again = list(
            Segmenter(backend, layout=ChannelLayout.detect(channels)).segment_batch(images)
        )
    assert spy.call_count == 3
    for a, b, c in zip(fused, plain, again, strict=True):
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(c.labels, b.labels)
        np.testing.assert_allclose(c.confidence, b.confidence, rtol=CONFIDENCE_RTOL, atol=0)


def test_segmenter_keeps_the_score_path_when_scores_are_needed() -> None:
    backend = NearestColorBackend()
    segmenter = Segmenter(backend, layout=ChannelLayout.detect(33))
    with spy_on_predict_labels() as spy:
        assert segmenter.segment(midway_image(), return_scores=True).scores is not None
        Segmenter(backend, layout=segmenter.layout, max_side=16).segment(midway_image())
        Segmenter(backend, layout=segmenter.layout, fused_labels=False).segment(midway_image())
    spy.assert_not_called()


# -- TensorFlow ----------------------------------------------------------------------------------


@pytest.mark.tf
@pytest.mark.parametrize("jit", [True, False])
@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.name)
def test_fused_op_equals_numpy_on_crafted_ties(layout: ChannelLayout, jit: bool) -> None:
    tf = pytest.importorskip("tensorflow")
    from camvidseg.backends.tfhub import labels_and_confidence_op

    op = labels_and_confidence_op(layout, jit_compile=jit)
    for seed in range(4):
        scores = tied_scores(layout.num_channels, seed)
        labels, conf = op(tf.constant(scores))
        assert_matches_numpy(labels.numpy(), conf.numpy(), scores, layout)
    # Softmax-like scores from random logits, for the confidence tolerance.
    logits = np.random.default_rng(9).normal(size=(2, 9, 11, layout.num_channels))
    scores = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
    labels, conf = op(tf.constant(scores))
    assert_matches_numpy(labels.numpy(), conf.numpy(), scores, layout)


@pytest.mark.tf
def test_predict_labels_on_savedmodel_equals_numpy(fake_savedmodel: Path) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    backend = TFHubBackend.load(str(fake_savedmodel))
    assert isinstance(backend, LabelBackend)
    image = midway_image()
    batch = np.stack([image, image[::-1]]).astype(np.float32) / np.float32(255)
    layout = ChannelLayout.detect(33)
    labels, conf = backend.predict_labels(batch, layout)
    assert labels.shape == conf.shape == batch.shape[:3]
    assert (labels[0, 10:14] == 17).all()  # the Road/Sky tie goes to Road
    assert_matches_numpy(labels, conf, backend.predict(batch), layout)
    assert backend.jit_compiled
    with pytest.raises(BackendError, match="predict_labels failed"):
        backend.predict_labels(batch, ChannelLayout.detect(32))


@pytest.mark.tf
def test_segmenter_fused_path_on_savedmodels(
    fake_savedmodel: Path, fake_savedmodel_32: Path
) -> None:
    from camvidseg.backends.tfhub import TFHubBackend

    image = midway_image()
    odd = street_scene(13, 19, seed=3)[0]
    for path in (fake_savedmodel, fake_savedmodel_32):
        backend = TFHubBackend.load(str(path), input_multiple=8)
        segmenter = Segmenter(backend)
        channels = backend.predict(np.zeros((1, 1, 1, 3), np.float32)).shape[-1]
        reference = Segmenter(NearestColorBackend(channels), fused_labels=False)
        segmenter.segment(image)  # learns the layout from the scores
        with mock.patch.object(backend, "predict_labels", wraps=backend.predict_labels) as spy:
            results = list(segmenter.segment_batch([image, odd, image], batch_size=3))
        assert spy.call_count == 2  # one call per image size
        for result, source in zip(results, [image, odd, image], strict=True):
            expected = reference.segment(source)
            np.testing.assert_array_equal(result.labels, expected.labels)
            np.testing.assert_allclose(result.confidence, expected.confidence, rtol=1e-4)
        assert (results[0].labels[10:14] == 17).all()


@pytest.mark.tf
def test_fused_falls_back_when_xla_fails(
    fake_savedmodel: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from camvidseg.backends import tfhub

    real_op = tfhub.labels_and_confidence_op

    def no_xla(layout: ChannelLayout, *, jit_compile: bool = True) -> Any:
        if not jit_compile:
            return real_op(layout, jit_compile=False)

        def broken(scores: Any) -> Any:
            raise RuntimeError("XLA compilation is not supported here")

        return broken

    monkeypatch.setattr(tfhub, "labels_and_confidence_op", no_xla)
    backend = tfhub.TFHubBackend.load(str(fake_savedmodel))
    batch = midway_image()[None].astype(np.float32) / np.float32(255)
    layout = ChannelLayout.detect(33)
    labels, conf = backend.predict_labels(batch, layout)
    assert not backend.jit_compiled
    assert_matches_numpy(labels, conf, backend.predict(batch), layout)
