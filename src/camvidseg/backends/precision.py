"""Inference precision (fp32 or bfloat16) and thread count, for every backend.

Both backends run in fp32 unless bfloat16 is asked for. bfloat16 needs a CPU with native
support (x86 ``avx512_bf16`` or ``amx_bf16``): elsewhere OpenVINO quietly runs fp32 instead and
TensorFlow's rewrite does nothing, so asking for it there is an error rather than a silent no-op.
OpenVINO would also pick bfloat16 *by itself* on such CPUs, so the OpenVINO backend always sets
the precision explicitly: the same settings give the same labels on every machine.

Nothing here imports TensorFlow or OpenVINO at module level.

Example:
    >>> check_precision("fp32")
    'fp32'
    >>> bf16_support_problem(frozenset({"avx2", "fma"}))  # doctest: +ELLIPSIS
    'this CPU has no native bfloat16 ...'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from typing import Any, Literal, get_args

from camvidseg import validators
from camvidseg.exceptions import ConfigError

__all__ = [
    "BF16_FLAGS",
    "PRECISIONS",
    "Precision",
    "backend_settings",
    "bf16_support_problem",
    "check_precision",
    "check_settings",
    "check_threads",
    "configure_tensorflow",
    "cpu_flags",
    "require_bf16",
]

log = logging.getLogger("camvidseg")

Precision = Literal["fp32", "bf16"]
#: Accepted values of ``precision`` (``SegmentConfig.precision``, ``--precision``).
PRECISIONS: tuple[str, ...] = get_args(Precision)
#: CPU flags (``/proc/cpuinfo``) any of which means native bfloat16 arithmetic.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_CPUINFO = "/proc/cpuinfo"


def check_precision(precision: object) -> Precision:
    """``precision`` if it is ``"fp32"`` or ``"bf16"``; else :class:`ConfigError`.

    Example:
        >>> check_precision("fp16")
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: precision must be fp32 or bf16 (got 'fp16')
    """
    validators.in_(PRECISIONS).check(precision, "precision")
    return "bf16" if precision == "bf16" else "fp32"


def check_threads(threads: object) -> int | None:
    """``threads`` if it is ``None`` (the backend's default) or an integer >= 1.

    Example:
        >>> check_threads(0)
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: threads must be an integer >= 1 or null (got 0)
    """
    validators.optional(validators.int_range(1)).check(threads, "threads")
    return threads if validators.is_integer(threads) else None


def cpu_flags(path: str | os.PathLike[str] = _CPUINFO) -> frozenset[str] | None:
    """The CPU feature flags the kernel reports (``flags`` lines of ``/proc/cpuinfo``), or
    ``None`` where that file does not exist or cannot be read (not Linux)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as cpuinfo:
            lines: Iterable[str] = cpuinfo.readlines()
    except OSError:
        return None
    flags: set[str] = set()
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return frozenset(flags)


def bf16_support_problem(flags: frozenset[str] | None = None) -> str | None:
    """Why bfloat16 inference is not available here, or ``None`` if it is.

    Args:
        flags: CPU flags; default :func:`cpu_flags` of this machine.
    """
    if flags is None:
        flags = cpu_flags()
    if flags is None:
        return f"cannot tell whether this CPU supports bfloat16 ({_CPUINFO} is not readable)"
    if flags & BF16_FLAGS:
        return None
    return (
        "this CPU has no native bfloat16 arithmetic (needs the avx512_bf16 or amx_bf16 CPU "
        "flag: Intel Cooper Lake, Sapphire Rapids or later, AMD Zen 4 or later); here bf16 "
        "would silently run as fp32"
    )


def require_bf16(what: str = "bf16", advice: str = "use --precision fp32") -> None:
    """Raise :class:`ConfigError` (naming ``what``, ending with ``advice``) unless this CPU runs
    bfloat16 natively."""
    problem = bf16_support_problem(cpu_flags())
    if problem is not None:
        raise ConfigError(f"{what}: {problem}; {advice}")


def check_settings(
    precision: object, threads: object, backend: str
) -> tuple[Precision, int | None]:
    """Validate ``precision`` and ``threads`` for ``backend`` (named in the bf16 error).

    Raises:
        ConfigError: for a bad value, or bf16 on a CPU without native bfloat16.
    """
    checked = check_precision(precision)
    if checked == "bf16":
        require_bf16(f"--precision bf16 ({backend})")
    return checked, check_threads(threads)


def configure_tensorflow(precision: str = "fp32", threads: int | None = None) -> None:
    """Set TensorFlow's process-wide precision and thread count before a model is loaded.

    ``bf16`` turns on TensorFlow's oneDNN automatic mixed precision (matmuls and convolutions in
    bfloat16, the rest in float32), ``fp32`` turns it off. TensorFlow applies the setting when
    it first runs a function, so it holds for models loaded *after* this call; it is
    process-wide. Import TensorFlow first (``TFHubBackend.load`` does, keeping its start-up
    output in the debug log). ``threads`` sets the intra-op thread pool (and one inter-op
    thread), which TensorFlow only accepts before it has run anything.

    Raises:
        ConfigError: for an unknown precision, bf16 on a CPU without support, or ``threads``
            after TensorFlow has started with another count.
    """
    precision, threads = check_settings(precision, threads, "TensorFlow")
    tf = _tensorflow()
    tf.config.optimizer.set_experimental_options(
        {"auto_mixed_precision_onednn_bfloat16": precision == "bf16"}
    )
    if threads is None:
        return
    current = tf.config.threading.get_intra_op_parallelism_threads()
    if current == threads:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        raise ConfigError(
            f"--threads {threads}: TensorFlow has already started in this process with "
            f"{current or 'its default number of'} threads; set threads before the first model "
            "is loaded"
        ) from None
    log.debug("TensorFlow runs with %d intra-op threads", threads)


def backend_settings(backend: object) -> dict[str, Any]:
    """``{"precision": ..., "threads": ...}`` a backend runs with (fp32 and ``None`` for
    backends that do not say, such as the fakes), for manifests.

    Example:
        >>> from camvidseg.backends.fake import NearestColorBackend
        >>> backend_settings(NearestColorBackend())
        {'precision': 'fp32', 'threads': None}
    """
    return {
        "precision": getattr(backend, "precision", "fp32"),
        "threads": getattr(backend, "threads", None),
    }


def _tensorflow() -> Any:
    from camvidseg.backends.tfhub import import_tensorflow

    tf, _ = import_tensorflow()
    return tf
