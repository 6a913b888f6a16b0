"""Labels + confidence inside the TensorFlow graph (``TFHubBackend.predict_labels``).

Rows: the XLA-compiled op on a synthetic 720x960x33 score tensor already in TF memory, against
the memory-bandwidth floor (one ``np.max`` pass over the same scores) — target <= 2x; the same op
without XLA; and, on the fake SavedModel's graph, ``predict_labels`` (5 bytes/pixel leave the
graph) against ``predict`` + numpy postprocessing (132 bytes/pixel leave the graph). Skipped
without TensorFlow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    FRAME_HEIGHT,
    FRAME_WIDTH,
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
from camvidseg.postprocess import CONFIDENCE_RTOL, ChannelLayout, labels_and_confidence


def main() -> list[Row]:
    if not (have_module("tensorflow") and have_module("tensorflow_hub")):
        return [row("fused TF labels: skipped (TensorFlow not installed)", float("nan"))]
    from camvidseg.backends.tfhub import import_tensorflow, labels_and_confidence_op

    tf, _ = import_tensorflow()
    layout = ChannelLayout.detect(33)
    scores = frame_scores(33)
    tensor = tf.constant(scores)
    xla = labels_and_confidence_op(layout, jit_compile=True)
    plain = labels_and_confidence_op(layout, jit_compile=False)
    labels, conf = labels_and_confidence(scores, layout)
    for op in (xla, plain):
        got_labels, got_conf = op(tensor)
        if not np.array_equal(got_labels.numpy(), labels):
            raise AssertionError("in-graph labels differ from the numpy path")
        if not np.allclose(got_conf.numpy(), conf, rtol=CONFIDENCE_RTOL, atol=0):
            raise AssertionError("in-graph confidence differs from the numpy path")

    def run(op: Any) -> object:
        out_labels, out_conf = op(tensor)
        return out_labels.numpy(), out_conf.numpy()

    t = timings(
        {
            "xla": lambda: run(xla),
            "plain": lambda: run(plain),
            "numpy": lambda: labels_and_confidence(scores, layout),
        }
    )
    floor = floor_time(scores)
    rows = [
        row(
            "fused labels+confidence (XLA, 720x960x33 in TF): time / floor",
            t["xla"] / floor,
            "<= 2",
            unit="x floor",
            detail=f"{ms(t['xla'])} vs np.max pass {ms(floor)}",
        ),
        row(
            "fused labels+confidence (no XLA): time / floor",
            t["plain"] / floor,
            unit="x floor",
            detail=f"{ms(t['plain'])}",
        ),
        row(
            "fused (XLA) speed-up vs numpy fast path",
            t["numpy"] / t["xla"],
            detail=f"{ms(t['numpy'])} -> {ms(t['xla'])}",
        ),
    ]
    rows.append(_savedmodel_row())
    return rows


def _savedmodel_row() -> Row:
    from camvidseg.backends.tfhub import TFHubBackend
    from camvidseg.testing import write_fake_savedmodel

    with tempfile.TemporaryDirectory() as folder:
        path = write_fake_savedmodel(Path(folder) / "fake33")
        backend = TFHubBackend.load(str(path))
        batch = frame_image()[None].astype(np.float32) / np.float32(255)
        layout = ChannelLayout.detect(33)
        fused_labels, _ = backend.predict_labels(batch, layout)
        if not np.array_equal(
            fused_labels, labels_and_confidence(backend.predict(batch), layout)[0]
        ):
            raise AssertionError("predict_labels differs from predict + numpy")
        t = timings(
            {
                "fused": lambda: backend.predict_labels(batch, layout),
                "scores": lambda: labels_and_confidence(backend.predict(batch), layout),
            },
            repeat=5,
        )
    return row(
        f"fake SavedModel {FRAME_WIDTH}x{FRAME_HEIGHT}: predict_labels speed-up vs predict+numpy",
        t["scores"] / t["fused"],
        detail=f"{ms(t['scores'])} -> {ms(t['fused'])} (model included)",
    )


if __name__ == "__main__":
    print_rows(main())
