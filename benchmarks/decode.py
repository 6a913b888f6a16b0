"""Decoding a 960x720 RGB label image (CamVid ``*_L.png`` style) back to CamVid-32 ids.

Fast path: ``CamVidPalette.decode`` (3-byte-stride key packing + 2**24-entry table kept by the
palette; the one-off table build is reported separately). References: the bandwidth floor (one
``np.max`` pass over the RGB image), the obvious packed-key ``searchsorted`` (the previous
implementation) and the tutorial's per-class ``np.all(rgb == colour)`` loop.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks import _tutorial
from benchmarks._common import Row, frame_labels, ms, print_rows, row, timeit, timings
from camvidseg.palette import CAMVID32_CLASSES, CamVidPalette
from tests.reference import decode_reference


def main() -> list[Row]:
    labels = frame_labels()
    rgb = CamVidPalette.camvid32().colorize(labels)
    fresh = CamVidPalette.from_classes("camvid32-copy", CAMVID32_CLASSES)  # no table yet
    started = time.perf_counter()
    fresh.decode_table()
    build = time.perf_counter() - started
    palette = CamVidPalette.camvid32()
    expected, _ = decode_reference(rgb, palette.colors, 255)
    if not (np.array_equal(palette.decode(rgb), expected) and np.array_equal(expected, labels)):
        raise AssertionError("fast decode differs from the reference")
    t = timings(
        {
            "fast": lambda: palette.decode(rgb),
            "obvious": lambda: decode_reference(rgb, palette.colors, 255),
            "tutorial": lambda: _tutorial.decode(rgb, palette.colors),
        }
    )
    floor = timeit(lambda: np.max(rgb))
    fast = t["fast"]
    return [
        row(
            "decode: time / bandwidth floor (RGB input)",
            fast / floor,
            unit="x floor",
            detail=f"{ms(fast)} vs np.max pass {ms(floor)}; table built once in {ms(build)}",
        ),
        row(
            "decode: speed-up vs packed-key searchsorted",
            t["obvious"] / fast,
            detail=f"{ms(t['obvious'])} -> {ms(fast)}",
        ),
        row(
            "decode: speed-up vs tutorial per-class loop",
            t["tutorial"] / fast,
            detail=f"{ms(t['tutorial'])} -> {ms(fast)}",
        ),
    ]


if __name__ == "__main__":
    print_rows(main())
