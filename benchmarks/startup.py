"""Start-up costs: ``import camvidseg`` and ``camvidseg --help``, each in fresh subprocesses.

Bytecode is cached as for an installed package (a private ``PYTHONPYCACHEPREFIX``, warmed once;
``PYTHONDONTWRITEBYTECODE`` is dropped for the children), and every figure is the median of
several runs. ``import numpy`` and the full public API import are reported alongside: they are
the floor that ``from camvidseg import Segmenter`` cannot go below.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import camvidseg
from benchmarks._common import Row, print_rows, row

RUNS = 9
_TIMED_IMPORT = "import time; t = time.perf_counter(); {}; print(time.perf_counter() - t)"


def _environment(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    source = str(Path(camvidseg.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([source, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _import_seconds(statement: str, env: dict[str, str]) -> float:
    code = _TIMED_IMPORT.format(statement)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(RUNS)
    ]
    return statistics.median(samples)


def _wall_seconds(arguments: list[str], env: dict[str, str]) -> float:
    subprocess.run(arguments, env=env, check=True, capture_output=True)
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(arguments, env=env, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main() -> list[Row]:
    with tempfile.TemporaryDirectory() as cache:
        env = _environment(cache)
        package = _import_seconds("import camvidseg", env)
        numpy = _import_seconds("import numpy", env)
        api = _import_seconds("from camvidseg import Segmenter, Segmentation, CamVidPalette", env)
        floor = _import_seconds("import numpy, attrs, PIL.Image", env)
        interpreter = _wall_seconds([sys.executable, "-c", "pass"], env)
        help_time = _wall_seconds([sys.executable, "-m", "camvidseg", "--help"], env)
    return [
        row(
            "import camvidseg (median of fresh processes)",
            package,
            "<= 0.2",
            unit="s",
            detail=f"import numpy alone: {numpy:.3f} s",
        ),
        row(
            "camvidseg --help (process wall time)",
            help_time,
            "<= 0.5",
            unit="s",
            detail=f"bare interpreter start: {interpreter:.3f} s",
        ),
        row(
            "from camvidseg import Segmenter, Segmentation, CamVidPalette",
            api,
            unit="s",
            detail=f"floor import numpy, attrs, PIL.Image: {floor:.3f} s",
        ),
    ]


if __name__ == "__main__":
    print_rows(main())
