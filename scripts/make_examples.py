"""Regenerate the bundled example images (synthetic, so they can ship under Apache-2.0).

    python scripts/make_examples.py

Writes ``examples/images/street_NN.jpg`` (480x360) and the exact ground truth
``examples/labels/street_NN_L.png`` (RGB, CamVid-32 colours, like CamVid's ``*_L.png``).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from camvidseg.palette import CamVidPalette
from camvidseg.testing import street_scene

ROOT = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    palette = CamVidPalette.camvid32()
    (ROOT / "images").mkdir(parents=True, exist_ok=True)
    (ROOT / "labels").mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate((3, 5, 8), start=1):
        image, labels = street_scene(360, 480, seed=seed)
        Image.fromarray(image).save(ROOT / "images" / f"street_{index:02d}.jpg", quality=90)
        Image.fromarray(palette.colorize(labels)).save(
            ROOT / "labels" / f"street_{index:02d}_L.png", optimize=True
        )


if __name__ == "__main__":
    main()
