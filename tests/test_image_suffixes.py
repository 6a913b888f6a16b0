"""One set of image suffixes for every command: segment, evaluate and tune list the same files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import camvidseg.evaluation
import camvidseg.pipeline
from camvidseg import Segmenter
from camvidseg.evaluation import evaluate_segmenter, list_image_files
from camvidseg.imageio import IMAGE_SUFFIXES, open_image
from camvidseg.palette import CamVidPalette
from camvidseg.pipeline import discover_inputs
from camvidseg.testing import NearestColorBackend, street_scene
from camvidseg.tune import SearchSpace, tune

C32 = CamVidPalette.camvid32()


def test_one_set_of_suffixes_everywhere() -> None:
    assert camvidseg.pipeline.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert camvidseg.evaluation.IMAGE_SUFFIXES is IMAGE_SUFFIXES
    assert {".gif", ".ppm", ".png", ".jpg"} <= IMAGE_SUFFIXES
    assert all(s == s.lower() and s.startswith(".") for s in IMAGE_SUFFIXES)


@pytest.mark.parametrize("suffix", sorted(IMAGE_SUFFIXES))
def test_every_suffix_is_read_by_pillow(tmp_path: Path, suffix: str) -> None:
    image, _ = street_scene(32, 48, seed=3)
    path = tmp_path / f"scene{suffix}"
    Image.fromarray(image).save(path)
    loaded = open_image(path)
    assert loaded.array.shape == (32, 48, 3)
    if suffix in (".png", ".bmp", ".tif", ".tiff", ".ppm", ".pnm"):  # lossless RGB
        assert np.array_equal(loaded.array, image)


def write_mixed_folder(folder: Path, truth_folder: Path) -> list[str]:
    """Scenes as .gif, .ppm, .png and .jpg, a text file, and ground truth for every scene."""
    folder.mkdir()
    truth_folder.mkdir()
    names = ["a.gif", "b.ppm", "c.png", "d.jpg"]
    for seed, name in enumerate(names):
        image, labels = street_scene(32, 48, seed=seed)
        Image.fromarray(image).save(folder / name)
        stem = name.rsplit(".", 1)[0]
        Image.fromarray(C32.colorize(labels)).save(truth_folder / f"{stem}_L.png")
    (folder / "notes.txt").write_text("not an image\n")
    return names


def test_segment_evaluate_and_tune_take_the_same_files(tmp_path: Path) -> None:
    images, truth = tmp_path / "images", tmp_path / "truth"
    names = write_mixed_folder(images, truth)

    plan = discover_inputs([images], tmp_path / "out")
    assert [file.path.name for file in plan.files] == names
    assert plan.rejected == ()
    assert [path.name for path in list_image_files(images)] == names

    result = evaluate_segmenter(Segmenter(NearestColorBackend()), images, truth)
    assert result.num_images == len(names)

    tuned = tune(
        images,
        truth,
        model=NearestColorBackend(),
        cache_dir=tmp_path / "cache",
        space=SearchSpace(
            tta=[None],
            opening=[0],
            closing=[0],
            min_region=[0],
            majority=[0],
            min_confidence=[None],
        ),
    )
    assert tuned.num_images == len(names)
    assert tuned.problems == ()
