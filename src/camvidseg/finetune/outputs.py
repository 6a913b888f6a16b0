"""What a head folder holds besides the head: ``metrics.json``, ``curves.png`` and the
checkpoint a re-run resumes from. Every file is written atomically."""

from __future__ import annotations

import contextlib
import json
import signal
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from camvidseg.exceptions import ConfigError
from camvidseg.finetune.settings import EpochRecord
from camvidseg.imageio import atomic_write

__all__ = [
    "CHECKPOINT_FILE",
    "CURVES_FILE",
    "METRICS_FILE",
    "deferred_interrupt",
    "draw_curves",
    "read_checkpoint",
    "write_checkpoint",
    "write_json",
]

METRICS_FILE = "metrics.json"
CURVES_FILE = "curves.png"
#: The resume point: one ``.npz`` (arrays and a JSON state), written after every epoch.
CHECKPOINT_FILE = "checkpoint.npz"
_STATE_KEY = "state_json"


def write_json(path: Path, data: object) -> Path:
    """``data`` as indented JSON, atomically."""
    with atomic_write(path) as handle:
        handle.write((json.dumps(data, indent=2) + "\n").encode("utf-8"))
    return path


def write_checkpoint(path: Path, state: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
    """One file holding the arrays and the JSON ``state``, so they always belong together."""
    payload: dict[str, Any] = {**arrays, _STATE_KEY: np.array(json.dumps(state))}
    with atomic_write(path) as handle:
        np.savez(handle, **payload)


def read_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, NDArray[Any]]] | None:
    """``(state, arrays)`` of :func:`write_checkpoint`, or ``None`` without a checkpoint.

    Raises:
        ConfigError: the file exists but is damaged (naming it).
    """
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        state = json.loads(str(arrays.pop(_STATE_KEY)))
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"{path}: damaged checkpoint ({exc}); delete it (or pass --overwrite) to start over"
        ) from None
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: damaged checkpoint (no state)")
    return state, arrays


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C back while files that belong together are written; raise it afterwards.

    Only possible in the main thread (elsewhere it does nothing).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []

    def remember(signum: int, frame: object) -> None:
        del frame
        received.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


# -- curves.png ------------------------------------------------------------------------------------

_SIZE = (880, 340)
_PANEL = 400
_MARGIN = (56, 30, 24, 40)  # left, top, right, bottom
_LOSS = (31, 119, 180)
_MIOU = (214, 39, 40)
_GRID = (225, 225, 225)
_TEXT = (40, 40, 40)


def _ticks(low: float, high: float) -> list[float]:
    if high <= low:
        high = low + 1.0
    raw = (high - low) / 4
    magnitude = 10 ** np.floor(np.log10(raw))
    step = float(min(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))
    first = np.ceil(low / step) * step
    return [float(v) for v in np.arange(first, high + step * 0.001, step)]


def _panel(
    draw: ImageDraw.ImageDraw,
    origin: int,
    title: str,
    values: Sequence[float | None],
    color: tuple[int, int, int],
    best: int | None,
    fixed: tuple[float, float] | None,
) -> None:
    font = ImageFont.load_default()
    left, top, right, bottom = _MARGIN
    x0, y0 = origin + left, top
    x1, y1 = origin + _PANEL - right, _SIZE[1] - bottom
    draw.text((x0, 8), title, fill=_TEXT, font=font)
    points = [(i + 1, v) for i, v in enumerate(values) if v is not None]
    if fixed is not None:
        low, high = fixed
    elif points:
        low = min(v for _, v in points)
        high = max(v for _, v in points)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        low, high = max(0.0, low - pad), high + pad
    else:
        low, high = 0.0, 1.0
    epochs = max(1, len(values))

    def xy(epoch: float, value: float) -> tuple[float, float]:
        fx = 0.5 if epochs == 1 else (epoch - 1) / (epochs - 1)
        fy = (value - low) / (high - low) if high > low else 0.5
        return x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)

    for tick in _ticks(low, high):
        _, y = xy(1, tick)
        draw.line([(x0, y), (x1, y)], fill=_GRID)
        draw.text((origin + 4, y - 6), f"{tick:.3g}", fill=_TEXT, font=font)
    for epoch in range(1, epochs + 1):
        if epochs <= 12 or epoch % max(1, epochs // 10) == 0:
            x, _ = xy(epoch, low)
            draw.text((x - 3, y1 + 6), str(epoch), fill=_TEXT, font=font)
    draw.rectangle([x0, y0, x1, y1], outline=_TEXT)
    draw.text(((x0 + x1) // 2 - 14, y1 + 22), "epoch", fill=_TEXT, font=font)
    coords = [xy(e, v) for e, v in points]
    if len(coords) > 1:
        draw.line(coords, fill=color, width=2)
    for x, y in coords:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
    if best is not None and 1 <= best <= len(values) and values[best - 1] is not None:
        x, y = xy(best, float(values[best - 1]))  # type: ignore[arg-type]
        draw.ellipse([x - 7, y - 7, x + 7, y + 7], outline=_TEXT, width=2)


def draw_curves(path: Path, history: Sequence[EpochRecord], best_epoch: int | None) -> Path:
    """``curves.png``: training loss (left) and validation mIoU (right) per epoch, the best
    epoch circled. Pillow only."""
    image = Image.new("RGB", _SIZE, "white")
    draw = ImageDraw.Draw(image)
    _panel(draw, 0, "training loss", [r.loss for r in history], _LOSS, best_epoch, None)
    _panel(
        draw,
        _SIZE[0] - _PANEL - 40,
        "validation mIoU",
        [r.val_miou for r in history],
        _MIOU,
        best_epoch,
        (0.0, 1.0),
    )
    with atomic_write(path) as handle:
        image.save(handle, format="PNG")
    return path
