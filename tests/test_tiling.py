"""Tiling maths (camvidseg.tiling) and tiled segmentation in the Segmenter."""

from __future__ import annotations

import itertools
import tracemalloc

import attrs
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from camvidseg import CamVidPalette, ConfigError, Segmenter
from camvidseg import segmenter as segmenter_module
from camvidseg._types import Scores
from camvidseg.backends.base import check_batch
from camvidseg.postprocess import CONFIDENCE_RTOL, resize_scores
from camvidseg.testing import NearestColorBackend, street_scene
from camvidseg.tiling import TileGrid, axis_weights, resize_score_rows, tile_spans


@st.composite
def tilings(draw: st.DrawFn) -> tuple[int, int, int]:
    tile = draw(st.integers(1, 80))
    overlap = draw(st.integers(0, tile // 2))
    length = draw(st.integers(1, 400))
    return length, tile, overlap


# -- the grid --------------------------------------------------------------------------------------


@given(tilings())
def test_tile_spans_cover_evenly_with_enough_overlap(case: tuple[int, int, int]) -> None:
    length, tile, overlap = case
    spans = tile_spans(length, tile, overlap)
    assert spans[0][0] == 0
    assert spans[-1][1] == length
    assert all(stop - start == min(tile, length) for start, stop in spans)
    starts = [start for start, _ in spans]
    assert starts == sorted(set(starts))
    for (_, stop), (start, _) in itertools.pairwise(spans):
        assert stop - start >= overlap
    strides = np.diff(starts)
    if len(strides):
        assert strides.max() - strides.min() <= 1  # evenly spread
    # No fewer tiles would do: n - 1 tiles overlapping by `overlap` cover less than `length`.
    n = len(spans)
    if n > 1:
        assert (n - 1) * tile - (n - 2) * overlap < length


@given(tilings())
def test_axis_weights_are_a_smooth_partition_of_unity(case: tuple[int, int, int]) -> None:
    length, tile, overlap = case
    spans = tile_spans(length, tile, overlap)
    weights = axis_weights(spans)
    total = np.zeros(length)
    covering = np.zeros(length, int)
    for (start, stop), w in zip(spans, weights, strict=True):
        assert w.dtype == np.float32
        assert w.shape == (stop - start,)
        assert ((w > 0) & (w <= 1)).all()
        total[start:stop] += w
        covering[start:stop] += 1
    np.testing.assert_allclose(total, 1.0, atol=2e-6)
    smallest = min((a[1] - b[0] for a, b in itertools.pairwise(spans)), default=0)
    if smallest > 0:
        for (start, stop), w in zip(spans, weights, strict=True):
            full = np.zeros(length)
            full[start:stop] = w
            # Raised cosine: at most pi/2 per overlap width; a little more where three overlap.
            assert np.abs(np.diff(full)).max() <= 2.0 / smallest + 1e-6
    for (start, stop), w in zip(spans, weights, strict=True):
        alone = covering[start:stop] == 1
        np.testing.assert_array_equal(w[alone], 1.0)


@given(st.integers(1, 90), st.integers(1, 90), st.integers(2, 40), st.data())
def test_tile_grid_weights_sum_to_one_over_the_image(
    height: int, width: int, tile: int, st_data: st.DataObject
) -> None:
    overlap = st_data.draw(st.integers(0, tile // 2))
    grid = TileGrid.for_shape((height, width), tile, overlap)
    total = np.zeros((height, width))
    tiles = list(grid)
    assert len(tiles) == len(grid) == len(grid.rows) * len(grid.cols)
    for t in tiles:
        w = grid.weights(t.row, t.col)
        assert w.shape == (t.y1 - t.y0, t.x1 - t.x0)
        total[t.y0 : t.y1, t.x0 : t.x1] += w
    np.testing.assert_allclose(total, 1.0, atol=5e-6)


def test_tiling_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="at most half the tile"):
        tile_spans(100, 32, 17)
    with pytest.raises(ConfigError, match="tile must be"):
        tile_spans(100, 0, 0)
    with pytest.raises(ConfigError, match="overlap must be"):
        tile_spans(100, 32, -1)
    with pytest.raises(ConfigError, match="cannot tile"):
        tile_spans(0, 32, 0)


@given(
    hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 3)),
        elements=st.floats(0, 1, width=32),
    ),
    st.integers(1, 20),
    st.integers(1, 20),
    st.data(),
)
def test_resize_score_rows_equals_resize_scores(
    scores: Scores, height: int, width: int, st_data: st.DataObject
) -> None:
    start = st_data.draw(st.integers(0, height - 1))
    stop = st_data.draw(st.integers(start + 1, height))
    expected = resize_scores(scores, (height, width))[start:stop]
    np.testing.assert_array_equal(resize_score_rows(scores, (height, width), start, stop), expected)


