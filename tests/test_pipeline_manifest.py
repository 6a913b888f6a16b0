"""The manifest is only ever replaced whole: a failed write leaves the previous one as it was.

Public names only (``camvidseg.pipeline.__all__``): the pipeline module is being split into a
package and these tests must keep passing through the move.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from camvidseg import Segmenter
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.pipeline import MANIFEST_NAME, RunOptions, discover_inputs, run_pipeline
from tests.hostile import write_scene

OPTIONS = RunOptions(outputs=("labels",))


def _run(folder: Path, **kwargs: Any) -> None:
    plan = discover_inputs([folder / "in"], folder / "out")
    run_pipeline(Segmenter(NearestColorBackend()), plan, OPTIONS, **kwargs)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_manifest_write_that_fails_keeps_the_previous_manifest(tmp_path: Path) -> None:
    write_scene(tmp_path / "in" / "a.png")
    write_scene(tmp_path / "in" / "b.png", seed=1)
    _run(tmp_path)
    manifest = tmp_path / "out" / MANIFEST_NAME
    before = manifest.read_bytes()
    assert json.loads(before)["status"] == "complete"
    files = _files(tmp_path / "out")

    # The extra field cannot be serialised: the write fails after the file was opened.
    with pytest.raises(TypeError, match="not JSON serializable"):
        _run(tmp_path, manifest_extra=lambda: {"evaluation": object()})

    assert manifest.read_bytes() == before
    assert _files(tmp_path / "out") == files  # no partial or temporary file left beside it


def test_the_manifest_is_moved_into_place_from_a_temporary_file_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_scene(tmp_path / "in" / "a.png")
    out = tmp_path / "out"
    moves: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def recording_replace(src: Any, dst: Any, **kwargs: Any) -> None:
        source, target = Path(src), Path(dst)
        if target.name == MANIFEST_NAME:
            # Complete JSON before it takes the manifest's name, never after.
            assert json.loads(source.read_bytes())["output"] == str(out)
            moves.append((source, target))
        real_replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", recording_replace)
    _run(tmp_path)
    # Once when the run starts ("running"), once when it ends ("complete").
    assert [target for _, target in moves] == [out / MANIFEST_NAME] * 2
    for source, _ in moves:
        assert source.parent == out  # same file system, so the rename is atomic
        assert source.name.startswith(".")  # hidden: never taken for an output
        assert not source.exists()
    assert json.loads((out / MANIFEST_NAME).read_text())["status"] == "complete"
