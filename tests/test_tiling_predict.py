"""Tiled prediction over a ``predict`` callback (camvidseg.tiling), without a Segmenter."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg._types import ImageArray, Scores
from camvidseg.exceptions import BackendError, ConfigError
from camvidseg.postprocess import (
    CONFIDENCE_RTOL,
    ChannelLayout,
    labels_and_confidence,
    resize_scores,
    to_class_scores,
)
from camvidseg.tiling import (
    TileGrid,
    choose_tile,
    iter_score_bands,
    iter_tiled_bands,
    labels_from_bands,
    predict_tiled,
    resized_bands,
    stack_bands,
)
from tests.strategies import probability_scores


class PixelLocal:
    """A "model" whose scores at a pixel depend on that pixel's colour alone; records calls."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[int, ...]]] = []

    def __call__(self, images: Sequence[ImageArray]) -> list[Scores]:
        self.batches.append([image.shape for image in images])
        out = []
        for image in images:
            rgb = image.astype(np.float32) / np.float32(255.0)
            out.append(np.concatenate([rgb, rgb[..., :1] * rgb[..., 1:2]], axis=-1))
        return out


def local_position(images: Sequence[ImageArray]) -> list[Scores]:
    """Scores = where a pixel sits in its input (x and y in (0, 1)): tiles disagree everywhere."""
    out = []
    for image in images:
        h, w = image.shape[:2]
        x = np.broadcast_to((np.arange(w, dtype=np.float32) + 0.5) / w, (h, w))
        y = np.broadcast_to(((np.arange(h, dtype=np.float32) + 0.5) / h)[:, None], (h, w))
        out.append(np.stack([x, y], axis=-1))
    return out


@st.composite
def tiled_images(draw: st.DrawFn) -> tuple[ImageArray, int, int, int]:
    """An image with a tile size, overlap and batch size; usually several tiles per axis."""
    tile = draw(st.integers(2, 24))
    overlap = draw(st.integers(0, tile // 2))
    height = draw(st.integers(1, 3 * tile + 5))
    width = draw(st.integers(1, 3 * tile + 5))
    image = draw(hnp.arrays(np.uint8, (height, width, 3)))
    return image, tile, overlap, draw(st.integers(1, 5))


@given(tiled_images())
def test_pixel_local_predict_tiled_equals_the_untiled_call(
    case: tuple[ImageArray, int, int, int],
) -> None:
    image, tile, overlap, batch_size = case
    predict = PixelLocal()
    got = predict_tiled(image, predict, tile, overlap, batch_size=batch_size)
    want = PixelLocal()([image])[0]
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    grid = TileGrid.for_shape(image.shape[:2], tile, overlap)
    # Every tile once, at most batch_size per call, calls never mixing two tile rows.
    assert sum(len(batch) for batch in predict.batches) == len(grid)
    assert all(1 <= len(batch) <= batch_size for batch in predict.batches)
    per_row = -(-len(grid.cols) // batch_size)
    assert len(predict.batches) == per_row * len(grid.rows)


def blend_reference(
    image: ImageArray, tile: int, overlap: int, uniform: bool = False
) -> NDArray[np.float64]:
    """sum_t w_t * s_t / sum_t w_t in float64, tile by tile (w_t = 1 if ``uniform``)."""
    grid = TileGrid.for_shape(image.shape[:2], tile, overlap)
    total = np.zeros(image.shape[:2])
    acc = np.zeros((*image.shape[:2], 2))
    for t in grid:
        scores = local_position([image[t.y0 : t.y1, t.x0 : t.x1]])[0]
        w = np.ones((t.y1 - t.y0, t.x1 - t.x0)) if uniform else grid.weights(t.row, t.col)
        acc[t.y0 : t.y1, t.x0 : t.x1] += w[..., None] * scores
        total[t.y0 : t.y1, t.x0 : t.x1] += w
    result: NDArray[np.float64] = acc / total[..., None]
    return result


@given(st.integers(2, 24), st.data())
def test_position_dependent_predict_shows_the_blend_weights(tile: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, tile // 2))
    height = data.draw(st.integers(1, 3 * tile))
    width = data.draw(st.integers(tile + 1, 3 * tile))  # at least two tile columns
    image = np.zeros((height, width, 3), np.uint8)
    got = predict_tiled(image, local_position, tile, overlap, batch_size=2)
    np.testing.assert_allclose(got, blend_reference(image, tile, overlap), rtol=0, atol=2e-6)
    grid = TileGrid.for_shape((height, width), tile, overlap)
    widest = max(a[1] - b[0] for a, b in zip(grid.cols, grid.cols[1:], strict=False))
    if widest >= 2:
        # Where tiles overlap they disagree (by their offset), and uniform weights would give
        # other scores (over a one-pixel overlap the raised cosine is 0.5 too).
        uniform = blend_reference(image, tile, overlap, uniform=True)
        assert np.abs(got - uniform).max() > 1e-3


@given(tiled_images())
def test_bands_cover_the_rows_in_order_and_stack_to_predict_tiled(
    case: tuple[ImageArray, int, int, int],
) -> None:
    image, tile, overlap, batch_size = case
    spans = []
    bands = []
    for y0, y1, band in iter_tiled_bands(image, local_position, tile, overlap, batch_size=2):
        assert band.shape == (y1 - y0, image.shape[1], 2)
        spans.append((y0, y1))
        bands.append((y0, y1, band.copy()))  # a band is valid until the next is requested
    assert spans[0][0] == 0
    assert spans[-1][1] == image.shape[0]
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    np.testing.assert_array_equal(
        stack_bands(bands, image.shape[:2]),
        predict_tiled(image, local_position, tile, overlap, batch_size=batch_size),
    )


def test_a_predict_breaking_the_contract_is_a_backend_error() -> None:
    image = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(BackendError, match="returned 1 score arrays for 2 tiles"):
        predict_tiled(image, lambda tiles: local_position(tiles[:1]), 16, 4, batch_size=2)
    with pytest.raises(BackendError, match=r"scores of the tile's size \(16, 16\)"):
        predict_tiled(image, lambda tiles: [s[:-1] for s in local_position(tiles)], 16, 4)
    with pytest.raises(ConfigError, match="batch_size must be an integer >= 1"):
        predict_tiled(image, local_position, 16, 4, batch_size=0)
    with pytest.raises(ConfigError, match="at most half the tile"):
        predict_tiled(image, local_position, 16, 9)


def nearest_resize(image: ImageArray, size: tuple[int, int]) -> ImageArray:
    rows = np.arange(size[0]) * image.shape[0] // size[0]
    cols = np.arange(size[1]) * image.shape[1] // size[1]
    resized: ImageArray = image[rows][:, cols]
    return resized


@given(
    hnp.arrays(np.uint8, st.tuples(st.integers(1, 40), st.integers(1, 40), st.just(3))),
    st.tuples(st.integers(1, 30), st.integers(1, 30)),
    st.one_of(st.none(), st.integers(4, 16)),
    st.integers(24, 4000),
)
@example(np.ones((1, 1, 3), np.uint8), (1, 1), 4, 24)  # tiled at the image's size
def test_score_bands_at_another_model_size_are_the_resized_scores(
    image: ImageArray, size: tuple[int, int], tile: int | None, band_bytes: int
) -> None:
    generated = iter_score_bands(
        image,
        PixelLocal(),
        tile=tile,
        overlap=2 if tile else 0,
        model_size=size,
        resize=nearest_resize,
        band_bytes=band_bytes,
    )
    # A band is valid until the next one is requested: keep copies.
    bands = [(y0, y1, band.copy()) for y0, y1, band in generated]
    model_scores = PixelLocal()([nearest_resize(image, size)])[0]
    want = resize_scores(model_scores, image.shape[:2])
    np.testing.assert_array_equal(stack_bands(bands, image.shape[:2]), want)
    if size != image.shape[:2]:
        rows = max(1, band_bytes // (image.shape[1] * 4 * 4))
        assert all(y1 - y0 <= rows for y0, y1, _ in bands)


def test_score_bands_need_resize_for_another_model_size() -> None:
    image = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ConfigError, match="needs resize="):
        list(iter_score_bands(image, PixelLocal(), tile=None, model_size=(4, 4)))
    # At the image's own size and tiled, the tile rows come out one by one.
    bands = list(iter_score_bands(image, PixelLocal(), tile=4, overlap=1))
    assert len(bands) == len(TileGrid.for_shape((8, 8), 4, 1).rows)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 3)),
        elements=st.floats(0, 1, width=32),
    ),
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(1, 2000),
)
def test_resized_bands_stack_to_resize_scores(
    scores: Scores, height: int, width: int, band_bytes: int
) -> None:
    bands = list(resized_bands(scores, (height, width), band_bytes=band_bytes))
    np.testing.assert_array_equal(
        stack_bands(bands, (height, width)), resize_scores(scores, (height, width))
    )