def test_resize_score_rows_checks_rows() -> None:
    with pytest.raises(ValueError, match="not inside"):
        resize_score_rows(np.zeros((2, 2, 1), np.float32), (4, 4), 3, 5)


# -- tiled segmentation ----------------------------------------------------------------------------


def random_image(height: int, width: int, seed: int = 0) -> NDArray[np.uint8]:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    ("shape", "options"),
    [
        ((123, 157), {"tile": 32, "overlap": 8}),
        ((61, 97), {"tile": 50, "overlap": 25, "batch_size": 4}),
        ((45, 29), {"tile": 16, "overlap": 0, "batch_size": 3}),
        ((33, 71), {"tile": 20, "overlap": 5, "palette": CamVidPalette.camvid11()}),
        ((40, 41), {"tile": 24, "overlap": 6, "min_confidence": 0.6}),
        ((17, 300), {"tile": 64, "overlap": 31}),
    ],
)
@pytest.mark.parametrize("channels", [33, 32])
def test_tiled_equals_untiled_exactly_for_a_pixel_local_model(
    shape: tuple[int, int], options: dict[str, object], channels: int
) -> None:
    # Every pixel's scores are computed the same way in every tile and the blend is a running
    # weighted mean, so agreeing tiles give exactly the untiled scores.
    image = random_image(*shape)
    plain_options = {k: v for k, v in options.items() if k not in ("tile", "overlap")}
    plain = Segmenter(NearestColorBackend(channels=channels), **plain_options)  # type: ignore[arg-type]
    tiled = Segmenter(NearestColorBackend(channels=channels), **options)  # type: ignore[arg-type]
    want = plain.segment(image, return_scores=True)
    got = tiled.segment(image, return_scores=True)
    np.testing.assert_array_equal(got.labels, want.labels)
    # Confidence is a blocked BLAS sum: exact up to CONFIDENCE_RTOL when the blocking differs.
    np.testing.assert_allclose(got.confidence, want.confidence, rtol=CONFIDENCE_RTOL, atol=0)
    if want.scores is not None:
        assert got.scores is not None
        np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(
        tiled.predict_scores([image])[0], plain.predict_scores([image])[0]
    )


def test_tiles_respect_the_input_multiple() -> None:
    image = random_image(45, 70)
    backend = NearestColorBackend(input_multiple=16)
    want = Segmenter(NearestColorBackend()).segment(image)
    got = Segmenter(backend, tile=24, overlap=4).segment(image)
    np.testing.assert_array_equal(got.labels, want.labels)
    # Confidence is a blocked BLAS sum: exact up to CONFIDENCE_RTOL when the blocking differs.
    np.testing.assert_allclose(got.confidence, want.confidence, rtol=CONFIDENCE_RTOL, atol=0)


@attrs.define
class RecordingBackend:
    """The fake model, remembering the shape of every batch it saw."""

    inner: NearestColorBackend = attrs.field(factory=NearestColorBackend)
    shapes: list[tuple[int, ...]] = attrs.field(factory=list)

    @property
    def name(self) -> str:
        return "recording"

    @property
    def input_multiple(self) -> int:
        return 1

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        self.shapes.append(batch.shape)
        return self.inner.predict(batch)


