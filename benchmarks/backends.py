"""CPU backends on a realistic model: TensorFlow vs OpenVINO, fp32 vs bf16 (issue 14).

    python benchmarks/backends.py [--repeat 3] [--images 5] [--write-docs]

Everything runs on the random-weight HRNetV2-W48-shaped SavedModel of ``hrnet_model.py`` (built
once into its cache folder, ~260 MB; the fake test model computes nothing and says nothing
here), and on its OpenVINO conversion (made once, next to it, by ``camvidseg model convert``'s
code in a subprocess). Measured, in this order:

1. Whole ``camvidseg segment`` processes (fresh interpreters), alternating the backends within
   each repeat: time from process start to the first label map written (one 360x480 image),
   the peak resident set size of that process (``VmHWM``), and the per-image cost in whole runs
   (a run on ``--images`` images minus a run on one, divided by the difference).
2. In this process, per-frame time at 360x480 and 720x960 of ``Segmenter.segment`` (model plus
   in-graph labels) for TF fp32, OpenVINO fp32 and, on CPUs with avx512_bf16 or AMX, OpenVINO
   bf16, taken in turn within each repeat; TF bf16 in a subprocess of its own (TensorFlow's
   bf16 switch is process-wide). Ratios are to TF fp32; label agreement is with TF fp32's labels.
3. ``segment``'s pipeline overhead (discovery, decoding, writing labels, colour, overlay and the
   manifest) over the OpenVINO fp32 model's calls alone on the same images.

Each figure is the median of ``--repeat`` runs. The machine is shared: expect spread, and
prefer the ratios. Not run by ``benchmarks/run.py`` unless named (it takes many minutes).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image

if __package__ in (None, ""):  # run as a script: this tree's "benchmarks" and camvidseg
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:0] = [str(_ROOT), *([str(_ROOT / "src")] if (_ROOT / "src").is_dir() else [])]

import camvidseg
from benchmarks import hrnet_model
from benchmarks._common import Row, machine_info, print_rows, row
from camvidseg.backends.precision import bf16_support_problem
from camvidseg.testing import street_scene

#: ``benchmarks/run.py`` runs this only when asked for by name.
RUN_BY_DEFAULT = False
SIZES: tuple[tuple[int, int], ...] = ((360, 480), (720, 960))
DOCS = Path(__file__).resolve().parents[1] / "docs" / "performance.md"
START, END = "<!-- backends.py: start -->", "<!-- backends.py: end -->"
_SOURCE = str(Path(camvidseg.__file__).resolve().parents[1])
#: Runs the CLI, then reports the process's peak RSS (VmHWM starts afresh at exec).
_CLI_CHILD = """
import sys
from camvidseg.cli import main
code = main(sys.argv[1:])
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print("VmHWM", int(line.split()[1]) * 1024, file=sys.stderr)
sys.exit(code)
"""


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [_SOURCE, os.environ.get("PYTHONPATH")])),
    }


def openvino_model(saved: Path) -> Path:
    """The OpenVINO conversion of ``saved`` (made once, in a subprocess)."""
    target = saved.with_name(saved.name + "-openvino")
    if (target / "camvidseg_openvino.json").is_file():
        return target
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "camvidseg", "model", "convert", str(saved), "-o", str(target),
         "--overwrite", "-q"],
        env=_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    print(f"converted in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return target


def frame(height: int, width: int, seed: int = 0) -> NDArray[np.uint8]:
    return street_scene(height, width, seed=seed)[0]


# -- 1. whole processes ----------------------------------------------------------------------------


def segment_process(
    model: Path, images: Sequence[Path], out: Path, precision: str
) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one ``camvidseg segment`` process."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CLI_CHILD, "segment", *map(str, images), "-o", str(out),
         "--model", str(model), "--precision", precision, "--overwrite", "-q"],
        env=_env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"camvidseg segment failed ({model}):\n{proc.stderr[-2000:]}")
    peaks = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("VmHWM")]
    return seconds, peaks[-1]


def whole_processes(
    models: dict[str, tuple[Path, str]], folder: Path, images: int, repeat: int
) -> dict[str, dict[str, float]]:
    """Per backend: median first-label time, peak RSS, and per-image cost in whole runs."""
    paths = []
    for index in range(images):
        path = folder / f"frame{index}.png"
        Image.fromarray(frame(360, 480, seed=index)).save(path)
        paths.append(path)
    samples: dict[str, dict[str, list[float]]] = {
        name: {"one": [], "many": [], "rss": []} for name in models
    }
    for _ in range(repeat):
        for name, (model, precision) in models.items():
            one, rss = segment_process(model, paths[:1], folder / f"out-{name}-1", precision)
            many, _ = segment_process(model, paths, folder / f"out-{name}-n", precision)
            samples[name]["one"].append(one)
            samples[name]["many"].append(many)
            samples[name]["rss"].append(rss)
    result = {}
    for name, values in samples.items():
        one, many = statistics.median(values["one"]), statistics.median(values["many"])
        result[name] = {
            "first_label": one,
            "rss": statistics.median(values["rss"]),
            "per_image": (many - one) / (images - 1),
        }
    return result


# -- 2. per frame, in process ----------------------------------------------------------------------


def per_frame(
    segmenters: dict[str, Any], repeat: int
) -> tuple[dict[tuple[str, tuple[int, int]], float], dict[tuple[str, tuple[int, int]], Any]]:
    """Median seconds of ``segment`` per backend and size (backends in turn), and the labels."""
    times: dict[tuple[str, tuple[int, int]], list[float]] = {}
    labels: dict[tuple[str, tuple[int, int]], Any] = {}
    for size in SIZES:
        image = frame(*size)
        for name, segmenter in segmenters.items():
            # Warm-up: the first call learns the channel layout from the scores and compiles the
            # model for this size; the second compiles the in-graph labels (what is timed).
            segmenter.segment(image)
            labels[name, size] = segmenter.segment(image).labels
        for _ in range(repeat):
            for name, segmenter in segmenters.items():
                started = time.perf_counter()
                segmenter.segment(image)
                times.setdefault((name, size), []).append(time.perf_counter() - started)
    return {key: statistics.median(values) for key, values in times.items()}, labels


def tf_bf16_worker(saved: Path, out: Path, repeat: int) -> None:
    """Subprocess body: TF bf16 per-frame times and labels (``out``/times.json, labels_*.npy)."""
    from camvidseg import Segmenter

    segmenter = Segmenter.from_hub(str(saved), precision="bf16")
    times, labels = per_frame({"tf-bf16": segmenter}, repeat)
    for (_, size), value in labels.items():
        np.save(out / f"labels_{size[0]}x{size[1]}.npy", value)
    (out / "times.json").write_text(
        json.dumps({f"{size[0]}x{size[1]}": value for (_, size), value in times.items()})
    )


def tf_bf16(
    saved: Path, repeat: int
) -> tuple[dict[tuple[str, tuple[int, int]], float], dict[Any, Any]]:
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-") as tmp:
        subprocess.run(
            [sys.executable, __file__, "--tf-bf16-worker", str(saved), tmp,
             "--repeat", str(repeat)],
            env=_env(), check=True, capture_output=True,
        )  # fmt: skip
        data = json.loads((Path(tmp) / "times.json").read_text())
        times, labels = {}, {}
        for size in SIZES:
            key = f"{size[0]}x{size[1]}"
            times["tf-bf16", size] = float(data[key])
            labels["tf-bf16", size] = np.load(Path(tmp) / f"labels_{key}.npy")
        return times, labels


# -- 3. pipeline overhead --------------------------------------------------------------------------


def pipeline_overhead(backend: Any, folder: Path, images: int, repeat: int) -> tuple[float, float]:
    """Median ``run_pipeline`` seconds and median seconds of the model calls alone."""
    from camvidseg import Segmenter
    from camvidseg.pipeline import RunOptions, discover_inputs, run_pipeline
    from camvidseg.postprocess import ChannelLayout

    paths = []
    for index in range(images):
        path = folder / "in" / f"frame{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame(360, 480, seed=index)).save(path)
        paths.append(path)
    batches = [
        (np.asarray(Image.open(p).convert("RGB"), np.float32) / np.float32(255.0))[None]
        for p in paths
    ]
    layout = ChannelLayout.detect(33)

    def alone() -> float:
        started = time.perf_counter()
        backend.predict(batches[0])  # the pipeline learns the layout from the first scores
        for batch in batches[1:]:
            backend.predict_labels(batch, layout)
        return time.perf_counter() - started

    def pipeline() -> float:
        started = time.perf_counter()
        plan = discover_inputs([folder / "in"], folder / "out")
        report = run_pipeline(Segmenter(backend), plan, RunOptions(overwrite=True))
        if report.summary.ok != images:
            raise SystemExit(f"the pipeline failed: {report.errors[:3]}")
        return time.perf_counter() - started

    alone()  # warm-up
    pipeline_times, alone_times = [], []
    for _ in range(repeat):
        pipeline_times.append(pipeline())
        alone_times.append(alone())
    return statistics.median(pipeline_times), statistics.median(alone_times)


# -- rows and report -------------------------------------------------------------------------------


def _agreement(a: Any, b: Any) -> float:
    return float(np.mean(a == b))


def _not_here(name: str, problem: str) -> Row:
    return row(name, float("nan"), detail=f"not measured: {problem}")


def measure(args: argparse.Namespace) -> list[Row]:
    from camvidseg import Segmenter
    from camvidseg.backends.openvino import OpenVINOBackend

    saved = hrnet_model.build()
    ir = openvino_model(saved)
    problem = bf16_support_problem()
    bf16 = problem is None
    rows = hrnet_model.model_rows(saved)
    models = {"tf-fp32": (saved, "fp32"), "ov-fp32": (ir, "fp32")}
    if bf16:
        models |= {"tf-bf16": (saved, "bf16"), "ov-bf16": (ir, "bf16")}
    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-") as tmp:
        whole = whole_processes(models, Path(tmp), args.images, args.repeat)
    tf_whole, ov_whole = whole["tf-fp32"], whole["ov-fp32"]
    rows.append(
        row(
            "start to first label map (whole segment, 1 image 360x480): OpenVINO / TF",
            ov_whole["first_label"] / tf_whole["first_label"],
            target="<= 0.5",
            detail=f"{tf_whole['first_label']:.2f} s -> {ov_whole['first_label']:.2f} s",
        )
    )
    for name, label in (("tf-fp32", "TF fp32"), ("ov-fp32", "OpenVINO fp32")):
        rows.append(
            row(
                f"peak RSS of that process: {label}",
                whole[name]["rss"] / 2**20,
                unit="MiB",
            )
        )
    rows.append(
        row(
            "per-image cost in whole runs (5 - 1 images, 360x480): OpenVINO / TF fp32",
            ov_whole["per_image"] / tf_whole["per_image"],
            detail=f"TF {tf_whole['per_image']:.2f} s, OpenVINO {ov_whole['per_image']:.2f} s "
            "per image (the longer run also compiles the in-graph labels once)",
        )
    )
    for backend in ("tf", "ov"):
        label = {"tf": "TF", "ov": "OpenVINO"}[backend]
        name = f"per-image cost in whole runs: {label} bf16 / fp32"
        if bf16:
            ratio = whole[f"{backend}-bf16"]["per_image"] / whole[f"{backend}-fp32"]["per_image"]
            rows.append(row(name, ratio, target="<= 0.625"))
        else:
            rows.append(_not_here(name, str(problem)))

    segmenters: dict[str, Any] = {
        "tf-fp32": Segmenter.from_hub(str(saved)),
        "ov-fp32": Segmenter(OpenVINOBackend.load(ir)),
    }
    if bf16:
        segmenters["ov-bf16"] = Segmenter(OpenVINOBackend.load(ir, precision="bf16"))
    times, labels = per_frame(segmenters, args.repeat)
    if bf16:
        more_times, more_labels = tf_bf16(saved, args.repeat)
        times |= more_times
        labels |= more_labels
    names = {"tf-bf16": "TF bf16", "ov-fp32": "OpenVINO fp32", "ov-bf16": "OpenVINO bf16"}
    for size in SIZES:
        text = f"{size[0]}x{size[1]}"
        reference = times["tf-fp32", size]
        rows.append(row(f"TF fp32 per frame {text}", reference, unit="s"))
        for key, label in names.items():
            if (key, size) not in times:
                rows.append(_not_here(f"{label} per frame {text} / TF fp32", str(problem)))
                continue
            agreement = _agreement(labels[key, size], labels["tf-fp32", size])
            rows.append(
                row(
                    f"{label} per frame {text} / TF fp32",
                    times[key, size] / reference,
                    detail=f"{reference:.2f} s -> {times[key, size]:.2f} s",
                )
            )
            rows.append(
                row(
                    f"{label} labels equal to TF fp32's, {text}",
                    100 * agreement,
                    target=">= 99.99" if key == "ov-fp32" else None,
                    unit="%",
                )
            )
        for backend, label in (("tf", "TF"), ("ov", "OpenVINO")):
            name = f"{label} bf16 speed-up over fp32 per frame {text}"
            if (f"{backend}-bf16", size) in times:
                ratio = times[f"{backend}-fp32", size] / times[f"{backend}-bf16", size]
                rows.append(row(name, ratio, target=">= 1.6"))
            else:
                rows.append(_not_here(name, str(problem)))

    with tempfile.TemporaryDirectory(prefix="camvidseg-bench-") as tmp:
        ov_backend = segmenters["ov-fp32"].backend
        piped, alone = pipeline_overhead(ov_backend, Path(tmp), args.pipeline_images, args.repeat)
    rows.append(
        row(
            f"segment pipeline overhead over the model alone (OpenVINO fp32, "
            f"{args.pipeline_images} images 360x480)",
            100 * (piped / alone - 1),
            target="<= 2",
            unit="%",
            detail=f"{alone:.2f} s of model calls, {piped:.2f} s through run_pipeline",
        )
    )
    return rows


def markdown(rows: list[Row], repeat: int) -> str:
    from benchmarks._common import format_value

    info = machine_info()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        START,
        "## CPU backends: TensorFlow and OpenVINO, fp32 and bf16",
        "",
        "Generated by `python benchmarks/backends.py --write-docs` (not by `run.py`); do not edit",
        "by hand. The model is a random-weight network with HRNetV2-W48's exact structure",
        "(`benchmarks/hrnet_model.py`); times are medians of "
        f"{repeat} runs on a shared machine, so prefer the ratios.",
        "",
        f"Measured {when} on: cpu **{info.get('cpu')}**, {info.get('cores')} cores; load average "
        f"{info.get('load average (1/5/15 min)', '?')}; bf16: "
        + ("supported" if bf16_support_problem() is None else f"{bf16_support_problem()}")
        + ".",
        "",
        "| Benchmark | Result | Target | Met | Details |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: ""}[r.get("met")]
        value = "n/a" if r["value"] != r["value"] else format_value(r)
        detail = str(r.get("detail", "")).replace("|", "/")
        lines.append(f"| {r['name']} | {value} | {r.get('target') or ''} | {met} | {detail} |")
    lines += [
        "",
        "Notes:",
        "",
        "- Whole-process rows: `camvidseg segment` in fresh interpreters on 360x480 street scenes,",
        "  TF and OpenVINO alternating; the first-label time runs from process start (Python,",
        "  imports, model load or compile, one frame, writing the outputs) to exit.",
        "- Per-frame rows: `Segmenter.segment` in one process after two warm-up calls per size",
        "  (compilation, in-graph labels), the backends taking turns within each repeat.",
        "- bf16 rows say `n/a` on a CPU without avx512_bf16/AMX: camvidseg refuses bf16 there",
        "  (OpenVINO would silently compile fp32, TensorFlow's rewrite would do nothing).",
        "- The weights are random: label agreement measures how closely OpenVINO reproduces",
        "  TensorFlow's arithmetic on this network, not segmentation quality.",
        "",
        END,
    ]
    return "\n".join(lines)


def write_docs(section: str) -> None:
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Performance\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    DOCS.write_text(text, encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--images", type=int, default=5, help="images of the longer whole runs")
    parser.add_argument("--pipeline-images", type=int, default=6)
    parser.add_argument(
        "--sizes", default=None, help="per-frame sizes, e.g. 64x96 (a quick check of the script)"
    )
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    parser.add_argument(
        "--tf-bf16-worker", nargs=2, metavar=("MODEL", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.sizes:
        global SIZES
        SIZES = tuple(
            (int(h), int(w)) for h, w in (part.split("x") for part in args.sizes.split(","))
        )
    if args.tf_bf16_worker:
        tf_bf16_worker(Path(args.tf_bf16_worker[0]), Path(args.tf_bf16_worker[1]), args.repeat)
        return []
    rows = measure(args)
    print_rows(rows)
    if args.write_docs:
        write_docs(markdown(rows, args.repeat))
        print(f"updated {DOCS}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main(sys.argv[1:])