@given(probability_scores(channels=33), st.booleans(), st.integers(1, 3000), st.data())
def test_labels_from_bands_equal_labels_of_the_whole_scores(
    scores: Scores, with_scores: bool, band_bytes: int, data: st.DataObject
) -> None:
    height = scores.shape[0]
    cuts = sorted(set(data.draw(st.lists(st.integers(1, max(1, height - 1)), max_size=3))))
    edges = [0, *(c for c in cuts if c < height), height]
    bands = [(y0, y1, scores[y0:y1]) for y0, y1 in itertools.pairwise(edges)]
    layout = ChannelLayout.detect(33)
    labels, conf, class_scores = labels_from_bands(
        bands,
        scores.shape[:2],
        lambda channels: ChannelLayout.detect(channels),
        return_scores=with_scores,
        band_bytes=band_bytes,
    )
    want_labels, want_conf = labels_and_confidence(scores, layout)
    np.testing.assert_array_equal(labels, want_labels)
    np.testing.assert_allclose(conf, want_conf, rtol=CONFIDENCE_RTOL, atol=0)
    if with_scores:
        assert class_scores is not None
        np.testing.assert_array_equal(class_scores, to_class_scores(scores, layout))
    else:
        assert class_scores is None


def test_choose_tile() -> None:
    assert choose_tile((10, 10), 4, max_pixels=None, default=8) == 4
    assert choose_tile((10, 10), None, max_pixels=99, default=8) == 8
    assert choose_tile((10, 10), None, max_pixels=100, default=8) is None
    assert choose_tile((10_000, 10_000), None, max_pixels=None, default=8) is None


def test_stack_bands_needs_bands() -> None:
    with pytest.raises(ValueError, match="no bands"):
        stack_bands([], (2, 2))