def test_large_images_are_tiled_automatically(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(segmenter_module, "DEFAULT_TILE", 64)  # a small image is enough then
    image, truth = street_scene(150, 170, seed=3)
    backend = RecordingBackend()
    seg = Segmenter(backend, max_pixels=10_000, overlap=16, batch_size=2).segment(image)
    np.testing.assert_array_equal(seg.labels, truth)
    assert backend.shapes == [(2, 64, 64, 3)] * 6  # 3 tile rows of 4 tiles, 2 per call
    backend.shapes.clear()
    Segmenter(backend, max_pixels=None, overlap=16).segment(image)
    assert backend.shapes == [(1, 150, 170, 3)]
    backend.shapes.clear()
    Segmenter(backend, overlap=16).segment(image)  # the default budget is far above 150 x 170
    assert backend.shapes == [(1, 150, 170, 3)]


def test_a_batch_mixing_tiled_and_whole_images_keeps_its_order() -> None:
    images = [random_image(20, 30, seed=1), random_image(70, 90, seed=2), random_image(9, 9)]
    segmenter = Segmenter(NearestColorBackend(), max_pixels=1000, overlap=8, batch_size=3)
    assert [segmenter.needs_bands(image) for image in images] == [False, True, False]
    plain = Segmenter(NearestColorBackend(), max_pixels=None)
    results = list(segmenter.segment_batch(images))
    assert [r.shape for r in results] == [(20, 30), (70, 90), (9, 9)]
    for image, got in zip(images, results, strict=True):
        np.testing.assert_array_equal(got.labels, plain.segment(image).labels)
    scores = segmenter.predict_scores(images)
    for image, got_scores in zip(images, scores, strict=True):
        np.testing.assert_array_equal(got_scores, plain.predict_scores([image])[0])


def test_huge_image_with_max_side_is_finalised_in_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    image = random_image(61, 83, seed=5)
    plain = Segmenter(NearestColorBackend(), max_side=40, max_pixels=None)
    want = plain.segment(image, return_scores=True)
    monkeypatch.setattr(segmenter_module, "_BAND_BYTES", 83 * 33 * 4 * 7)  # 7-row bands
    banded = Segmenter(NearestColorBackend(), max_side=40, max_pixels=1000)
    assert banded.needs_bands(image)
    got = banded.segment(image, return_scores=True)
    np.testing.assert_array_equal(got.labels, want.labels)
    # Confidence is a blocked BLAS sum: exact up to CONFIDENCE_RTOL when the blocking differs.
    np.testing.assert_allclose(got.confidence, want.confidence, rtol=CONFIDENCE_RTOL, atol=0)
    assert got.scores is not None
    assert want.scores is not None
    np.testing.assert_array_equal(got.scores, want.scores)
    np.testing.assert_array_equal(
        banded.predict_scores([image])[0], plain.predict_scores([image])[0]
    )


@attrs.define
class PositionBackend:
    """Scores that depend on where a pixel sits in its input, so tiles disagree on every pixel."""

    @property
    def name(self) -> str:
        return "position"

    @property
    def input_multiple(self) -> int:
        return 1

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        check_batch(batch)
        b, h, w, _ = batch.shape
        u = (np.arange(w, dtype=np.float32) + 0.5) / w
        v = (np.arange(h, dtype=np.float32) + 0.5) / h
        k = np.arange(33, dtype=np.float32) / 32
        logits = 6.0 * (u[None, :, None] * k + v[:, None, None] * (1 - k))
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        return np.broadcast_to(probs, (b, h, w, 33)).astype(np.float32)


def largest_step(scores: Scores) -> float:
    return float(max(np.abs(np.diff(scores, axis=0)).max(), np.abs(np.diff(scores, axis=1)).max()))


def test_blending_leaves_no_seams() -> None:
    image = random_image(96, 160)
    untiled = Segmenter(PositionBackend()).segment(image, return_scores=True).scores
    assert untiled is not None
    smooth_inside = largest_step(untiled)  # the model's own gradient
    hard = Segmenter(PositionBackend(), tile=32, overlap=0).segment(image, return_scores=True)
    blended = Segmenter(PositionBackend(), tile=32, overlap=16).segment(image, return_scores=True)
    assert hard.scores is not None
    assert blended.scores is not None
    # Tiles disagree by a lot: without overlap the seams are jumps ...
    assert largest_step(hard.scores) > 10 * smooth_inside
    # ... blended over 16 pixels they are ramps no steeper than (disagreement) * pi / (2 * 16).
    disagreement = float(np.abs(untiled.max(axis=(0, 1)) - untiled.min(axis=(0, 1))).max())
    assert largest_step(blended.scores) <= smooth_inside + disagreement * np.pi / 32 + 1e-6
    assert largest_step(blended.scores) < largest_step(hard.scores) / 3


def test_tiled_memory_stays_well_below_the_full_score_array() -> None:
    image = random_image(400, 1000)
    full_scores = 400 * 1000 * 33 * 4
    segmenter = Segmenter(NearestColorBackend(), tile=48, overlap=8, keep_image=False)
    tracemalloc.start()
    try:
        seg = segmenter.segment(image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seg.labels.shape == (400, 1000)
    # One tile row of scores (48 of 400 rows) plus the argmax's temporaries of one band.
    assert peak < 0.3 * full_scores


def test_segmenter_tiling_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="at most half the tile"):
        Segmenter(NearestColorBackend(), tile=64, overlap=40)
    with pytest.raises(ConfigError, match="at most half the tile"):
        Segmenter(NearestColorBackend(), overlap=300)  # the automatic tile is 512
    with pytest.raises(ConfigError, match="tile must be an integer >= 1 or null"):
        Segmenter(NearestColorBackend(), tile=0)
    with pytest.raises(ConfigError, match="max_pixels must be an integer >= 1 or null"):
        Segmenter(NearestColorBackend(), max_pixels=0)
