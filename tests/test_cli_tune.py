"""``camvidseg tune`` end to end with the noisy fake model (``--model fake:noisy``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from camvidseg import CleanupConfig
from camvidseg.cli import main
from camvidseg.cli.tune import default_cache_dir, model_key
from camvidseg.config import load_config
from camvidseg.tune import ABSTAIN_NOTE


@pytest.fixture(scope="module")
def data(street_dataset: Path) -> Path:
    return street_dataset


def tune_args(data: Path, cache: Path, *extra: str) -> list[str]:
    return [
        "tune", str(data / "images"), str(data / "gt"), "--model", "fake:noisy", "--cache",
        str(cache), *extra,
    ]  # fmt: skip


def test_tune_writes_the_best_config(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "best.json"
    assert main(tune_args(data, tmp_path / "cache", "-o", str(out))) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[1].split() == ["1", "94.03%", "99.09%", "-", "majority", "3", "-"]
    assert any(line.split()[:3] == ["base", "83.57%", "91.89%"] for line in lines)
    assert f"note: {ABSTAIN_NOTE}" in captured.out
    assert f"best setting written to {out}" in captured.err
    assert "8 image views computed, 0 read from the cache" in captured.err
    config = load_config(out)
    assert config.cleanup == CleanupConfig(majority=3)
    assert config.model == "fake:noisy"

    # Again: every prediction comes from the cache.
    assert main([*tune_args(data, tmp_path / "cache"), "--json", "--top", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["computed_views"], report["reused_views"]) == (0, 8)
    assert report["best"]["cleanup"]["majority"] == 3
    assert report["best"]["score"] == pytest.approx(0.9403, abs=5e-5)
    assert report["baseline"]["miou"] == pytest.approx(0.8357, abs=5e-5)
    assert len(report["trials"]) == 2
    assert report["output"] is None
    assert report["config"] == config.to_dict()


def test_tune_with_grid_objective_and_base_config(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"tta": [None], "opening": [0], "closing": [0],
                                "min_region": [0, 16], "majority": [0, 3, 5]}))  # fmt: skip
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"classes": 11, "max_side": 80, "description": "mine"}))
    out = tmp_path / "tuned.json"
    code = main([
        *tune_args(data, tmp_path / "cache", "--grid", str(grid), "--config", str(base)),
        "--objective", "iou:Road", "--search", "coordinate", "-o", str(out), "--json",
    ])  # fmt: skip
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["objective"] == "iou:Road"
    assert report["search"] == "coordinate"
    assert report["best"]["tta"] is None
    tuned = load_config(out)
    assert (tuned.classes, tuned.max_side) == (11, 80)  # kept from the base config
    assert tuned.cleanup.majority in (0, 3, 5)
    assert tuned.cleanup.min_region in (0, 16)
    assert report["best"]["score"] > report["baseline"]["score"]


def test_tune_problems_exit_1(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("f0.png", "f1.png"):
        (images / name).write_bytes((data / "images" / name).read_bytes())
    (images / "extra.png").write_bytes((data / "images" / "f2.png").read_bytes())
    code = main(["tune", str(images), str(data / "gt"), "--model", "fake:noisy", "--cache",
                 str(tmp_path / "cache"), "-q"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "extra.png: no ground truth for 'extra'" in err


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"--grid": '{"majority": [4]}'}, "grid.json: search axis 'majority': values must be 0"),
        ({"--grid": "[1,"}, "grid.json: not valid JSON"),
        ({"--config": '{"cleanup": {"majority": "3"}}'}, "base.json: key 'cleanup': majority "
         "must be "),
        ({"--config": '{"maxside": 1}'}, "base.json: unknown key(s) 'maxside'"),
        ({"--objective": "iou:Sea"}, "'Sea' is not a scored class of camvid32"),
    ],
)  # fmt: skip
def test_tune_usage_errors_exit_2(
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: dict[str, str],
    message: str,
) -> None:
    extra: list[str] = []
    for option, content in setup.items():
        if option == "--objective":
            extra += [option, content]
            continue
        path = tmp_path / ("grid.json" if option == "--grid" else "base.json")
        path.write_text(content)
        extra += [option, str(path)]
    assert main([*tune_args(data, tmp_path / "cache"), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("camvidseg: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_tune_missing_folder_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tune", str(tmp_path), str(tmp_path / "nope"), "--cache", str(tmp_path)]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_model_key_and_default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert model_key("https://tfhub.dev/x/1") == "https://tfhub.dev/x/1"
    assert model_key("fake:noisy") == "fake:noisy"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"one")
    first = model_key(str(folder))
    assert first.startswith(str(folder.resolve()) + "@")
    (folder / "saved_model.pb").write_bytes(b"other")  # a new model at the same path
    assert model_key(str(folder)) != first
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "camvidseg" / "tune"


def test_tune_tiling_flags_change_the_cache_key(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"tta": [None], "opening": [0], "closing": [0], "min_region": [0]}))
    base = [*tune_args(data, tmp_path / "cache", "--grid", str(grid)), "--json"]
    assert main(base) == 0
    assert json.loads(capsys.readouterr().out)["computed_views"] == 4
    out = tmp_path / "tiled.json"
    assert main([*base, "--tile", "48", "--overlap", "8", "-o", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["computed_views"], report["reused_views"]) == (4, 0)  # other predictions
    config = load_config(out)
    assert (config.tile, config.overlap) == (48, 8)
