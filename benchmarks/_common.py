"""Shared helpers of the benchmark scripts (not a benchmark itself: run.py skips ``_*`` files).

Conventions (every ``benchmarks/<area>.py`` follows them, so ``run.py`` finds it):

* ``main() -> list[dict]``: one row per measurement, with at least ``name``, ``value`` and
  ``target`` (``None``, or a string such as ``"<= 2"`` / ``">= 10"`` checked against ``value``);
  optional ``unit``, ``detail`` (free text, e.g. the raw times) and ``met`` (bool).
* Ratios are measured in one process, in one run: the fast path and its references are timed
  alternately, and each figure is the median of several repeats, because the machine is shared.
* Running one alone from the repository root (``python -m benchmarks.<area>``) prints its rows.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

Row = dict[str, Any]


class MinimumRow(TypedDict):
    """A row of the scripts that print their own verdicts (cleanup, metrics, tiling): ``target``
    is the minimum a ratio should reach (``None``: information)."""

    name: str
    value: float
    target: float | None


#: 960x720, the original CamVid frame size.
FRAME_HEIGHT, FRAME_WIDTH = 720, 960


def timeit(function: Callable[[], object], repeat: int = 7, min_time: float = 0.05) -> float:
    """Median seconds per call of ``function`` over ``repeat`` rounds (one warm-up call first).

    A round repeats the call until it has run for ``min_time`` seconds, so fast functions are
    not dominated by timer resolution.
    """
    function()
    per_call: list[float] = []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            calls, started = 0, time.perf_counter()
            while True:
                function()
                calls += 1
                elapsed = time.perf_counter() - started
                if elapsed >= min_time:
                    break
            per_call.append(elapsed / calls)
    finally:
        if gc_was_enabled:
            gc.enable()
    return statistics.median(per_call)


def timings(functions: Mapping[str, Callable[[], object]], repeat: int = 7) -> dict[str, float]:
    """:func:`timeit` of several functions, interleaved so that load changes hit all alike."""
    for function in functions.values():
        function()
    samples: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeat):
        for name, function in functions.items():
            samples[name].append(timeit(function, repeat=1))
    return {name: statistics.median(values) for name, values in samples.items()}


def row(
    name: str,
    value: float,
    target: str | None = None,
    unit: str = "x",
    detail: str = "",
) -> Row:
    """A result row; ``met`` is filled in from ``target`` (``"<= x"`` or ``">= x"``)."""
    return {
        "name": name,
        "value": value,
        "target": target,
        "unit": unit,
        "detail": detail,
        "met": target_met(value, target),
    }


def target_met(value: float, target: str | None) -> bool | None:
    """Whether ``value`` meets ``target`` (``"<= 2"``, ``">= 10"``); ``None`` without target."""
    if not target:
        return None
    op, _, number = target.strip().partition(" ")
    bound = float(number)
    if op == "<=":
        return value <= bound
    if op == ">=":
        return value >= bound
    raise ValueError(f"target must look like '<= 2' or '>= 10' (got {target!r})")


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms"


def frame_scores(channels: int = 33, seed: int = 0) -> NDArray[np.float32]:
    """A 720x960xC float32 softmax of random logits: what the model returns for one frame."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((FRAME_HEIGHT, FRAME_WIDTH, channels), dtype=np.float32) * 3
    logits -= logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits


def frame_image(seed: int = 0) -> NDArray[np.uint8]:
    """A 720x960 street scene (uint8 RGB) and nothing else."""
    from camvidseg.testing import street_scene

    image, _ = street_scene(FRAME_HEIGHT, FRAME_WIDTH, seed=seed)
    return image


def frame_labels(seed: int = 0) -> NDArray[np.uint8]:
    """The exact CamVid-32 label map of :func:`frame_image`."""
    from camvidseg.testing import street_scene

    _, labels = street_scene(FRAME_HEIGHT, FRAME_WIDTH, seed=seed)
    return labels


def floor_time(array: NDArray[Any]) -> float:
    """The memory-bandwidth floor: one ``np.max`` pass over ``array``."""
    return timeit(lambda: np.max(array))


def have_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def machine_info() -> dict[str, str]:
    """CPU, cores, numpy/BLAS build and thread settings, for the report."""
    info = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_name(),
        "cores": str(os.cpu_count()),
    }
    if hasattr(os, "getloadavg"):
        info["load average (1/5/15 min)"] = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    for variable in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if os.environ.get(variable):
            info[variable] = os.environ[variable]
    try:
        config: Any = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except (TypeError, KeyError):
        pass
    return info


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_rows(rows: list[Row]) -> None:
    for r in rows:
        mark = {True: "ok", False: "MISSED", None: ""}[r.get("met")]
        target = r.get("target") or ""
        print(f"{r['name']:<58} {format_value(r):>12} {target:>8} {mark:>6}  {r.get('detail', '')}")


def format_value(r: Row) -> str:
    value = r["value"]
    unit = r.get("unit", "")
    if isinstance(value, float):
        text = f"{value:.3f}" if unit == "s" else f"{value:.2f}"
    else:
        text = str(value)
    return f"{text} {unit}".strip()


def print_minimum_rows(rows: Sequence[MinimumRow]) -> None:
    """Print :class:`MinimumRow` rows, each with its target and ``ok`` or ``BELOW``."""
    for r in rows:
        target = r["target"]
        verdict = "" if target is None else ("  ok" if r["value"] >= target else "  BELOW")
        shown = "" if target is None else f"  (target >= {target})"
        print(f"  {r['name']:<56} {r['value']!s:>8}{shown}{verdict}")
