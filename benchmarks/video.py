"""Overhead and memory of ``camvidseg video``, measured in one run.

    python benchmarks/video.py [--frames 300] [--size 240x320] [--latency 0.03] [--repeats 3]
    python -m benchmarks.video             # the same, from the repository root

- Overhead: ``camvidseg video`` (run in this process through ``camvidseg.cli.main``: argument
  checks, opening the input, decoding H.264 in a background thread, the model in another,
  smoothing and post-processing, rendering the overlay and encoding H.264 in a third, the
  manifest) on a synthetic ``--size`` video, with a fake model of fixed latency: it sleeps
  ``--latency`` seconds per frame (like a GPU call, which releases the GIL) and returns scores
  computed once before (``benchmarks.pipeline.FixedLatencyBackend``; the command's Segmenter is
  built over it, since a model handle cannot name an object of this process). The reference is
  the same model's calls alone on the same batches, already decoded and in memory. Overhead =
  command time / model time - 1, target <= 10 % with ``--temporal none`` (the model returns
  labels, as the TF Hub backend does). With ``--temporal ema --labels-dir`` the model returns
  probabilities and the smoothing, the flicker comparison (labels with and without smoothing:
  two argmaxes over all channels) and a label PNG per frame come on top: real CPU work per
  frame that hides behind the model only while cores are free, so that row is for information.
  The details add the frames/s with an instant model (the command's own throughput).
- Memory: the peak resident set size of fresh processes running ``camvidseg video --temporal ema
  --labels-dir`` on 100 and on 1,000 frames (same code, same size). The working set is a few
  frames, so the peak stays flat: peak(100) / peak(1000), target >= 0.95.

:func:`main` returns rows ``{name, value, target, unit, detail, met}`` for ``benchmarks/run.py``.
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
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

import camvidseg
from camvidseg.postprocess import ChannelLayout

# Run as `python benchmarks/video.py`, sys.path[0] is benchmarks/: make the package importable.
if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import Row, print_rows, row
from benchmarks.pipeline import FixedLatencyBackend, FixedLatencyLabelBackend

if TYPE_CHECKING:
    from camvidseg.config import SegmentConfig


def _require_av() -> None:
    try:
        import av  # noqa: F401
    except ImportError:
        raise SystemExit("benchmarks/video.py needs PyAV: pip install 'camvidseg[video]'") from None


def write_input(path: Path, frames: int, height: int, width: int) -> Path:
    """An H.264 ``.mp4`` of moving shapes at 30000/1001 fps."""
    from camvidseg.video.testing import moving_shapes, write_video

    return write_video(path, (image for image, _ in moving_shapes(frames, height, width)))


def _peak_rss_bytes() -> int:
    """This process's peak RSS (``VmHWM`` on Linux, which starts afresh at exec)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all threads."""
    times = os.times()
    return times.user + times.system


def run_command(args: Sequence[str]) -> tuple[float, float]:
    """Wall and CPU seconds ``camvidseg`` takes to run ``args`` in this process (it must
    succeed). The fake models sleep, so the CPU time is camvidseg's own work."""
    from camvidseg.cli import main

    cpu, started = _cpu_seconds(), time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(list(args))
    seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    if code != 0:
        raise SystemExit(f"camvidseg {' '.join(args)} exited with {code}")
    return seconds, cpu


@contextlib.contextmanager
def model_for_the_command(backend: FixedLatencyBackend, batch_size: int) -> Iterator[None]:
    """``camvidseg video`` builds its Segmenter over ``backend`` (a model handle cannot name an
    object of this process); everything else the command does is unchanged."""
    import camvidseg.cli._config as command
    from camvidseg.segmenter import Segmenter

    original = command.build_segmenter

    def build(args: argparse.Namespace, config: SegmentConfig) -> Segmenter:
        return Segmenter(backend, batch_size=batch_size)

    command.build_segmenter = build
    try:
        yield
    finally:
        command.build_segmenter = original


def _idle_between_calls(intervals: Sequence[tuple[float, float]]) -> float:
    """Time the model waited between its first and last call, as a fraction of its busy time."""
    busy = sum(end - start for start, end in intervals)
    return (intervals[-1][1] - intervals[0][0]) / busy - 1 if busy > 0 else 0.0


def decoded_batches(source: Path, batch_size: int) -> list[NDArray[np.float32]]:
    """The frames of ``source`` as the model sees them, in batches."""
    from camvidseg.video import open_frames

    with open_frames(source) as frames:
        images = [frame.image for frame in frames]
    return [
        np.stack(images[i : i + batch_size]).astype(np.float32) / np.float32(255.0)
        for i in range(0, len(images), batch_size)
    ]


def model_alone(backend: FixedLatencyBackend, batches: Sequence[NDArray[np.float32]]) -> float:
    """Seconds of ``backend``'s calls alone on ``batches``."""
    layout = ChannelLayout.detect(backend.channels)
    started = time.perf_counter()
    for batch in batches:
        if isinstance(backend, FixedLatencyLabelBackend):
            backend.predict_labels(batch, layout)
        else:
            backend.predict(batch)
    return time.perf_counter() - started


