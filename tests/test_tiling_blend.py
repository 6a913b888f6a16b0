"""Tile scores are blended with raised-cosine weights, not averaged.

The exactness tests of tiling use a pixel-local fake, on which every tile agrees and any
blending weights give the same result. Here the fake's answer depends on where a pixel sits
*inside the tile it was given*, so neighbouring tiles disagree over their overlap and the
blended scores (and labels) pin down the weights.
"""

from __future__ import annotations

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg import Segmenter
from camvidseg.palette import CamVidPalette
from camvidseg.tiling import axis_weights, tile_spans

C32 = CamVidPalette.camvid32()
ROAD, SKY = C32.id_of("Road"), C32.id_of("Sky")
#: 40 x 56 in tiles of 24 overlapping by 8: 2 tile rows, 3 tile columns.
HEIGHT, WIDTH, TILE, OVERLAP = 40, 56, 24, 8
ROWS = ((0, 24), (16, 40))
COLS = ((0, 24), (16, 40), (32, 56))
#: Road's score: a mix of the row and column positions, lopsided so that no pixel ties.
ROW_SHARE, COL_SHARE, OFFSET = 0.3, 0.6, 0.05


def position(length: int) -> NDArray[np.float64]:
    """Where each pixel sits along an axis of ``length`` pixels, in ``(0, 1)``."""
    return (np.arange(length, dtype=np.float64) + 0.5) / length


@attrs.define
class TilePositionBackend:
    """33 channels; Road scores ``0.3 y + 0.6 x + 0.05`` for the pixel's position ``(y, x)``
    in its tile (each in ``(0, 1)``), Sky the rest.

    Pixels near a tile's bottom-right corner say Road, near its top-left Sky, whatever the
    image shows.
    """

    @property
    def name(self) -> str:
        return "fake:tile-position"

    @property
    def input_multiple(self) -> int:
        return 1

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        count, height, width, _ = batch.shape
        road = ROW_SHARE * position(height)[:, None] + COL_SHARE * position(width)[None, :]
        road += OFFSET
        scores = np.zeros((count, height, width, 33), np.float32)
        scores[..., ROAD + 1] = road
        scores[..., SKY + 1] = 1.0 - road
        return scores


def raised_cosine_weights(spans: tuple[tuple[int, int], ...]) -> list[NDArray[np.float64]]:
    """Per tile, its weight over the whole axis: sin^2 rising across the overlap with the
    previous tile, falling (cos^2) across the overlap with the next, 1 elsewhere, 0 outside."""
    length = spans[-1][1]
    weights = []
    for index, (start, stop) in enumerate(spans):
        weight = np.zeros(length)
        weight[start:stop] = 1.0
        if index > 0:
            rise = spans[index - 1][1] - start
            weight[start : start + rise] = np.sin(np.pi / 2 * position(rise)) ** 2
        if index + 1 < len(spans):
            fall = stop - spans[index + 1][0]
            weight[stop - fall : stop] = np.cos(np.pi / 2 * position(fall)) ** 2
        weights.append(weight)
    return weights


def uniform_weights(spans: tuple[tuple[int, int], ...]) -> list[NDArray[np.float64]]:
    """The plain average of the tiles covering each pixel."""
    length = spans[-1][1]
    covering = [np.zeros(length) for _ in spans]
    for weight, (start, stop) in zip(covering, spans, strict=True):
        weight[start:stop] = 1.0
    total = sum(covering)
    return [weight / total for weight in covering]


def blended_position(
    spans: tuple[tuple[int, int], ...], weights: list[NDArray[np.float64]]
) -> NDArray[np.float64]:
    """Along one axis: the weighted mean over tiles of each pixel's position in the tile."""
    length = spans[-1][1]
    out = np.zeros(length)
    for weight, (start, stop) in zip(weights, spans, strict=True):
        out[start:stop] += weight[start:stop] * position(stop - start)
    return out


def expected_road(weighting: str) -> NDArray[np.float64]:
    """Road's blended score: the fake is a sum of a row term and a column term, and the 2-D
    weights are products of per-axis weights that each sum to one, so it blends axis by axis."""
    make = raised_cosine_weights if weighting == "raised cosine" else uniform_weights
    rows = blended_position(ROWS, make(ROWS))
    cols = blended_position(COLS, make(COLS))
    return ROW_SHARE * rows[:, None] + COL_SHARE * cols[None, :] + OFFSET


def labels_of(road: NDArray[np.float64]) -> NDArray[np.uint8]:
    return np.where(road >= 0.5, ROAD, SKY).astype(np.uint8)


def test_the_grid_is_the_one_the_expectations_assume() -> None:
    assert tile_spans(HEIGHT, TILE, OVERLAP) == ROWS
    assert tile_spans(WIDTH, TILE, OVERLAP) == COLS


def test_axis_weights_are_raised_cosines() -> None:
    for spans in (ROWS, COLS):
        for got, want, (start, stop) in zip(
            axis_weights(spans), raised_cosine_weights(spans), spans, strict=True
        ):
            np.testing.assert_allclose(got, want[start:stop], rtol=0, atol=1e-7)


def test_the_weights_decide_the_labels_here() -> None:
    # The premise: with a plain average the same tiles give other labels on many pixels,
    # and no pixel is near a Road/Sky tie.
    road = expected_road("raised cosine")
    assert float(np.abs(road - 0.5).min()) > 5e-4
    changed = labels_of(road) != labels_of(expected_road("uniform"))
    assert int(changed.sum()) >= 400  # of 2240


def test_tiled_scores_and_labels_use_raised_cosine_weights() -> None:
    image = np.zeros((HEIGHT, WIDTH, 3), np.uint8)  # the fake ignores the pixels
    segmenter = Segmenter(TilePositionBackend(), tile=TILE, overlap=OVERLAP, batch_size=4)
    road = expected_road("raised cosine")

    seg = segmenter.segment(image, return_scores=True)

    np.testing.assert_array_equal(seg.labels, labels_of(road))
    assert seg.scores is not None
    np.testing.assert_allclose(seg.scores[..., ROAD], road, rtol=0, atol=1e-6)
    np.testing.assert_allclose(seg.scores[..., SKY], 1.0 - road, rtol=0, atol=1e-6)
    raw = segmenter.predict_scores([image])[0]
    np.testing.assert_allclose(raw[..., ROAD + 1], road, rtol=0, atol=1e-6)
