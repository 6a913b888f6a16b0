"""Reading and writing images safely with Pillow.

Reading normalises every mode Pillow opens to ``HxWx3`` uint8 RGB (16-bit images are scaled, not
clipped; EXIF orientation is applied; animations give their first frame). Writing always goes to a
temporary file in the destination folder and is moved into place with :func:`os.replace`, so a
killed process never leaves a half-written file under its final name.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING

import attrs
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from camvidseg._types import ColorTable, ImageArray, ImageLike, LabelMap
from camvidseg.exceptions import InvalidImageError

if TYPE_CHECKING:
    from camvidseg.palette import CamVidPalette

__all__ = [
    "IMAGE_SUFFIXES",
    "TEMP_PREFIX",
    "LoadedImage",
    "atomic_write",
    "load_image",
    "load_label_png",
    "open_image",
    "read_label_png",
    "save_image",
    "save_label_png",
    "to_rgb_array",
]

#: File suffixes (lower case) of the images every command picks up in folders (``segment``,
#: ``evaluate``, ``tune``): the formats :func:`open_image` reads with Pillow alone (PNG, JPEG,
#: BMP, GIF, TIFF, WebP and the Netpbm family).
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".jpe", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
    | {".ppm", ".pgm", ".pbm", ".pnm"}
)
#: Start of the names of :func:`atomic_write`'s temporary files, ``.cvs-XXXXXXXX.tmp`` (8
#: random characters): hidden, and short whatever the destination is called.
TEMP_PREFIX = ".cvs-"


def _process_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any writer thread.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: Mode of files written by :func:`atomic_write`: what ``open()`` would give (0666 less the
#: umask), not mkstemp's owner-only 0600, so outputs can be shared and served.
FILE_MODE = 0o666 & ~_process_umask()
#: EXIF tag holding the orientation (1 = as stored, 2..8 = flipped and/or rotated).
_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = frozenset({"LA", "La", "PA", "RGBA", "RGBa"})
#: File signatures of formats Pillow reads, to tell "unsupported variant" from "not an image".
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


@attrs.frozen(eq=False)
class LoadedImage:
    """An image read from disk, with what was done to it on the way.

    Attributes:
        array: ``(H, W, 3)`` uint8 RGB.
        path: Where it came from, or ``None`` for in-memory images.
        mode: Pillow mode of the file (``"RGB"``, ``"I;16"``, ...).
        frames: Number of frames; only the first is used.
        exif_transposed: Whether an EXIF orientation was applied.
        transparency: Whether the file had an alpha channel or a transparent colour (dropped:
            transparent pixels keep their colour).
    """

    array: ImageArray
    path: Path | None = None
    mode: str = "RGB"
    frames: int = 1
    exif_transposed: bool = False
    transparency: bool = False

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` after orientation."""
        return (int(self.array.shape[1]), int(self.array.shape[0]))


def _scale_to_uint8(array: np.ndarray[tuple[int, ...], np.dtype[np.generic]]) -> ImageArray:
    """Scale a high-bit-depth integer or float array to uint8 by its dtype's range."""
    if array.dtype == np.uint8:
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        return np.asarray(np.rint(np.clip(array, 0.0, 1.0) * 255.0), dtype=np.uint8)
    if array.dtype in (np.uint16, np.dtype(">u2"), np.dtype("<u2")):
        return np.rint(array.astype(np.float64) / 257.0).astype(np.uint8)
    # Pillow gives 32-bit ints for "I" and "I;16" images; the values use the 16-bit range.
    values = array.astype(np.int64)
    if values.max(initial=0) <= 255 and values.min(initial=0) >= 0:
        return values.astype(np.uint8)
    return np.rint(np.clip(values, 0, 65535) / 257.0).astype(np.uint8)


def pil_to_rgb_array(image: Image.Image) -> ImageArray:
    """Convert any Pillow image to ``(H, W, 3)`` uint8 RGB.

    Transparent pixels keep their colour (alpha is dropped, not composited); grayscale is
    replicated; 16-bit and 32-bit images are scaled to 8 bits.
    """
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        gray = _scale_to_uint8(np.asarray(image))
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode != "RGB":
        try:
            image = image.convert("RGB")
        except (ValueError, OSError) as exc:
            raise InvalidImageError(f"unsupported image mode {mode!r}: {exc}") from exc
    rgb: ImageArray = np.asarray(image, dtype=np.uint8).copy()
    return rgb


