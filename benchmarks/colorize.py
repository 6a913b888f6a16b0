"""Colouring a 960x720 CamVid-32 label map.

Fast paths: ``CamVidPalette.colorize`` (pair table kept by the palette) and
``postprocess.colorize`` (tables built per call). References: the bandwidth floor (one ``np.max``
pass over the RGB output), the obvious ``lut[labels]`` fancy indexing, the tutorial's per-class
loop, and OpenCV's ``cv2.LUT`` when installed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import _tutorial
from benchmarks._common import Row, frame_labels, have_module, ms, print_rows, row, timeit, timings
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import colorize
from tests.reference import colorize_reference


def main() -> list[Row]:
    palette = CamVidPalette.camvid32()
    labels = frame_labels()
    expected = colorize_reference(labels, palette.colors)
    for got in (palette.colorize(labels), colorize(labels, palette.colors)):
        if not np.array_equal(got, expected):
            raise AssertionError("fast colorize differs from the reference")
    functions: dict[str, Callable[[], object]] = {
        "palette": lambda: palette.colorize(labels),
        "function": lambda: colorize(labels, palette.colors),
        "obvious": lambda: palette.color_lut[labels],
        "tutorial": lambda: _tutorial.colorize(labels, palette.colors),
    }
    if have_module("cv2"):
        import cv2

        lut = palette.color_lut.reshape(256, 1, 3)

        def opencv() -> object:
            return cv2.LUT(cv2.merge([labels, labels, labels]), lut)

        functions["opencv"] = opencv
        if not np.array_equal(np.asarray(opencv()), expected):
            raise AssertionError("cv2.LUT colouring differs from the reference")
    t = timings(functions)
    floor = timeit(lambda: np.max(expected))
    fast = t["palette"]
    rows = [
        row(
            "colorize: time / bandwidth floor (RGB output)",
            fast / floor,
            unit="x floor",
            detail=f"{ms(fast)} vs np.max pass {ms(floor)}",
        ),
        row(
            "colorize: speed-up vs lut[labels]",
            t["obvious"] / fast,
            detail=f"{ms(t['obvious'])} -> {ms(fast)}; postprocess.colorize {ms(t['function'])}",
        ),
        row(
            "colorize: speed-up vs tutorial per-class loop",
            t["tutorial"] / fast,
            detail=f"{ms(t['tutorial'])} -> {ms(fast)}",
        ),
    ]
    if "opencv" in t:
        rows.append(
            row(
                "colorize: speed-up vs OpenCV cv2.LUT",
                t["opencv"] / fast,
                detail=f"{ms(t['opencv'])} -> {ms(fast)} (merge + LUT)",
            )
        )
    return rows


if __name__ == "__main__":
    print_rows(main())
