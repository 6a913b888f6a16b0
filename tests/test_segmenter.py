from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

from camvidseg import (
    BackendError,
    CamVidPalette,
    ConfigError,
    InvalidImageError,
    Segmentation,
    Segmenter,
)
from camvidseg.backends import Backend, NearestColorBackend
from camvidseg.postprocess import overlay
from camvidseg.testing import street_scene


@pytest.fixture(scope="module")
def scene() -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    return street_scene(60, 80, seed=7)


@pytest.mark.parametrize("channels", [33, 32])
def test_exact_labels_from_fake(
    scene: tuple[NDArray[np.uint8], NDArray[np.uint8]], channels: int
) -> None:
    image, truth = scene
    seg = Segmenter(NearestColorBackend(channels=channels)).segment(image)
    np.testing.assert_array_equal(seg.labels, truth)
    assert seg.confidence.dtype == np.float32
    assert seg.confidence.shape == truth.shape
    assert ((seg.confidence > 0.5) & (seg.confidence <= 1.0)).all()


def test_confidence_drops_background_and_renormalises() -> None:
    # A pixel exactly on Road: reference probabilities computed by hand from the fake's logits.
    image = np.full((1, 1, 3), [128, 64, 128], np.uint8)
    backend = NearestColorBackend()
    logits = backend.logits(image[None].astype(np.float32) / np.float32(255))[0, 0, 0].astype(
        np.float64
    )
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    expected = probs[18] / probs[1:].sum()
    seg = Segmenter(backend).segment(image)
    assert seg.labels.tolist() == [[17]]
    assert seg.confidence[0, 0] == pytest.approx(expected, rel=1e-5)
    assert probs[0] > 0.05  # the background channel really took a share


def test_segmentation_helpers(scene: tuple[NDArray[np.uint8], NDArray[np.uint8]]) -> None:
    image, truth = scene
    seg = Segmenter(NearestColorBackend()).segment(image)
    palette = CamVidPalette.camvid32()
    np.testing.assert_array_equal(seg.colorize(), palette.colors[truth])
    np.testing.assert_array_equal(seg.overlay(0.6), overlay(image, palette.colors[truth], 0.6))
    np.testing.assert_array_equal(seg.overlay(0.0), image)
    np.testing.assert_array_equal(seg.overlay(1.0), palette.colors[truth])
    areas = seg.class_areas()
    assert sum(areas.values()) == pytest.approx(1.0)
    counts = np.bincount(truth.ravel(), minlength=32)
    assert areas["Road"] == pytest.approx(counts[17] / truth.size)
    assert list(areas.values()) == sorted(areas.values(), reverse=True)
    eleven = seg.to_camvid11()
    assert eleven.palette.name == "camvid11"
    from camvidseg import get_grouping

    np.testing.assert_array_equal(eleven.labels, get_grouping("merge").lut[truth])
    assert set(np.unique(eleven.labels)) <= set(range(12))
    assert eleven.class_areas()["Road"] >= areas["Road"]


def test_batch_mixed_sizes_keeps_order() -> None:
    scenes = [street_scene(h, w, seed=i) for i, (h, w) in enumerate([(20, 30), (24, 16), (20, 30)])]
    backend = NearestColorBackend()
    results = list(Segmenter(backend).segment_batch([s[0] for s in scenes], batch_size=3))
    assert len(results) == 3
    for (_, truth), seg in zip(scenes, results, strict=True):
        np.testing.assert_array_equal(seg.labels, truth)
    assert backend.calls == 2  # one call per distinct size within the chunk


def test_batch_is_lazy() -> None:
    def images() -> object:
        yield np.zeros((4, 4, 3), np.uint8)
        raise AssertionError("consumed too early")

    it = Segmenter(NearestColorBackend()).segment_batch(images())  # type: ignore[arg-type]
    assert next(it).labels.shape == (4, 4)


def test_segment_path_and_pil(
    tmp_path: Path, scene: tuple[NDArray[np.uint8], NDArray[np.uint8]]
) -> None:
    image, truth = scene
    Image.fromarray(image).save(tmp_path / "s.png")
    segmenter = Segmenter(NearestColorBackend())
    seg = segmenter.segment(tmp_path / "s.png")
    assert seg.source == tmp_path / "s.png"
    np.testing.assert_array_equal(seg.labels, truth)
    np.testing.assert_array_equal(segmenter.segment(Image.fromarray(image)).labels, truth)


def test_max_side_resizes_scores_back(scene: tuple[NDArray[np.uint8], NDArray[np.uint8]]) -> None:
    image, truth = scene
    seg = Segmenter(NearestColorBackend(), max_side=40).segment(image)
    assert seg.labels.shape == truth.shape
    assert (seg.labels == truth).mean() > 0.85  # a half-size model still gets most pixels