def to_rgb_array(image: ImageLike) -> ImageArray:
    """Normalise a PIL image, path or array to ``(H, W, 3)`` uint8 RGB.

    Arrays must already be ``HxWx3`` uint8 (``HxW`` grayscale is accepted and replicated).

    Raises:
        InvalidImageError: on the wrong shape or dtype, an empty image, or an unreadable file.

    Example:
        >>> to_rgb_array(np.zeros((2, 3), np.uint8)).shape
        (2, 3, 3)
    """
    if isinstance(image, Image.Image):
        array = pil_to_rgb_array(ImageOps.exif_transpose(image) or image)
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InvalidImageError(
                f"image must be HxWx3 uint8 (got shape {image.shape}, dtype {image.dtype})"
            )
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise InvalidImageError(f"image must be HxWx3 uint8 (got shape {image.shape})")
        array = image
    elif isinstance(image, (str, os.PathLike)):
        array = open_image(image).array
    else:
        raise InvalidImageError(
            f"expected a PIL image, an HxWx3 uint8 array or a path (got {type(image).__name__})"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidImageError(f"image is empty (shape {array.shape})")
    return array


def open_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> LoadedImage:
    """Read an image file to RGB with what was done to it.

    Decompression bombs (over ``PIL.Image.MAX_IMAGE_PIXELS``) are refused, not just warned about.
    Safe to call from several threads at once.

    Args:
        path: The file. Anything but a regular file (a folder, a FIFO, a device) is refused
            before it is opened, so a pipe can never block the reader.
        max_pixels: Refuse images with more pixels than this, from the header, before decoding.

    Raises:
        InvalidImageError: naming the file and the problem.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> Image.new("LA", (3, 2)).save(folder / "gray.png")
        >>> loaded = open_image(folder / "gray.png")
        >>> loaded.array.shape, loaded.mode, loaded.transparency, loaded.exif_transposed
        ((2, 3, 3), 'LA', True, False)
    """
    path = Path(path)
    try:
        if not stat.S_ISREG(path.stat().st_mode):
            kind = "a directory" if path.is_dir() else "not a regular file"
            raise InvalidImageError(f"{path}: is {kind}, not an image")
        with Image.open(path) as image:
            width, height = image.size
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse here as well
            # instead of toggling the (process-wide, not thread-safe) warning filters.
            limit = Image.MAX_IMAGE_PIXELS
            if limit is not None and width * height > limit:
                raise Image.DecompressionBombError(
                    f"Image size ({width * height} pixels) exceeds limit of {limit} pixels"
                )
            if max_pixels is not None and width * height > max_pixels:
                raise InvalidImageError(
                    f"image too large: {width}x{height} = {width * height} pixels "
                    f"(the limit is {max_pixels})"
                )
            frames = int(getattr(image, "n_frames", 1))
            mode = image.mode
            image.seek(0)
            image.load()
            transparency = mode in _ALPHA_MODES or "transparency" in image.info
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            exif_transposed = orientation in range(2, 9)
            transposed = ImageOps.exif_transpose(image) if exif_transposed else image
            array = pil_to_rgb_array(transposed if transposed is not None else image)
    except FileNotFoundError:
        raise InvalidImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidImageError(f"{path}: is a directory, not an image") from None
    except PermissionError:
        raise InvalidImageError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{path}: {_unidentified_reason(path)}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(f"{path}: refused as a decompression bomb ({exc})") from None
    except InvalidImageError as exc:
        message = str(exc)
        raise InvalidImageError(
            message if message.startswith(f"{path}:") else f"{path}: {message}"
        ) from None
    except MemoryError:
        raise InvalidImageError(f"{path}: not enough memory to decode the image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageError(f"{path}: cannot decode image ({exc})") from None
    if array.size == 0:
        raise InvalidImageError(f"{path}: image is empty")
    return LoadedImage(array, path, mode, frames, exif_transposed, transparency)


def _unidentified_reason(path: Path) -> str:
    """Why Pillow could not open ``path``: empty, a known format it cannot decode, or not an
    image at all."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        head = b""
    if not head:
        return "empty file"
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return f"a {name} file Pillow cannot decode (damaged, or a pixel format it lacks)"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "a WebP file Pillow cannot decode (damaged, or a variant it lacks)"
    return "not an image Pillow can read"


def load_image(source: ImageLike) -> ImageArray:
    """Read ``source`` (path, PIL image or array) as ``(H, W, 3)`` uint8 RGB."""
    return to_rgb_array(source)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[bytes]]:
    """Open a temporary file beside ``path``; on success move it over ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is left as it was. The temporary
    file's name is short and hidden whatever ``path`` is called (``.cvs-XXXXXXXX.tmp``, see
    :data:`TEMP_PREFIX`), so any name the file system accepts can be written.

    Example:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / ("x" * 250)
        >>> with atomic_write(target) as handle:
        ...     _ = handle.write(b"data")
        >>> target.read_bytes(), [p.name for p in target.parent.iterdir()] == [target.name]
        (b'data', True)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=".tmp")
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows mkstemp's mode is already the default
            os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp_name).unlink()
        raise


