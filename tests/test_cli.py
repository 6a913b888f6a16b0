from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import camvidseg
from camvidseg.cli import main
from camvidseg.imageio import load_label_png
from camvidseg.testing import street_scene
from tests.childproc import CHILD_TIMEOUT, cli_command, cli_env, run_python


def test_help_lists_commands_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "segment" in out
    assert "examples:" in out


def _examples(help_text: str) -> list[str]:
    """The lines of the ``examples:`` block of a help text (up to the next blank line)."""
    lines = help_text.splitlines()
    assert "examples:" in lines, help_text
    start = lines.index("examples:") + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def test_every_subcommand_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from camvidseg.cli import COMMANDS

    for command in COMMANDS:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        # Not the usage line (argparse always prints "usage: camvidseg COMMAND"): an example
        # written in the command's own epilog.
        examples = _examples(capsys.readouterr().out)
        assert any(line.startswith(f"  camvidseg {command} ") for line in examples), command


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("camvidseg ")


def test_no_command_is_usage_error() -> None:
    assert main([]) == 2


def test_segment_fake_model_writes_outputs(tmp_path: Path) -> None:
    (tmp_path / "in" / "sub").mkdir(parents=True)
    image, truth = street_scene(24, 32, seed=2)
    Image.fromarray(image).save(tmp_path / "in" / "sub" / "f.png")
    (tmp_path / "in" / "broken.png").write_bytes(b"nope")
    code = main(["segment", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--model",
                 "fake:33", "-q"])  # fmt: skip
    assert code == 1  # one bad file
    np.testing.assert_array_equal(load_label_png(tmp_path / "out/labels/sub/f.png"), truth)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    by_input = {Path(e["input"]).name: e for e in manifest["entries"]}
    assert by_input["f.png"]["status"] == "ok"
    assert by_input["broken.png"]["status"] == "error"
    assert "broken.png" in by_input["broken.png"]["error"]


def test_python_m_camvidseg_runs() -> None:
    proc = subprocess.run(cli_command("--version"), env=cli_env(), capture_output=True,
                          text=True, timeout=CHILD_TIMEOUT, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"camvidseg {camvidseg.__version__}"


def test_broken_pipe_is_quiet() -> None:
    # What `camvidseg evaluate ... | head -1` does when the reader closes early: the command's
    # next write raises BrokenPipeError. Simulated in a child process so no real fd is touched.
    code = (
        "import sys, camvidseg.cli.segment as s\n"
        "def run(args):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "s.run = run\n"
        "from camvidseg.cli import main\n"
        "sys.exit(main(['segment', 'x', '-o', 'y']))\n"
    )
    proc = run_python(code, check=False)
    assert proc.returncode == 141
    assert proc.stderr == ""
