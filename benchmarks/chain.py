"""The whole postprocessing chain for one 960x720 frame: scores -> labels, confidence, colour
mask and overlay (alpha 0.6).

Fast chains: numpy only (``labels_and_confidence`` + ``CamVidPalette.colorize`` + ``overlay``),
and with the labels computed in the TF graph (the XLA op of ``TFHubBackend.predict_labels`` on
scores already in TF, when TensorFlow is installed). Reference: the tutorial-style chain (drop the
background channel, ``np.argmax``, max/sum confidence, per-class colour loop, float blend), and
the bandwidth floor (one ``np.max`` pass over the scores). Target: >= 10x faster than the
tutorial.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks import _tutorial
from benchmarks._common import (
    Row,
    floor_time,
    frame_image,
    frame_scores,
    have_module,
    ms,
    print_rows,
    row,
    timings,
)
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout, labels_and_confidence, overlay

ALPHA = 0.6


def main() -> list[Row]:
    scores = frame_scores(33)
    image = frame_image()
    palette = CamVidPalette.camvid32()
    layout = ChannelLayout.detect(33)

    def numpy_chain() -> tuple[Any, ...]:
        labels, conf = labels_and_confidence(scores, layout)
        color = palette.colorize(labels)
        return labels, conf, color, overlay(image, color, ALPHA)

    def tutorial_chain() -> tuple[Any, ...]:
        labels, conf = _tutorial.labels_and_confidence(scores)
        color = _tutorial.colorize(labels, palette.colors)
        return labels, conf, color, _tutorial.overlay(image, color, ALPHA)

    functions: dict[str, Callable[[], tuple[Any, ...]]] = {
        "numpy": numpy_chain,
        "tutorial": tutorial_chain,
    }
    if have_module("tensorflow") and have_module("tensorflow_hub"):
        from camvidseg.backends.tfhub import import_tensorflow, labels_and_confidence_op

        tf, _ = import_tensorflow()
        tensor = tf.constant(scores)
        op = labels_and_confidence_op(layout)

        def fused_chain() -> tuple[Any, ...]:
            labels_t, conf_t = op(tensor)
            labels = labels_t.numpy()
            color = palette.colorize(labels)
            return labels, conf_t.numpy(), color, overlay(image, color, ALPHA)

        functions["fused"] = fused_chain
    # Same labels, colour mask and overlay as the tutorial (confidence: float rounding only).
    expected = tutorial_chain()
    for name, function in functions.items():
        got = function()
        if not all(np.array_equal(got[k], expected[k]) for k in (0, 2, 3)):
            raise AssertionError(f"the {name} chain differs from the tutorial chain")
    t = timings(functions, repeat=5)
    floor = floor_time(scores)
    rows = [
        row(
            "chain per frame, numpy: speed-up vs tutorial-style",
            t["tutorial"] / t["numpy"],
            ">= 10",
            detail=f"{ms(t['tutorial'])} -> {ms(t['numpy'])} ({t['numpy'] / floor:.1f}x floor)",
        )
    ]
    if "fused" in t:
        rows.append(
            row(
                "chain per frame, labels in TF (XLA): speed-up vs tutorial-style",
                t["tutorial"] / t["fused"],
                ">= 10",
                detail=f"{ms(t['tutorial'])} -> {ms(t['fused'])} ({t['fused'] / floor:.1f}x floor)",
            )
        )
    return rows


if __name__ == "__main__":
    print_rows(main())
