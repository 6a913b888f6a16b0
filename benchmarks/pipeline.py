"""Overhead and memory of the batch pipeline (``camvidseg segment``), measured in one run.

    python benchmarks/pipeline.py [--images 64] [--size 240x320] [--latency 0.05] [--repeats 3]
    python -m benchmarks.pipeline            # the same, from the repository root

- Overhead: a fake model with a fixed latency per image (it sleeps, like a GPU call that releases
  the GIL, and returns results computed once) segments a folder of PNG files through
  :func:`camvidseg.pipeline.run_pipeline` (discovery, decoding, post-processing, writing labels,
  colour masks and overlays, the manifest). The reference is the same model calls alone, on the
  same batches, already decoded. Overhead = pipeline time / reference time - 1, target <= 10 %,
  for both kinds of model: one returning class scores (argmax and confidence then run in the
  writer threads) and one returning labels itself (like the TF Hub backend's in-graph labels).
  The details split it into fill (until the first model call), drain (after the last) and the
  model's idle time between its calls.
- Memory: the peak resident set size of fresh processes segmenting 10, 1,000 and 2,000 small
  images (same code, same imports; each in its own subprocess). Ten images never fill the
  pipeline's bounded working set (images decoded ahead, scores waiting for the writers, one
  malloc arena per worker thread), so peak(10) / peak(1000) is for information; once the working
  set is full (a few hundred images) the peak stays flat: flatness = peak(1000) / peak(2000),
  target >= 0.97 (finished entries wait in a temporary file, not in memory).

:func:`main` returns rows ``{name, value, target, unit, detail, met}`` like the other
benchmarks (``target`` is ``"<= x"`` or ``">= x"``), for ``benchmarks/run.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray
from PIL import Image

import camvidseg
from camvidseg.backends.fake import NearestColorBackend
from camvidseg.pipeline import RunOptions, discover_inputs, run_pipeline
from camvidseg.postprocess import ChannelLayout, labels_and_confidence
from camvidseg.segmenter import Segmenter
from camvidseg.testing import street_scene

Row = dict[str, Any]


def row(
    name: str, value: float, target: str | None = None, unit: str = "", detail: str = ""
) -> Row:
    """A result row as ``benchmarks/run.py`` reads them; ``met`` from ``target`` (``"<= x"``)."""
    met = None
    if target:
        op, _, bound = target.partition(" ")
        met = value <= float(bound) if op == "<=" else value >= float(bound)
    return {"name": name, "value": value, "target": target, "unit": unit, "detail": detail,
            "met": met}  # fmt: skip


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


@attrs.define
class FixedLatencyLabelBackend(FixedLatencyBackend):
    """The same model, also returning labels and confidence itself (the
    :class:`~camvidseg.backends.LabelBackend` capability the TF Hub backend has), with the same
    latency per image."""

    _labels: dict[tuple[int, ...], tuple[NDArray[np.uint8], NDArray[np.float32]]] = attrs.field(
        factory=dict
    )

    @property
    def name(self) -> str:
        return f"fake:fixed-latency-labels-{self.latency}s"

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[NDArray[np.uint8], NDArray[np.float32]]:
        self.warm_up(batch)
        if batch.shape not in self._labels:
            self._labels[batch.shape] = labels_and_confidence(self._cache[batch.shape], layout)
        self.calls += 1
        started = time.perf_counter()
        time.sleep(self.latency * batch.shape[0])
        self.intervals.append((started, time.perf_counter()))
        return self._labels[batch.shape]


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
    images: int,
    height: int,
    width: int,
    latency: float,
    batch_size: int,
    repeats: int,
    labels: bool = False,
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
        kind = FixedLatencyLabelBackend if labels else FixedLatencyBackend
        backend = kind(latency)
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

        layout = ChannelLayout.detect(backend.channels)

        def model_alone_seconds() -> float:
            started = time.perf_counter()
            for batch in batches:
                if isinstance(backend, FixedLatencyLabelBackend):
                    backend.predict_labels(batch, layout)
                else:
                    backend.predict(batch)
            return time.perf_counter() - started

        instant = kind(0.0)
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
    # The child imports camvidseg from where this process did (an installed package or src/).
    source = str(Path(camvidseg.__file__).resolve().parents[1])
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")])),
    }
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-") as tmp:
        for count in counts:
            folder = Path(tmp) / f"in{count}"
            write_images(folder, count, *size)
            proc = subprocess.run(
                [sys.executable, __file__, "--memory-child", str(folder), str(count),
                 "--batch-size", str(batch_size)],
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
    rows: list[Row] = []
    for labels, what in ((False, "scores from the model"), (True, "labels from the model")):
        timing, alone, zero = measure_overhead(
            args.images, height, width, args.latency, args.batch_size, args.repeats, labels
        )
        rows.append(
            row(
                f"segment pipeline overhead vs model calls alone ({what})",
                round(100 * (timing.seconds / alone - 1), 1),
                "<= 10",
                "%",
                f"{timing.seconds:.3f} s vs {alone:.3f} s for {args.images} images of "
                f"{width}x{height}, batch {args.batch_size}, {args.latency * 1e3:.0f} ms per "
                f"image; fill {timing.fill * 1e3:.0f} ms, drain {timing.drain * 1e3:.0f} ms, "
                f"model idle {100 * timing.steady_overhead:.1f} % between its calls; "
                f"{args.images / zero:.0f} images/s with an instant model",
            )
        )
    tiny, small, large = args.memory_images
    peaks = measure_memory((tiny, small, large), args.memory_size, args.batch_size)
    mib = 1024 * 1024
    sizes = f"{args.memory_size[1]}x{args.memory_size[0]} images"
    rows += [
        row(
            f"segment pipeline peak RSS flatness, {small} / {large} images",
            round(peaks[small] / peaks[large], 3),
            ">= 0.97",
            detail=f"{peaks[small] / mib:.1f} MiB vs {peaks[large] / mib:.1f} MiB ({sizes}); "
            f"{(peaks[large] - peaks[small]) / (large - small) / 1024:.2f} KiB per extra image",
        ),
        row(
            f"segment pipeline peak RSS, {tiny} / {small} images",
            round(peaks[tiny] / peaks[small], 3),
            detail=f"{peaks[tiny] / mib:.1f} MiB vs {peaks[small] / mib:.1f} MiB ({sizes}); "
            f"{tiny} images do not fill the bounded working set",
        ),
    ]
    return rows


def print_rows(rows: list[Row]) -> None:
    for r in rows:
        mark = {True: "ok", False: "MISSED", None: ""}[r["met"]]
        value = f"{r['value']} {r['unit']}".strip()
        print(f"{r['name']:<66} {value:>8} {r['target'] or '':>8} {mark:>6}  {r['detail']}")


if __name__ == "__main__":
    print_rows(main())
