"""Small JPEG thumbnails of a run's outputs, kept in ``OUT/thumbs/`` beside the report.

A thumbnail's file name is a hash of its source's path and the thumbnail size, so any input
name (quotes, ``#``, ``%``, unicode, very long) gives a short, safe name, and a thumbnail is
reused as long as it is not older than its source. Each is written atomically.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import attrs
from PIL import Image

from camvidseg.imageio import atomic_write

__all__ = ["THUMBS_FOLDER", "Thumbnail", "ThumbnailMaker"]

log = logging.getLogger("camvidseg")

#: Folder of the thumbnails, inside the report's folder.
THUMBS_FOLDER = "thumbs"
_JPEG_QUALITY = 82
#: Pillow decodes files claiming more pixels than this only to refuse them; thumbnails of
#: outputs never come near it (outputs have their input's size).
_MAX_PIXELS = 1 << 28
_SIXTEEN_BIT = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})


@attrs.frozen
class Thumbnail:
    """A thumbnail file.

    Attributes:
        relpath: Its path relative to the report's folder (``/`` separated).
        width: Pixels across.
        height: Pixels down.
        made: Whether it was (re)made now rather than reused.
    """

    relpath: str
    width: int
    height: int
    made: bool


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode in _SIXTEEN_BIT:
        # 16-bit confidence maps: 0..65535 onto 0..255.
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


class ThumbnailMaker:
    """Makes (or reuses) thumbnails in ``folder/thumbs``; safe to call from several threads.

    Args:
        folder: The report's folder.
        size: Longest side of a thumbnail, in pixels.
    """

    def __init__(self, folder: Path, size: int) -> None:
        if size < 16:
            raise ValueError(f"thumbnail size must be at least 16 pixels (got {size})")
        self.folder = folder
        self.size = size

    def relpath(self, key: str, size: int) -> str:
        """Where the thumbnail of ``key`` (a source path) at ``size`` goes."""
        digest = hashlib.sha256(f"{size}\0{key}".encode("utf-8", "surrogatepass")).hexdigest()
        return f"{THUMBS_FOLDER}/{digest[:2]}/{digest[2:22]}.jpg"

    def make(self, source: Path, key: str, size: int | None = None) -> Thumbnail | None:
        """The thumbnail of the image ``source`` (``key`` names it stably, e.g. its path
        relative to the folder); ``None`` when the source is missing or cannot be read."""
        size = self.size if size is None else size
        relpath = self.relpath(key, size)
        target = self.folder / relpath
        try:
            source_mtime = source.stat().st_mtime_ns
        except OSError:
            return None
        reused = self._reuse(target, relpath, source_mtime)
        if reused is not None:
            return reused
        try:
            with Image.open(source) as image:
                if image.width * image.height > _MAX_PIXELS:
                    raise ValueError(f"{image.width}x{image.height} pixels")
                image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
                image.load()  # all of it, before the file closes
                picture = _rgb(image)
                picture.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(target) as handle:
                picture.save(handle, format="JPEG", quality=_JPEG_QUALITY, optimize=True)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            log.warning("%s: no thumbnail (%s)", source, exc)
            return None
        return Thumbnail(relpath, picture.width, picture.height, made=True)

    def _reuse(self, target: Path, relpath: str, source_mtime: int) -> Thumbnail | None:
        try:
            if target.stat().st_mtime_ns < source_mtime:
                return None
            with Image.open(target) as image:
                if image.format != "JPEG":
                    return None
                return Thumbnail(relpath, image.width, image.height, made=False)
        except (OSError, ValueError, SyntaxError):
            return None
