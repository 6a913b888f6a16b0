"""``camvidseg beam`` on the DirectRunner against ``camvidseg segment``, measured in one run.

    python benchmarks/beam.py [--images 160] [--size 120x160] [--latency 0.05] [--batch-size 4]
    python -m benchmarks.beam            # the same, from the repository root

- Throughput: both commands segment the same folder of PNG files with the same fake model,
  whose every call sleeps ``--latency`` seconds (``fake:33?latency=...``, like a GPU call that
  releases the GIL), in batches of ``--batch-size``, writing labels, colour masks and overlays.
  Each runs in a fresh process; images/s come from each command's own summary (start-up of the
  runner and of the pipeline included, Python's imports not). The ratio beam / segment is
  reported for the DirectRunner in its default mode and with ``--direct_running_mode=
  multi_threading --direct_num_workers=4``; a second beam run on a quarter of the images gives
  the per-image rate without the fixed start-up (the difference of the two runs).
- Memory: the peak resident set size of a beam run with ``--model-copies 1`` and ``2`` (the
  fake SavedModel through TensorFlow when the ``tf`` extra is installed, else the numpy fake).
  On the DirectRunner both copies live in the one process, served to it through Beam's
  multi-process proxy, so the difference is one more loaded model.

:func:`main` returns rows ``{name, value, target, unit, detail, met}`` for ``benchmarks/run.py``.
No target is set: the figures are for information (the DirectRunner is a test runner).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PIL import Image

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import camvidseg
from benchmarks._common import Row, print_rows, row
from camvidseg.testing import street_scene

MIB = 1024 * 1024


def write_images(folder: Path, count: int, height: int, width: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, _ = street_scene(height, width, seed=i % 8)
        Image.fromarray(image).save(folder / f"frame{i:05d}.png")


def _peak_rss_bytes() -> int:
    """This process's peak resident set size (Linux ``VmHWM``, else ``ru_maxrss``)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _child(cli_args: Sequence[str]) -> None:
    """Subprocess body: run the CLI, print its JSON summary with this process's peak RSS."""
    from camvidseg.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(cli_args))
    if code != 0:
        raise SystemExit(f"camvidseg {' '.join(cli_args)} exited with {code}")
    summary = json.loads(out.getvalue().splitlines()[-1])
    print(json.dumps({**summary, "peak_rss_bytes": _peak_rss_bytes()}))


def run_cli(*cli_args: str) -> dict[str, Any]:
    """Run ``camvidseg CLI_ARGS --json -q`` in a fresh process; its summary and peak RSS."""
    source = str(Path(camvidseg.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
    }
    # The flags go first: everything after a "--" is Beam's.
    command = [
        sys.executable,
        __file__,
        "--child",
        "--",
        cli_args[0],
        "--json",
        "-q",
        *cli_args[1:],
    ]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"benchmark subprocess failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - started
    return result


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def _fake_savedmodel(folder: Path) -> str | None:
    try:
        from camvidseg.testing import write_fake_savedmodel

        return str(write_fake_savedmodel(folder / "fake33"))
    except ImportError:
        return None


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the measurements; return the rows."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=160, help="images of the throughput runs")
    parser.add_argument("--size", type=_size, default=(120, 160), help="HEIGHTxWIDTH")
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per model call")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--memory-images", type=int, default=16)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("cli_args", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.cli_args)
        return []

    height, width = args.size
    count, batch = args.images, str(args.batch_size)
    model = f"fake:33?latency={args.latency}"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-beam-") as tmp:
        root = Path(tmp)
        write_images(root / "in", count, height, width)
        write_images(root / "quarter", count // 4, height, width)
        common = ("--model", model, "--outputs", "labels,color,overlay")
        segment = run_cli("segment", str(root / "in"), "-o", str(root / "seg"), *common,
                          "--batch-size", batch)  # fmt: skip
        beam_args = (*common, "--max-batch-size", batch, "--min-batch-size", batch)
        threaded = ("--", "--direct_running_mode=multi_threading", "--direct_num_workers=4")
        beam = run_cli("beam", f"{root}/in/*.png", "-o", str(root / "beam"), *beam_args)
        quarter = run_cli("beam", f"{root}/quarter/*.png", "-o", str(root / "q"), *beam_args)
        beam_threads = run_cli(
            "beam", f"{root}/in/*.png", "-o", str(root / "beam4"), *beam_args, *threaded
        )
        for result in (segment, beam, quarter, beam_threads):
            if result["error"]:
                raise SystemExit(f"a benchmark run failed on some images: {result}")
        rate = {
            name: result["ok"] / result["seconds"]
            for name, result in (("segment", segment), ("beam", beam), ("threads", beam_threads))
        }
        marginal = (beam["ok"] - quarter["ok"]) / max(beam["seconds"] - quarter["seconds"], 1e-9)
        startup = beam["seconds"] - beam["ok"] / marginal
        what = (
            f"{count} images of {width}x{height}, batch {batch}, "
            f"{args.latency * 1e3:.0f} ms per model call"
        )
        rows.append(
            row(
                "beam (DirectRunner) / segment throughput",
                round(rate["beam"] / rate["segment"], 3),
                detail=f"{rate['beam']:.1f} vs {rate['segment']:.1f} images/s ({what}); "
                f"{beam['seconds']:.1f} s vs {segment['seconds']:.1f} s",
            )
        )
        rows.append(
            row(
                "beam (DirectRunner, 4 threads) / segment throughput",
                round(rate["threads"] / rate["segment"], 3),
                detail=f"{rate['threads']:.1f} vs {rate['segment']:.1f} images/s ({what})",
            )
        )
        rows.append(
            row(
                "beam per-image rate without start-up / segment throughput",
                round(marginal / rate["segment"], 3),
                detail=f"{marginal:.1f} images/s from runs of {beam['ok']} and {quarter['ok']} "
                f"images; fixed start-up about {startup:.1f} s",
            )
        )

        saved = _fake_savedmodel(root / "models")
        memory_model = saved or "fake:33"
        write_images(root / "mem", args.memory_images, height, width)
        peaks = {}
        for copies in (1, 2):
            result = run_cli(
                "beam", f"{root}/mem/*.png", "-o", str(root / f"mem{copies}"), "--model",
                memory_model, "--model-copies", str(copies), "--outputs", "labels",
            )  # fmt: skip
            peaks[copies] = int(result["peak_rss_bytes"])
        kind = "fake SavedModel (TensorFlow)" if saved else "numpy fake model"
        rows.append(
            row(
                "beam peak RSS, model_copies 2 / 1",
                round(peaks[2] / peaks[1], 3),
                detail=f"{peaks[2] / MIB:.0f} MiB vs {peaks[1] / MIB:.0f} MiB with the {kind}, "
                f"{args.memory_images} images; {(peaks[2] - peaks[1]) / MIB:+.0f} MiB for the "
                "second copy",
            )
        )
    return rows


if __name__ == "__main__":
    print_rows(main())
