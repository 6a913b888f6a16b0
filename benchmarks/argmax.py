"""Labels + confidence from one 960x720 frame of 33-channel scores (numpy paths).

Rows: the fast path against the memory-bandwidth floor (one ``np.max`` pass over the scores),
against the obvious ``np.argmax`` + ``np.max`` (the target: >= 2x faster, identical output), and
against the obvious labels+confidence (argmax, max and sum) that it replaces.
"""

from __future__ import annotations

import numpy as np

from benchmarks._common import Row, floor_time, frame_scores, ms, print_rows, row, timings
from camvidseg.postprocess import CONFIDENCE_RTOL, ChannelLayout, labels_and_confidence
from tests.reference import labels_and_confidence_reference


def main() -> list[Row]:
    scores = frame_scores(33)
    layout = ChannelLayout.detect(33)
    kept = scores[..., 1:]

    labels, conf = labels_and_confidence(scores, layout)
    ref_labels, ref_conf = labels_and_confidence_reference(scores, layout)
    identical = bool(
        np.array_equal(labels, ref_labels)
        and np.array_equal(
            labels_and_confidence(scores, layout, renormalize=False)[1], np.max(kept, axis=-1)
        )
    )
    close = bool(np.allclose(conf, ref_conf, rtol=CONFIDENCE_RTOL, atol=0))
    if not (identical and close):
        raise AssertionError("fast labels/confidence differ from the reference")

    floor = floor_time(scores)
    t = timings(
        {
            "fast": lambda: labels_and_confidence(scores, layout),
            "argmax+max": lambda: (np.argmax(kept, axis=-1), np.max(kept, axis=-1)),
            "reference": lambda: labels_and_confidence_reference(scores, layout),
        }
    )
    note = "labels identical, confidence within CONFIDENCE_RTOL"
    return [
        row(
            "argmax+confidence numpy: time / bandwidth floor",
            t["fast"] / floor,
            unit="x floor",
            detail=f"{ms(t['fast'])} vs np.max pass {ms(floor)}",
        ),
        row(
            "argmax+confidence numpy: speed-up vs np.argmax+np.max",
            t["argmax+max"] / t["fast"],
            ">= 2",
            detail=f"{ms(t['argmax+max'])} -> {ms(t['fast'])}; {note}",
        ),
        row(
            "argmax+confidence numpy: speed-up vs argmax+max+sum",
            t["reference"] / t["fast"],
            detail=f"{ms(t['reference'])} -> {ms(t['fast'])}",
        ),
    ]


if __name__ == "__main__":
    print_rows(main())
