"""Small synthetic videos with known labels, for tests and benchmarks (yours too).

The scenes are drawn in exact CamVid-32 colours, so the fake nearest-colour model
(:class:`~camvidseg.testing.NearestColorBackend`, ``--model fake:33``) labels every pixel of a
losslessly stored frame with its true class.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from camvidseg._types import ImageArray, LabelMap
from camvidseg.palette import CamVidPalette
from camvidseg.video._av import require_av

__all__ = ["moving_shapes", "write_video"]

_SKY, _ROAD, _BUILDING, _SIDEWALK = "Sky", "Road", "Building", "Sidewalk"
_CAR, _PEDESTRIAN, _TREE = "Car", "Pedestrian", "Tree"


def moving_shapes(
    frames: int,
    height: int = 48,
    width: int = 64,
    *,
    cut_at: int | None = None,
) -> Iterator[tuple[ImageArray, LabelMap]]:
    """``(image, labels)`` per frame: sky over road, a car driving right and a pedestrian
    walking left; from frame ``cut_at`` on, another scene (building over sidewalk, a tree).

    Example:
        >>> image, labels = next(moving_shapes(1))
        >>> image.shape, CamVidPalette.camvid32().name_of(int(labels[-1, 0]))
        ((48, 64, 3), 'Road')
    """
    palette = CamVidPalette.camvid32()
    horizon = max(1, height // 3)
    car_h, car_w = max(2, height // 5), max(3, width // 5)
    person_h, person_w = max(2, height // 4), max(1, width // 16)
    for index in range(frames):
        labels = np.empty((height, width), np.uint8)
        second = cut_at is not None and index >= cut_at
        top, bottom = (_BUILDING, _SIDEWALK) if second else (_SKY, _ROAD)
        labels[:horizon] = palette.id_of(top)
        labels[horizon:] = palette.id_of(bottom)
        if second:
            x = (index * 2) % max(1, width - car_w)
            labels[horizon // 2 : horizon // 2 + car_h, x : x + car_w] = palette.id_of(_TREE)
        else:
            x = (index * 3) % max(1, width - car_w)
            y = min(height - car_h, horizon + 2)
            labels[y : y + car_h, x : x + car_w] = palette.id_of(_CAR)
            px = width - person_w - (index * 2) % max(1, width - person_w)
            py = min(height - person_h, horizon)
            labels[py : py + person_h, px : px + person_w] = palette.id_of(_PEDESTRIAN)
        yield palette.colorize(labels), labels


def write_video(
    path: str | os.PathLike[str],
    images: Iterable[ImageArray],
    *,
    rate: Fraction = Fraction(30000, 1001),
    codec: str | None = None,
    rotation: int = 0,
    audio_seconds: float = 0.0,
) -> Path:
    """Encode ``images`` (``(H, W, 3)`` uint8 RGB) into ``path`` with PyAV.

    Args:
        path: ``.mkv`` (default codec FFV1, lossless RGB) or ``.mp4`` (default H.264 yuv420p;
            sizes must be even).
        images: The frames.
        rate: Exact frame rate.
        codec: Another PyAV encoder name.
        rotation: Display rotation metadata, degrees counter-clockwise (as players apply it).
        audio_seconds: Also write this much of an AAC 440 Hz tone.
    """
    require_av()
    import av

    path = Path(path)
    mkv = path.suffix.lower() == ".mkv"
    codec = codec or ("ffv1" if mkv else "libx264")
    pix_fmt = "bgr0" if codec == "ffv1" else "rgb24" if codec == "libx264rgb" else "yuv420p"
    with av.open(os.fspath(path), "w") as container:
        stream = None
        audio = None
        if audio_seconds > 0:
            audio = container.add_stream("aac", rate=44100)
            audio.layout = "mono"
        for image in images:
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = pix_fmt
                if rotation:
                    if not hasattr(stream, "set_display_rotation"):
                        raise RuntimeError("writing rotation metadata needs PyAV >= 18")
                    stream.set_display_rotation(rotation)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            container.mux(stream.encode(frame))
        if stream is not None:
            container.mux(stream.encode(None))
        if audio is not None:
            samples = int(audio_seconds * 44100)
            step = 1024
            for start in range(0, samples, step):
                t = np.arange(start, min(samples, start + step)) / 44100
                tone = (0.2 * np.sin(2 * math.pi * 440 * t)).astype(np.float32)[None, :]
                chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
                chunk.sample_rate = 44100
                chunk.pts = start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path
