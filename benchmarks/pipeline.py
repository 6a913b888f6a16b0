"""Overhead and memory of the batch pipeline (``camvidseg segment``), measured in one run.

    python benchmarks/pipeline.py [--images 64] [--size 240x320] [--latency 0.05] [--repeats 3]

- Overhead: a fake model with a fixed latency per image (it sleeps, like a GPU call that releases
  the GIL, and returns scores computed once) segments a folder of PNG files through
  :func:`camvidseg.pipeline.run_pipeline` (discovery, decoding, post-processing, writing labels,
  colour masks and overlays, the manifest). The reference is the same model calls alone, on the
  same batches, already decoded. Efficiency = reference time / pipeline time; the target is
  >= 0.91, i.e. the pipeline adds at most 10 %.
- Memory: the peak resident set size of fresh processes segmenting 10, 1,000 and 2,000 small
  images (same code, same imports; each in its own subprocess). Ten images never fill the
  pipeline's bounded working set (images decoded ahead, scores waiting for the writers, one
  malloc arena per worker thread), so peak(10) / peak(1000) is printed for information; once
  the working set is full (a few hundred images) the peak stays flat: flatness =
  peak(1000) / peak(2000), target >= 0.97, and the growth per image between them (finished
  entries wait in a temporary file, not in memory).

:func:`main` prints a table and returns ``[{"name", "value", "target"}, ...]`` rows (``target``
is the minimum the value should reach, ``None`` for information).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TypedDict

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from camvidseg.backends.fake import NearestColorBackend
from camvidseg.pipeline import RunOptions, discover_inputs, run_pipeline
from camvidseg.segmenter import Segmenter
from camvidseg.testing import street_scene


class Row(TypedDict):
    """One measurement: ``target`` is the minimum a ratio should reach (``None``: information)."""

    name: str
    value: float
    target: float | None


@attrs.define
class FixedLatencyBackend:
    """A model that takes ``latency`` seconds per image of a batch and no CPU.

    Scores are computed once per batch shape by :class:`NearestColorBackend` (outside the
    timed region, see :meth:`warm_up`) and returned read-only, so the pipeline does all of its
    real post-processing and writing on them.
    """

    latency: float
    channels: int = 33
    input_multiple: int = 1
    calls: int = 0
    #: ``(start, end)`` of every call, for the fill/drain/steady-state split.
    intervals: list[tuple[float, float]] = attrs.field(factory=list)
    _cache: dict[tuple[int, ...], NDArray[np.float32]] = attrs.field(factory=dict)

    @property
    def name(self) -> str:
        return f"fake:fixed-latency-{self.latency}s"

    def warm_up(self, batch: NDArray[np.float32]) -> None:
        if batch.shape not in self._cache:
            scores = NearestColorBackend(channels=self.channels).predict(batch)
            scores.setflags(write=False)
            self._cache[batch.shape] = scores

    def predict(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        self.warm_up(batch)
        self.calls += 1
        started = time.perf_counter()
        time.sleep(self.latency * batch.shape[0])
        self.intervals.append((started, time.perf_counter()))
        return self._cache[batch.shape]


@attrs.frozen
class PipelineTiming:
    """One pipeline run against a :class:`FixedLatencyBackend`.

    Attributes:
        seconds: Wall time of discovery and :func:`run_pipeline`.
        fill: From the start to the first model call (decoding the first batch, set-up).
        drain: From the end of the last model call to the end (writing the last batch, the
            manifest).
        steady_overhead: Time between the first and the last model call that the model was
            idle, as a fraction of its busy time.
    """

    seconds: float
    fill: float
    drain: float
    steady_overhead: float


def write_images(folder: Path, count: int, height: int, width: int) -> list[Path]:
    """``count`` lossless street scenes (a few distinct ones, repeated) as PNG files."""
    folder.mkdir(parents=True, exist_ok=True)
    scenes = [street_scene(height, width, seed=seed)[0] for seed in range(min(count, 8))]
    paths = []
    for index in range(count):
        path = folder / f"frame_{index:05d}.png"
        Image.fromarray(scenes[index % len(scenes)]).save(path, compress_level=1)
        paths.append(path)
    return paths


def measure_overhead(
    images: int, height: int, width: int, latency: float, batch_size: int, repeats: int
) -> tuple[PipelineTiming, float, float]:
    """The fastest of ``repeats`` pipeline runs, the fastest of the model calls alone, and the
    fastest pipeline run with a zero-latency model (seconds)."""
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-") as tmp:
        root = Path(tmp)
        paths = write_images(root / "in", images, height, width)
        arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
        batches = [
            np.stack(arrays[i : i + batch_size]).astype(np.float32) / np.float32(255.0)
            for i in range(0, images, batch_size)
        ]
        backend = FixedLatencyBackend(latency)
        for batch in batches:
            backend.warm_up(batch)
        options = RunOptions(overwrite=True)

        def pipeline_run(model: FixedLatencyBackend, out: str) -> PipelineTiming:
            model.intervals.clear()
            started = time.perf_counter()
            plan = discover_inputs([root / "in"], root / out)
            report = run_pipeline(Segmenter(model, batch_size=batch_size), plan, options)
            ended = time.perf_counter()
            if report.summary.ok != images:
                raise SystemExit(f"the pipeline failed on some images: {report.errors[:3]}")
            first, last = model.intervals[0][0], model.intervals[-1][1]
            busy = sum(end - start for start, end in model.intervals)
            return PipelineTiming(
                ended - started, first - started, ended - last, (last - first) / busy - 1
            )

        def model_alone_seconds() -> float:
            started = time.perf_counter()
            for batch in batches:
                backend.predict(batch)
            return time.perf_counter() - started

        instant = FixedLatencyBackend(0.0)
        for batch in batches:
            instant.warm_up(batch)
        pipeline_run(instant, "warm-up")
        runs = [pipeline_run(backend, "out") for _ in range(repeats)]
        alone = min(model_alone_seconds() for _ in range(repeats))
        zero = min(pipeline_run(instant, "zero").seconds for _ in range(repeats))
        return min(runs, key=lambda run: run.seconds), alone, zero


def _peak_rss_bytes() -> int:
    """This process's peak resident set size.

    Linux: ``VmHWM`` of /proc/self/status, which starts afresh at exec (``ru_maxrss`` would
    inherit the parent's peak through fork). Elsewhere: ``ru_maxrss`` (bytes on macOS).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    import resource  # Unix only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def _memory_child(folder: Path, count: int, batch_size: int) -> None:
    """Subprocess body: segment the ``count`` images of ``folder``, print the peak RSS."""
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-out-") as out:
        plan = discover_inputs([folder], out)
        if len(plan.files) != count:
            raise SystemExit(f"expected {count} images in {folder}, found {len(plan.files)}")
        segmenter = Segmenter(NearestColorBackend(), batch_size=batch_size)
        report = run_pipeline(segmenter, plan, RunOptions())
        if report.summary.ok != count:
            raise SystemExit(f"the pipeline failed on some images: {report.errors[:3]}")
    print(json.dumps({"images": count, "peak_rss_bytes": _peak_rss_bytes()}))


def measure_memory(counts: Sequence[int], size: tuple[int, int], batch_size: int) -> dict[int, int]:
    """Peak RSS in bytes of a fresh process segmenting each of ``counts`` images."""
    peaks = {}
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-") as tmp:
        for count in counts:
            folder = Path(tmp) / f"in{count}"
            write_images(folder, count, *size)
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(folder), str(count),
                 "--batch-size", str(batch_size)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"memory subprocess failed:\n{proc.stderr}")
            peaks[count] = int(json.loads(proc.stdout.splitlines()[-1])["peak_rss_bytes"])
    return peaks