def _image_format(path: Path) -> str:
    ext = path.suffix.lower()
    formats = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}
    if ext not in formats:
        raise InvalidImageError(f"{path}: cannot tell the image format from {ext!r}")
    return formats[ext]


def save_image(
    path: str | os.PathLike[str],
    image: Image.Image | ImageArray,
    *,
    quality: int = 92,
    save: Callable[[Image.Image, IO[bytes], str], None] | None = None,
) -> Path:
    """Write an image atomically; the format follows the file extension."""
    path = Path(path)
    fmt = _image_format(path)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    with atomic_write(path) as handle:
        if save is not None:
            save(pil, handle, fmt)
        elif fmt == "JPEG":
            pil.convert("RGB").save(handle, format=fmt, quality=quality)
        else:
            pil.save(handle, format=fmt)
    return path


def label_image(labels: LabelMap, palette: CamVidPalette) -> Image.Image:
    """An indexed (mode ``"P"``) Pillow image of ``labels`` with ``palette`` embedded."""
    if labels.dtype != np.uint8 or labels.ndim != 2:
        raise InvalidImageError(
            f"labels must be HxW uint8 (got shape {labels.shape}, dtype {labels.dtype})"
        )
    present = np.unique(labels)
    allowed = set(range(len(palette))) | {255}
    unknown = [int(v) for v in present if int(v) not in allowed]
    if unknown:
        raise InvalidImageError(
            f"label ids {unknown[:5]} are not classes of {palette.name} "
            f"(0..{len(palette) - 1}, 255)"
        )
    image = Image.fromarray(labels, mode="P")
    image.putpalette(palette.to_pil_palette())
    return image


def save_label_png(path: str | os.PathLike[str], labels: LabelMap, palette: CamVidPalette) -> Path:
    """Write ``labels`` as an indexed PNG with the palette embedded (opens coloured anywhere).

    Raises:
        InvalidImageError: if ``labels`` holds ids the palette lacks (other than 255).
    """
    path = Path(path)
    image = label_image(labels, palette)
    with atomic_write(path) as handle:
        image.save(handle, format="PNG", optimize=False)
    return path


def read_label_png(path: str | os.PathLike[str]) -> tuple[LabelMap, ColorTable | None]:
    """Read an index PNG (mode ``"P"`` or ``"L"``) and the colour table embedded in it.

    Returns:
        ``(labels, colors)``: ``(H, W)`` uint8 ids, unchanged, and the embedded ``(N, 3)`` uint8
        palette (``None`` for a grayscale PNG).

    Raises:
        InvalidImageError: naming the file, if it is missing, unreadable or not an index image.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L"):
                raise InvalidImageError(
                    f"{path}: a label map must be an indexed or grayscale PNG "
                    f"(got mode {image.mode})"
                )
            labels: LabelMap = np.asarray(image, dtype=np.uint8).copy()
            flat = image.getpalette("RGB") if image.mode == "P" else None
    except FileNotFoundError:
        raise InvalidImageError(f"{path}: no such file") from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{path}: not an image Pillow can read") from None
    except (OSError, SyntaxError, EOFError) as exc:
        raise InvalidImageError(f"{path}: cannot decode label map ({exc})") from None
    colors = None if not flat else np.array(flat, dtype=np.uint8).reshape(-1, 3)
    return labels, colors


def load_label_png(path: str | os.PathLike[str]) -> LabelMap:
    """Read an index PNG (mode ``"P"`` or ``"L"``) back to ``(H, W)`` uint8 ids, unchanged."""
    return read_label_png(path)[0]
