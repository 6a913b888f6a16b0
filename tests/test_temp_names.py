"""Temporary files of atomic writes have short names: any name the file system accepts works."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from camvidseg import Segmenter
from camvidseg.cli import main
from camvidseg.imageio import TEMP_PREFIX, atomic_write, load_label_png
from camvidseg.pipeline import MANIFEST_NAME, segment_paths
from camvidseg.testing import NearestColorBackend, street_scene

TEMP_NAME = re.compile(re.escape(TEMP_PREFIX) + r"[a-z0-9_]{8}\.tmp")


def longest_name(folder: Path, suffix: str) -> str:
    """A file name of exactly the file system's limit (usually 255 bytes), minus 5 bytes so
    that outputs with another 4-character suffix still fit, ending in ``suffix``."""
    limit = os.pathconf(folder, "PC_NAME_MAX")
    return "n" * (min(limit, 255) - 5 - len(suffix)) + suffix


def test_temporary_name_is_short_hidden_and_beside_the_target(tmp_path: Path) -> None:
    target = tmp_path / ("t" * 250)
    with atomic_write(target) as handle:
        handle.write(b"payload")
        during = sorted(p.name for p in tmp_path.iterdir())
    assert len(during) == 1
    assert TEMP_NAME.fullmatch(during[0])
    assert target.read_bytes() == b"payload"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


def write_then_fail(target: Path) -> None:
    with atomic_write(target) as handle:
        handle.write(b"half")
        raise RuntimeError("boom")


def test_failed_write_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / ("t" * 250)
    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail(target)
    assert list(tmp_path.iterdir()) == []


def test_a_run_removes_stale_temporaries_of_both_namings(tmp_path: Path) -> None:
    image, _ = street_scene(32, 48)
    (tmp_path / "in").mkdir()
    Image.fromarray(image).save(tmp_path / "in" / "s.png")
    out = tmp_path / "out"
    segment_paths(Segmenter(NearestColorBackend()), [tmp_path / "in"], out)
    stale = [
        out / "labels" / ".cvs-k2j4h5g6.tmp",  # this version's name
        out / "color" / ".s.png.abcd1234.tmp",  # the name older versions used
        out / ".manifest.json.q1w2e3r4.tmp",
    ]
    kept = [out / "labels" / ".notes", out / "labels" / ".cvs-short.tmp"]
    for path in stale + kept:
        path.write_bytes(b"left behind")
    segment_paths(Segmenter(NearestColorBackend()), [tmp_path / "in"], out)
    assert [p.exists() for p in stale] == [False] * len(stale)
    assert [p.exists() for p in kept] == [True] * len(kept)


def test_segment_cli_reads_and_writes_a_name_at_the_file_system_limit(tmp_path: Path) -> None:
    image, truth = street_scene(32, 48, seed=2)
    (tmp_path / "in").mkdir()
    name = longest_name(tmp_path / "in", ".png")
    assert len(name.encode()) >= 240
    Image.fromarray(image).save(tmp_path / "in" / name)
    out = tmp_path / "out"

    code = main(["segment", str(tmp_path / "in"), "-o", str(out), "--model", "fake:33", "-q"])

    assert code == 0
    stem = name.removesuffix(".png")
    np.testing.assert_array_equal(load_label_png(out / "labels" / f"{stem}.png"), truth)
    assert (out / "color" / f"{stem}.png").is_file()
    assert (out / "overlay" / f"{stem}.jpg").is_file()
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert [entry["status"] for entry in manifest["entries"]] == ["ok"]
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_written_files_get_the_mode_open_would_give(tmp_path: Path) -> None:
    # mkstemp creates 0600 files; outputs must be as readable as files written with open().
    target = tmp_path / "out.bin"
    with atomic_write(target) as handle:
        handle.write(b"x")
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"x")
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)