def _size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run the benchmarks, print a table, return ``[{"name", "value", "target"}, ...]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--images", type=int, default=64, help="images of the overhead run")
    parser.add_argument("--size", type=_size, default=(240, 320), help="HEIGHTxWIDTH")
    parser.add_argument("--latency", type=float, default=0.05, help="model seconds per image")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-images", type=int, nargs=3, default=(10, 1000, 2000))
    parser.add_argument("--memory-size", type=_size, default=(48, 64), help="HEIGHTxWIDTH")
    parser.add_argument(
        "--memory-child", nargs=2, metavar=("FOLDER", "COUNT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.memory_child:
        _memory_child(Path(args.memory_child[0]), int(args.memory_child[1]), args.batch_size)
        return []

    height, width = args.size
    timing, alone, zero = measure_overhead(
        args.images, height, width, args.latency, args.batch_size, args.repeats
    )
    tiny, small, large = args.memory_images
    peaks = measure_memory((tiny, small, large), args.memory_size, args.batch_size)
    pipeline = timing.seconds
    mib = 1024 * 1024
    rows: list[Row] = [
        {"name": "pipeline_seconds", "value": round(pipeline, 3), "target": None},
        {"name": "model_calls_alone_seconds", "value": round(alone, 3), "target": None},
        {"name": "pipeline_overhead_percent", "value": round(100 * (pipeline / alone - 1), 1),
         "target": None},
        {"name": "pipeline_fill_ms", "value": round(timing.fill * 1e3, 1), "target": None},
        {"name": "pipeline_drain_ms", "value": round(timing.drain * 1e3, 1), "target": None},
        {"name": "pipeline_steady_state_model_idle_percent",
         "value": round(100 * timing.steady_overhead, 1), "target": None},
        {"name": "pipeline_efficiency_model_alone_over_pipeline",
         "value": round(alone / pipeline, 3), "target": 0.91},
        {"name": "pipeline_images_per_s_with_instant_model", "value": round(args.images / zero, 1),
         "target": None},
        {"name": f"peak_rss_mib_{tiny}_images", "value": round(peaks[tiny] / mib, 1),
         "target": None},
        {"name": f"peak_rss_mib_{small}_images", "value": round(peaks[small] / mib, 1),
         "target": None},
        {"name": f"peak_rss_mib_{large}_images", "value": round(peaks[large] / mib, 1),
         "target": None},
        {"name": f"peak_rss_growth_kib_per_image_{small}_to_{large}",
         "value": round((peaks[large] - peaks[small]) / (large - small) / 1024, 2), "target": None},
        {"name": f"memory_ratio_peak_{tiny}_over_peak_{small}",
         "value": round(peaks[tiny] / peaks[small], 3), "target": None},
        {"name": f"memory_flatness_peak_{small}_over_peak_{large}",
         "value": round(peaks[small] / peaks[large], 3), "target": 0.97},
    ]  # fmt: skip
    print(
        f"pipeline benchmarks: {args.images} images of {width}x{height}, batch {args.batch_size}, "
        f"model {args.latency * 1e3:.0f} ms per image, best of {args.repeats}; memory: "
        f"{tiny}, {small} and {large} images of {args.memory_size[1]}x{args.memory_size[0]}"
    )
    for row in rows:
        target = row["target"]
        verdict = "" if target is None else ("  ok" if row["value"] >= target else "  BELOW")
        shown = "" if target is None else f"  (target >= {target})"
        print(f"  {row['name']:<52} {row['value']!s:>9}{shown}{verdict}")
    return rows


if __name__ == "__main__":
    main()
