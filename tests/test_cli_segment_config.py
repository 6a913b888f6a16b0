"""``camvidseg segment`` with ``--config``, the post-processing flags and ``--gt``.

The data: four street scenes with exact ground truth, segmented by the fake model with known
speckle noise (``--model fake:noisy``); ``camvidseg tune`` on them picks a 3x3 majority filter.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from camvidseg import CamVidPalette, CleanupConfig, Segmenter, TTAConfig, get_grouping
from camvidseg.cli import main
from camvidseg.config import SegmentConfig, save_config
from camvidseg.imageio import load_label_png, open_image
from camvidseg.testing import SpeckleNoiseBackend, street_scene

C32 = CamVidPalette.camvid32()
#: What the tuner measures on the scenes (tests/test_tune.py asserts the same figures).
TUNED_MIOU = 0.940296517655081
DEFAULT_MIOU = pytest.approx(0.8357, abs=5e-5)


@pytest.fixture(scope="module")
def data(street_dataset: Path) -> Path:
    return street_dataset


@pytest.fixture(scope="module")
def tuned(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """``camvidseg tune`` run once: the config it wrote and its JSON report."""
    folder = tmp_path_factory.mktemp("tuned")
    out = folder / "tuned.json"
    args = ["tune", str(data / "images"), str(data / "gt"), "--model", "fake:noisy",
            "--cache", str(folder / "cache"), "-o", str(out), "--json", "-q"]  # fmt: skip
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(args) == 0
    return out, json.loads(buffer.getvalue())


def segment(data: Path, out: Path, *extra: str) -> list[str]:
    return ["segment", str(data / "images"), "-o", str(out), "--outputs", "labels", *extra]


def manifest(out: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((out / "manifest.json").read_text())
    return result


def test_segment_with_the_tuned_config_reproduces_the_tuned_miou(
    data: Path, tuned: tuple[Path, dict[str, Any]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config, report = tuned
    assert report["best"]["score"] == TUNED_MIOU
    assert report["best"]["cleanup"]["majority"] == 3
    # The config names the model (fake:noisy): no --model needed.
    assert main(segment(data, tmp_path / "out", "--config", str(config), "--gt",
                        str(data / "gt"))) == 0  # fmt: skip
    captured = capsys.readouterr()
    assert "mIoU 94.03%  |  pixel accuracy 99.09%" in captured.out
    written = manifest(tmp_path / "out")
    assert written["evaluation"]["miou"] == TUNED_MIOU
    assert written["evaluation"]["num_images"] == 4
    assert written["model"]["handle"] == "fake:noisy"
    assert written["options"]["cleanup"]["majority"] == 3
    # The labels are the library's: the same Segmenter built from the config.
    segmenter = SegmentConfig.from_dict(json.loads(config.read_text())).build_segmenter(
        SpeckleNoiseBackend()
    )
    expected = segmenter.segment(open_image(data / "images" / "f1.png").array).labels
    np.testing.assert_array_equal(load_label_png(tmp_path / "out" / "labels" / "f1.png"), expected)

    # Resumed: every input is kept from the first run and scored from its label file.
    assert main([*segment(data, tmp_path / "out", "--config", str(config), "--gt",
                          str(data / "gt")), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == 4
    assert summary["evaluation"]["miou"] == TUNED_MIOU


def test_flags_override_the_config(
    data: Path, tuned: tuple[Path, dict[str, Any]], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    config, _ = tuned
    # --majority 0 switches the tuned cleanup off again: back to the default's score.
    assert main([*segment(data, tmp_path / "a", "--config", str(config), "--gt",
                          str(data / "gt"), "--majority", "0"), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["evaluation"]["miou"] == DEFAULT_MIOU
    assert manifest(tmp_path / "a")["options"]["cleanup"] is None
    # --classes 11 wins over the config's 32; the config's cleanup stays.
    assert main([*segment(data, tmp_path / "b", "--config", str(config), "--gt",
                          str(data / "gt"), "--classes", "11"), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert summary["evaluation"]["palette"] == "camvid11"
    assert manifest(tmp_path / "b")["options"]["classes"] == "camvid11"
    assert manifest(tmp_path / "b")["options"]["cleanup"]["majority"] == 3
    # --model wins over the config's model.
    assert main([*segment(data, tmp_path / "c", "--config", str(config), "--model", "fake:33",
                          "--gt", str(data / "gt")), "--json"]) == 0  # fmt: skip
    summary = json.loads(capsys.readouterr().out)
    assert manifest(tmp_path / "c")["model"]["handle"] == "fake:33"
    assert summary["evaluation"]["miou"] < 1.0  # the clean fake, but majority 3 eats thin parts


def test_model_from_the_environment_when_no_flag_or_config_names_one(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("CAMVIDSEG_MODEL", "fake:33")
    config = save_config(SegmentConfig(max_side=48), tmp_path / "c.json")
    assert main([*segment(data, tmp_path / "out", "--config", str(config), "--gt",
                          str(data / "gt")), "--json"]) == 0  # fmt: skip
    written = manifest(tmp_path / "out")
    assert written["model"]["handle"] == "fake:33"
    assert written["options"]["max_side"] == 48
    assert json.loads(capsys.readouterr().out)["evaluation"]["num_images"] == 4


def test_postprocessing_flags(data: Path, tmp_path: Path) -> None:
    args = segment(data, tmp_path / "out", "--model", "fake:noisy", "--tta", "flip",
                   "--tta-scales", "0.5,1", "--min-region", "8", "--opening", "1",
                   "--tile", "64", "--overlap", "16", "--min-confidence", "0.3", "-q")  # fmt: skip
    assert main(args) == 0
    options = manifest(tmp_path / "out")["options"]
    assert options["tta"] == {"flip": True, "scales": [0.5, 1.0]}
    assert options["cleanup"]["min_region"] == 8
    assert options["cleanup"]["opening"] == 1
    assert (options["tile"], options["overlap"], options["min_confidence"]) == (64, 16, 0.3)
    segmenter = Segmenter(
        SpeckleNoiseBackend(),
        tta=TTAConfig(flip=True, scales=(0.5, 1.0)),
        cleanup=CleanupConfig(min_region=8, opening=1),
        tile=64,
        overlap=16,
        min_confidence=0.3,
    )
    for name in ("f0", "f3"):
        expected = segmenter.segment(open_image(data / "images" / f"{name}.png").array).labels
        written = load_label_png(tmp_path / "out" / "labels" / f"{name}.png")
        np.testing.assert_array_equal(written, expected)
    assert (written == 255).any()  # the threshold abstained somewhere


def test_tta_flip_keeps_the_configs_scales(data: Path, tmp_path: Path) -> None:
    config = save_config(
        SegmentConfig(model="fake:noisy", tta=TTAConfig(scales=(0.75, 1.0))), tmp_path / "c.json"
    )
    assert main(segment(data, tmp_path / "a", "--config", str(config), "--tta", "flip", "-q")) == 0
    assert manifest(tmp_path / "a")["options"]["tta"] == {"flip": True, "scales": [0.75, 1.0]}
    assert main(segment(data, tmp_path / "b", "--config", str(config), "--tta", "none", "-q")) == 0
    assert manifest(tmp_path / "b")["options"]["tta"] is None


def test_resume_refuses_outputs_made_with_another_cleanup(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = segment(data, tmp_path / "out", "--model", "fake:noisy", "-q")
    assert main([*base, "--majority", "3"]) == 0
    assert main([*base, "--majority", "5"]) == 2
    err = capsys.readouterr().err
    assert "holds outputs made with other options (cleanup" in err
    assert main([*base, "--majority", "5", "--overwrite"]) == 0


def test_gt_problems_exit_1(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("f0.png", "f1.png"):
        (images / name).write_bytes((data / "images" / name).read_bytes())
    (images / "stray.png").write_bytes((data / "images" / "f2.png").read_bytes())
    args = ["segment", str(images), "-o", str(tmp_path / "out"), "--model", "fake:33",
            "--gt", str(data / "gt"), "--json"]  # fmt: skip
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "stray.png: no ground truth for 'stray'" in captured.err
    summary = json.loads(captured.out)
    assert summary["ok"] == 3  # segmentation itself went fine
    assert summary["evaluation"]["num_images"] == 2
    assert summary["evaluation"]["miou"] == 1.0
    assert [p["kind"] for p in summary["evaluation"]["problems"]] == ["missing_ground_truth"]
    assert manifest(tmp_path / "out")["evaluation"]["problems"][0]["path"].endswith("stray.png")


def test_resumed_inputs_without_labels_cannot_be_scored(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["segment", str(data / "images"), "-o", str(tmp_path / "out"), "--model", "fake:33",
            "--outputs", "color", "--gt", str(data / "gt"), "-q"]  # fmt: skip
    assert main(args) == 0
    assert main(args) == 1
    assert "not scored: its outputs were already present and hold no labels" in (
        capsys.readouterr().err
    )


def test_segnet_ground_truth_needs_classes_11(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    annot = tmp_path / "testannot"
    annot.mkdir()
    group = CamVidPalette.camvid11()
    for i in range(4):
        _, truth = street_scene(72, 96, seed=i)
        Image.fromarray(get_grouping("merge").remap(truth), mode="L").save(annot / f"f{i}.png")
    args = ["segment", str(data / "images"), "-o", str(tmp_path / "out"), "--model", "fake:33",
            "--gt", str(annot)]  # fmt: skip
    assert main([*args, "-q"]) == 2
    assert "evaluate with --classes 11" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # found before anything was segmented
    assert main([*args, "--classes", "11", "--json"]) == 0
    evaluation = json.loads(capsys.readouterr().out)["evaluation"]
    assert evaluation["miou"] == 1.0
    assert evaluation["classes"] == [group.names[i] for i in group.scored_ids]


@pytest.mark.parametrize(
    ("config", "flags", "message"),
    [
        ('{"cleanup": {"majority": "3"}}', [],
         "c.json: key 'cleanup': majority must be "),
        ('{"min_region": 3}', [], "c.json: unknown key(s) 'min_region'"),
        ('{"classes": 11,', [], "c.json: not valid JSON"),
        ('{"version": 9}', [], "c.json: key 'version': this camvidseg reads config versions"),
        ("{}", ["--tta", "none", "--tta-scales", "1,2"], "--tta none and --tta-scales"),
        ("{}", ["--majority", "4"], "majority must be 0 (off) or an odd integer (got 4) "
         "(from the command line)"),
        ("{}", ["--tta-scales", "0,1"], "every scale must be a number in (0, 4] (got 0.0)"),
        ("{}", ["--gt", "/nonexistent/gt"], "ground-truth folder /nonexistent/gt: no such"),
    ],
)  # fmt: skip
def test_bad_configs_and_flags_exit_2(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    config: str, flags: list[str], message: str,
) -> None:  # fmt: skip
    (tmp_path / "c.json").write_text(config)
    args = segment(data, tmp_path / "out", "--model", "fake:33", "--config",
                   str(tmp_path / "c.json"), *flags)  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("camvidseg: error: ")
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_missing_config_file_exits_2(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(segment(data, tmp_path / "out", "--config", str(tmp_path / "nope.json"))) == 2
    assert f"{tmp_path / 'nope.json'}: no such config file" in capsys.readouterr().err


def test_help_lists_the_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["segment", "--help"])
    out = capsys.readouterr().out
    for option in ("--config", "--gt", "--tta", "--tta-scales", "--min-confidence",
                   "--min-region", "--majority", "--tile", "--overlap"):  # fmt: skip
        assert option in out
    assert "default: the config's model, else $CAMVIDSEG_MODEL" in " ".join(out.split())
