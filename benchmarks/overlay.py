"""Blending a colour mask over a 960x720 image (alpha 0.6).

Fast path: ``postprocess.overlay`` (exact 64 kB blend table). References: the bandwidth floor (one
``np.max`` pass over the image), the obvious float64 expression (bit-identical output), the
tutorial's float blend, and OpenCV's ``cv2.addWeighted`` when installed (its rounding differs in
a few pixels: speed comparison only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmarks import _tutorial
from benchmarks._common import (
    Row,
    frame_image,
    frame_labels,
    have_module,
    ms,
    print_rows,
    row,
    timeit,
    timings,
)
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import overlay
from tests.reference import overlay_reference

ALPHA = 0.6


def main() -> list[Row]:
    image = frame_image()
    mask = CamVidPalette.camvid32().colorize(frame_labels(seed=1))
    if not np.array_equal(overlay(image, mask, ALPHA), overlay_reference(image, mask, ALPHA)):
        raise AssertionError("fast overlay differs from the reference")
    functions: dict[str, Callable[[], object]] = {
        "fast": lambda: overlay(image, mask, ALPHA),
        "obvious": lambda: overlay_reference(image, mask, ALPHA),
        "tutorial": lambda: _tutorial.overlay(image, mask, ALPHA),
    }
    if have_module("cv2"):
        import cv2

        functions["opencv"] = lambda: cv2.addWeighted(image, 1 - ALPHA, mask, ALPHA, 0.0)
    t = timings(functions)
    floor = timeit(lambda: np.max(image))
    fast = t["fast"]
    rows = [
        row(
            "overlay: time / bandwidth floor (image)",
            fast / floor,
            unit="x floor",
            detail=f"{ms(fast)} vs np.max pass {ms(floor)}",
        ),
        row(
            "overlay: speed-up vs float64 expression (bit-identical)",
            t["obvious"] / fast,
            detail=f"{ms(t['obvious'])} -> {ms(fast)}",
        ),
        row(
            "overlay: speed-up vs tutorial float blend",
            t["tutorial"] / fast,
            detail=f"{ms(t['tutorial'])} -> {ms(fast)}",
        ),
    ]
    if "opencv" in t:
        rows.append(
            row(
                "overlay: speed-up vs OpenCV cv2.addWeighted (not bit-identical)",
                t["opencv"] / fast,
                detail=f"{ms(t['opencv'])} -> {ms(fast)}",
            )
        )
    return rows


if __name__ == "__main__":
    print_rows(main())