def test_padding_to_input_multiple_is_cropped_back(
    scene: tuple[NDArray[np.uint8], NDArray[np.uint8]],
) -> None:
    image, truth = scene
    seen: list[tuple[int, ...]] = []

    class Spy(NearestColorBackend):
        def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
            seen.append(batch.shape)
            return super().predict(batch)

    seg = Segmenter(Spy(input_multiple=32)).segment(image[:59, :77])
    assert seen == [(1, 64, 96, 3)]
    np.testing.assert_array_equal(seg.labels, truth[:59, :77])


def test_camvid11_palette_and_min_confidence(
    scene: tuple[NDArray[np.uint8], NDArray[np.uint8]],
) -> None:
    image, truth = scene
    seg = Segmenter(NearestColorBackend(), palette=CamVidPalette.camvid11()).segment(image)
    assert seg.palette.name == "camvid11"
    from camvidseg import get_grouping

    np.testing.assert_array_equal(seg.labels, get_grouping().remap(truth))
    strict = Segmenter(NearestColorBackend(), min_confidence=1.0).segment(image)
    assert (strict.labels == 255).all()


def test_return_scores() -> None:
    seg = Segmenter(NearestColorBackend()).segment(
        np.full((2, 2, 3), [128, 128, 128], np.uint8), return_scores=True
    )
    assert seg.scores is not None
    assert seg.scores.shape == (2, 2, 32)
    assert seg.scores.argmax(-1).tolist() == [[21, 21], [21, 21]]
    np.testing.assert_allclose(seg.scores.sum(-1), 1.0, rtol=1e-5)


class _BadBackend:
    def __init__(self, channels: int = 24, shape: tuple[int, ...] | None = None) -> None:
        self.channels, self.shape = channels, shape
        self.name, self.input_multiple = "bad", 1

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        shape = self.shape or (*batch.shape[:3], self.channels)
        return np.full(shape, 1 / self.channels, np.float32)


def test_backend_protocol() -> None:
    assert isinstance(NearestColorBackend(), Backend)
    assert isinstance(_BadBackend(), Backend)


@pytest.mark.parametrize("channels", [1, 24, 31, 34])
def test_other_channel_counts_are_backend_errors(channels: int) -> None:
    with pytest.raises(BackendError, match=f"returned {channels} channels"):
        Segmenter(_BadBackend(channels)).segment(np.zeros((3, 3, 3), np.uint8))


def test_wrong_output_shape_is_backend_error() -> None:
    with pytest.raises(BackendError, match=r"shape \(1, 2, 2, 33\)"):
        Segmenter(_BadBackend(shape=(1, 2, 2, 33))).segment(np.zeros((3, 3, 3), np.uint8))


def test_bad_inputs_are_library_errors(tmp_path: Path) -> None:
    segmenter = Segmenter(NearestColorBackend())
    with pytest.raises(InvalidImageError, match=r"got shape \(4, 4, 4\)"):
        segmenter.segment(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(InvalidImageError, match="dtype float32"):
        segmenter.segment(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InvalidImageError, match="empty"):
        segmenter.segment(np.zeros((0, 4, 3), np.uint8))
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(InvalidImageError, match=r"x\.png: not an image"):
        segmenter.segment(tmp_path / "x.png")


def test_options_are_validated() -> None:
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        Segmenter(NearestColorBackend(), batch_size=0)
    with pytest.raises(ConfigError, match="min_confidence"):
        Segmenter(NearestColorBackend(), min_confidence=2.0)
    with pytest.raises(ConfigError, match="batch_size"):
        list(Segmenter(NearestColorBackend()).segment_batch([], batch_size=0))


def test_segmentation_validation_and_save_load(tmp_path: Path) -> None:
    with pytest.raises(InvalidImageError, match="labels must be HxW uint8"):
        Segmentation(np.zeros((2, 2), np.int32), np.zeros((2, 2), np.float32))
    with pytest.raises(InvalidImageError, match="confidence must be float32"):
        Segmentation(np.zeros((2, 2), np.uint8), np.zeros((2, 3), np.float32))
    seg = Segmentation(np.array([[17, 21]], np.uint8), np.ones((1, 2), np.float32))
    with pytest.raises(InvalidImageError, match="kept no image"):
        seg.overlay()
    path = seg.save(tmp_path / "l.png")
    loaded = Segmentation.load(path, image=np.zeros((1, 2, 3), np.uint8))
    np.testing.assert_array_equal(loaded.labels, seg.labels)
    assert loaded.overlay(1.0).tolist() == [[[128, 64, 128], [128, 128, 128]]]
