"""``camvidseg model convert/info/verify`` on OpenVINO folders, and segmenting with a converted
model in a process where TensorFlow cannot be imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import camvidseg
from camvidseg.cli import main
from camvidseg.imageio import load_label_png
from camvidseg.testing import street_scene

pytest.importorskip("openvino")
pytestmark = [pytest.mark.openvino, pytest.mark.tf]

SRC = Path(camvidseg.__file__).resolve().parents[1]

#: A sitecustomize that makes every TensorFlow import fail, as in an install without the tf extra.
BLOCKER = textwrap.dedent(
    """
    import sys

    class BlockTensorFlow:
        blocked = ("tensorflow", "tensorflow_hub", "tf_keras", "keras")

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ImportError(f"{name} is not installed (blocked by the test)")
            return None

    sys.meta_path.insert(0, BlockTensorFlow())
    """
)


def env_without_tensorflow(tmp_path: Path) -> dict[str, str]:
    blocker = tmp_path / "no_tensorflow"
    blocker.mkdir(exist_ok=True)
    (blocker / "sitecustomize.py").write_text(BLOCKER)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(SRC)])}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300
    )


def test_segment_with_a_converted_model_without_tensorflow(
    fake_openvino: Path, tmp_path: Path
) -> None:
    env = env_without_tensorflow(tmp_path)
    blocked = run(["-c", "import tensorflow"], env)
    assert blocked.returncode == 1
    assert "blocked by the test" in blocked.stderr
    image, truth = street_scene(36, 48, seed=4)
    Image.fromarray(image).save(tmp_path / "scene.png")
    cli = run(
        ["-m", "camvidseg", "segment", str(tmp_path / "scene.png"), "-o", str(tmp_path / "out"),
         "--model", str(fake_openvino), "--threads", "1"],
        env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    np.testing.assert_array_equal(load_label_png(tmp_path / "out" / "labels" / "scene.png"), truth)
    code = (
        "import sys, numpy as np; from camvidseg import Segmenter;"
        "from camvidseg.testing import street_scene;"
        "image, truth = street_scene(36, 48, seed=4);"
        f"seg = Segmenter.from_hub({str(fake_openvino)!r});"
        "print(type(seg.backend).__name__, np.array_equal(seg.segment(image).labels, truth),"
        " [m for m in sys.modules if m.startswith('tensorflow')])"
    )
    library = run(["-c", code], env)
    assert library.returncode == 0, library.stderr
    assert library.stdout.split() == ["OpenVINOBackend", "True", "[]"]
    info = run(["-m", "camvidseg", "model", "info", str(fake_openvino), "--json"], env)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["channels"] == 33


def test_import_and_help_do_not_import_openvino() -> None:
    code = (
        "import sys, camvidseg, camvidseg.backends, camvidseg.cli;"
        "camvidseg.cli.build_parser();"
        "import camvidseg.backends.openvino, camvidseg.backends.precision, camvidseg.config;"
        "print(sorted(m for m in ('openvino', 'tensorflow') if m in sys.modules))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_model_info_describes_an_openvino_folder(
    fake_openvino: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "info", str(fake_openvino), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["kind"] == "openvino"
    assert info["channels"] == 33
    assert info["layout"] == "background33"
    assert info["inputs"] == [{"name": "images", "shape": [None, None, None, 3], "dtype": "f32"}]
    assert info["outputs"][0]["shape"] == [None, None, None, 33]
    assert info["features"][0]["shape"] == [None, None, None, 720]
    assert info["classes"][18] == {"channel": 18, "class_id": 17, "name": "Road"}
    assert info["metadata"]["format"] == "camvidseg-openvino"
    assert main(["model", "info", str(fake_openvino)]) == 0
    text = capsys.readouterr().out
    assert "OpenVINO IR" in text
    assert "runs without TensorFlow" in text
    assert "background33 (33 channels)" in text


def test_model_verify_an_openvino_folder(
    fake_openvino: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "verify", str(fake_openvino), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    checks = {c["name"]: c["ok"] for c in report["checks"]}
    assert checks["labels in the graph"] is True
    assert checks["get_features"] is True
    assert report["channels"] == 33
    assert report["layout"] == "background33"


def test_convert_command(
    fake_savedmodel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ir"
    assert main(["model", "convert", str(fake_savedmodel), "--to", "openvino", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out)
    assert "100.00% of the labels equal TensorFlow's" in captured.err
    assert not (out / "features.xml").exists()
    # Again without --overwrite: a usage error naming the folder; nothing changes.
    before = (out / "model.bin").stat().st_mtime_ns
    assert main(["model", "convert", str(fake_savedmodel), "-o", str(out)]) == 2
    assert f"-o {out}: already holds an OpenVINO model" in capsys.readouterr().err
    assert (out / "model.bin").stat().st_mtime_ns == before
    assert main(["model", "convert", "fake:33", "-o", str(tmp_path / "x"), "--json"]) == 2
    assert "fake models are numpy code" in capsys.readouterr().err


def test_precision_and_threads_flags_reach_the_backend(
    fake_openvino: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from camvidseg.backends.precision import bf16_support_problem

    image, truth = street_scene(36, 48, seed=6)
    Image.fromarray(image).save(tmp_path / "scene.png")
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"threads": 1}))
    out = tmp_path / "out"
    args = ["segment", str(tmp_path / "scene.png"), "-o", str(out), "--model", str(fake_openvino)]
    assert main([*args, "--config", str(config)]) == 0
    np.testing.assert_array_equal(load_label_png(out / "labels" / "scene.png"), truth)
    options = json.loads((out / "manifest.json").read_text())["options"]
    assert (options["precision"], options["threads"]) == ("fp32", 1)
    if bf16_support_problem() is not None:
        assert main([*args, "--precision", "bf16", "--overwrite"]) == 2
        err = capsys.readouterr().err
        assert "--precision bf16 (OpenVINO): this CPU has no native bfloat16" in err
    with pytest.raises(SystemExit):
        main([*args, "--threads", "0"])


def test_compare_precision_command_on_this_cpu(
    fake_openvino: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from camvidseg.backends.precision import bf16_support_problem

    Image.fromarray(street_scene(36, 48, seed=1)[0]).save(tmp_path / "a.png")
    args = ["model", "verify", str(fake_openvino), "--compare-precision", str(tmp_path), "--json"]
    if bf16_support_problem() is not None:
        assert main(args) == 2
        assert "there is no bf16 to compare with on this machine" in capsys.readouterr().err
    else:
        assert main(args) == 0
        result = json.loads(capsys.readouterr().out)
        assert 0.9 <= result["agreement"] <= 1.0
        assert [i["path"] for i in result["images"]] == [str(tmp_path / "a.png")]
