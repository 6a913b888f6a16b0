"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

small_side = st.integers(min_value=1, max_value=12)


@st.composite
def label_maps(draw: st.DrawFn, num_classes: int = 32) -> NDArray[np.uint8]:
    shape = (draw(small_side), draw(small_side))
    return draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, num_classes - 1)))


@st.composite
def rgb_images(draw: st.DrawFn) -> NDArray[np.uint8]:
    shape = (draw(small_side), draw(small_side), 3)
    return draw(hnp.arrays(np.uint8, shape))


@st.composite
def probability_scores(draw: st.DrawFn, channels: int = 33) -> NDArray[np.float32]:
    """Scores with deliberate ties: values drawn from a small set, then normalised."""
    shape = (draw(small_side), draw(small_side), channels)
    raw = draw(hnp.arrays(np.float32, shape, elements=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0])))
    raw[..., -1] += 1e-3  # never all-zero
    scores: NDArray[np.float32] = (raw / raw.sum(axis=-1, keepdims=True)).astype(np.float32)
    return scores