def measure_overhead(
    frames: int, size: tuple[int, int], latency: float, batch_size: int, repeats: int
) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-video-") as tmp:
        root = Path(tmp)
        source = write_input(root / "in.mp4", frames, *size)
        batches = decoded_batches(source, batch_size)
        common = ["video", str(source), "--batch-size", str(batch_size), "-q"]
        variants: tuple[tuple[str, list[str], FixedLatencyBackend, str | None], ...] = (
            ("--temporal none", [], FixedLatencyLabelBackend(latency), "<= 10"),
            (
                "--temporal ema --labels-dir",
                ["--temporal", "ema", "--labels-dir"],
                FixedLatencyBackend(latency),
                None,
            ),
        )
        for label, extra, backend, target in variants:
            for batch in batches:
                backend.warm_up(batch)
            with model_for_the_command(backend, batch_size):
                run_command([*common, "-o", str(root / "warm.mp4")])  # imports, caches
                command_times, alone_times, cpu_times, idle_times = [], [], [], []
                for k in range(repeats):  # alternate, so load changes hit both alike
                    extra_args = [*extra, str(root / f"labels{k}")] if extra else []
                    output = ["-o", str(root / f"out{k}.mp4"), *extra_args]
                    backend.intervals.clear()
                    wall, cpu = run_command([*common, *output])
                    command_times.append(wall)
                    cpu_times.append(cpu)
                    idle_times.append(_idle_between_calls(backend.intervals))
                    alone_times.append(model_alone(backend, batches))
                instant = type(backend)(0.0)
                for batch in batches:
                    instant.warm_up(batch)
            with model_for_the_command(instant, batch_size):
                extra_args = [*extra, str(root / "labels-instant")] if extra else []
                zero, _ = run_command([*common, "-o", str(root / "instant.mp4"), *extra_args])
            command, alone = min(command_times), min(alone_times)
            rows.append(
                row(
                    f"video overhead vs model alone ({label})",
                    round(100 * (command / alone - 1), 1),
                    target,
                    "%",
                    f"{command:.3f} s vs {alone:.3f} s for {frames} frames of "
                    f"{size[1]}x{size[0]}, batch {batch_size}, {latency * 1e3:.0f} ms per frame; "
                    f"{frames / command:.1f} vs {frames / alone:.1f} frames/s; "
                    f"{frames / zero:.1f} frames/s with an instant model; the model idle "
                    f"{100 * min(idle_times):.1f} % of its busy time between its first and last "
                    f"call (the rest is start-up and the encoder's flush); camvidseg's own CPU "
                    f"{1e3 * min(cpu_times) / frames:.1f} ms per frame over all its threads; "
                    f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
                )
            )
    return rows


def _memory_child(args: Sequence[str]) -> None:
    """Subprocess body: run ``camvidseg`` with ``args``, print the peak RSS."""
    run_command(args)
    print(json.dumps({"peak_rss_bytes": _peak_rss_bytes()}))


def measure_memory(counts: Sequence[int], size: tuple[int, int], batch_size: int) -> dict[int, int]:
    """Peak RSS in bytes of a fresh process running ``camvidseg video`` on each count of frames."""
    source_root = str(Path(camvidseg.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [source_root, os.environ.get("PYTHONPATH")])),
    }
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-video-") as tmp:
        root = Path(tmp)
        for count in counts:
            source = write_input(root / f"in{count}.mp4", count, *size)
            args = [
                "video", str(source), "-o", str(root / f"out{count}.mp4"), "--model", "fake:33",
                "--batch-size", str(batch_size), "--temporal", "ema",
                "--labels-dir", str(root / f"labels{count}"), "-q",
            ]  # fmt: skip
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-child", *args],
                capture_output=True, text=True, check=False, env=env,
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"memory subprocess failed:\n{proc.stderr}")
            peaks[count] = int(json.loads(proc.stdout.splitlines()[-1])["peak_rss_bytes"])
    return peaks


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the benchmarks, return the rows."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--memory-child"]:
        _memory_child(argv[1:])
        return []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=300, help="frames of the overhead run")
    parser.add_argument("--size", type=_size, default=(240, 320), help="HEIGHTxWIDTH")
    parser.add_argument("--latency", type=float, default=0.03, help="model seconds per frame")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-frames", type=int, nargs=2, default=(100, 1000))
    parser.add_argument("--memory-size", type=_size, default=(120, 160), help="HEIGHTxWIDTH")
    args = parser.parse_args(argv)
    _require_av()
    rows = measure_overhead(args.frames, args.size, args.latency, args.batch_size, args.repeats)
    small, large = args.memory_frames
    peaks = measure_memory((small, large), args.memory_size, args.batch_size)
    mib = 1024 * 1024
    rows.append(
        row(
            f"video peak RSS flatness, {small} / {large} frames",
            round(peaks[small] / peaks[large], 3),
            ">= 0.95",
            "",
            f"{peaks[small] / mib:.1f} MiB vs {peaks[large] / mib:.1f} MiB "
            f"({args.memory_size[1]}x{args.memory_size[0]}, --temporal ema --labels-dir); "
            f"{(peaks[large] - peaks[small]) / (large - small) / 1024:.2f} KiB per extra frame",
        )
    )
    return rows


if __name__ == "__main__":
    rows = main()
    if rows:
        print_rows(rows)
