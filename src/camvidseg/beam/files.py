"""Paths and files through Beam's ``FileSystems`` (local, ``gs://``, ``s3://``, ... alike).

No transform here: the naming rules of ``camvidseg beam`` (an input's output name mirrors its
path relative to the glob's fixed part) and the few file operations the transforms share
(atomic writes by temporary name and rename, a local copy of a remote file for Pillow).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from camvidseg.exceptions import ConfigError
from camvidseg.imageio import IMAGE_SUFFIXES, TEMP_PREFIX
from camvidseg.pipeline import output_name

__all__ = [
    "WILDCARDS",
    "glob_base",
    "is_image_name",
    "is_local",
    "join",
    "local_copy",
    "mirrored_name",
    "read_bytes",
    "relative_path",
    "with_uri",
    "write_atomically",
    "write_bytes_atomically",
]

#: Characters that start a wildcard in a Beam file pattern.
WILDCARDS = "*?[{"
#: Bytes copied at once between file systems.
_CHUNK = 1 << 20


def glob_base(pattern: str) -> str:
    """The fixed part of a file pattern: everything up to the last ``/`` before the first
    wildcard (``""`` for a bare file name in the current folder).

    Output names mirror each match's path relative to it, as ``camvidseg segment`` mirrors an
    input folder.

    Example:
        >>> glob_base("data/in/**/*.jpg"), glob_base("gs://bucket/frames/cam*/*.png")
        ('data/in/', 'gs://bucket/frames/')
        >>> glob_base("/photos/street.jpg"), glob_base("street.jpg")
        ('/photos/', '')
    """
    cut = min((i for i in (pattern.find(c) for c in WILDCARDS) if i >= 0), default=len(pattern))
    return pattern[: pattern.rfind("/", 0, cut) + 1]


def relative_path(uri: str, base: str) -> PurePosixPath:
    """``uri`` relative to ``base`` (a :func:`glob_base`).

    Raises:
        ConfigError: when ``uri`` is not under ``base``.

    Example:
        >>> relative_path("gs://b/in/a/x.png", "gs://b/in/")
        PurePosixPath('a/x.png')
    """
    if not uri.startswith(base) or len(uri) == len(base):
        raise ConfigError(f"{uri} is not under {base!r}")
    return PurePosixPath(uri[len(base) :])


def mirrored_name(uri: str, base: str) -> PurePosixPath:
    """The output name of ``uri``: its path relative to ``base`` without the suffix.

    Raises:
        ConfigError: when ``uri`` is not under ``base`` or its relative path has an unsafe part
            (``..``, a backslash, ...), which could lead out of the output folder.

    Example:
        >>> mirrored_name("in/a/x.png", "in/")
        PurePosixPath('a/x')
    """
    return output_name(relative_path(uri, base))


def is_image_name(relative: PurePosixPath) -> bool:
    """Whether a matched file is taken as an input: an image suffix, and no hidden part (names
    starting with ``.``, which include the temporary files of unfinished writes).

    Example:
        >>> [is_image_name(PurePosixPath(p)) for p in ("a/x.PNG", "a/notes.txt", ".cache/x.png")]
        [True, False, False]
    """
    if any(part.startswith(".") for part in relative.parts):
        return False
    return relative.suffix.lower() in IMAGE_SUFFIXES


def is_local(path: str) -> bool:
    """Whether ``path`` is on the local file system (no scheme)."""
    return FileSystems.get_scheme(path) is None


def join(base: str, *parts: str) -> str:
    """``base`` joined with ``parts`` by its own file system's rules."""
    if is_local(base):
        return os.path.join(base, *parts)  # noqa: PTH118 (strings in, string out)
    return str(FileSystems.join(base, *parts))


def _temporary_name(path: str) -> str:
    """A short hidden temporary name beside ``path`` (``.cvs-xxxxxxxx.tmp``), as the library's
    own atomic writes use: ``camvidseg segment`` clears ones a killed run left, and any name the
    file system accepts still fits."""
    folder = path.rsplit("/", 1)[0] if "/" in path else ""
    temporary = f"{TEMP_PREFIX}{secrets.token_hex(4)}.tmp"
    return f"{folder}/{temporary}" if folder else temporary


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` under a temporary name, then rename it into place."""

    def copy(temporary: str) -> None:
        with FileSystems.create(temporary, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(data)

    _rename_into_place(path, copy)


def write_atomically(path: str, encode: Callable[[Path], object], scratch: Path) -> None:
    """Encode a file locally with ``encode(local_path)`` (the library's own writers), then copy
    it to ``path`` under a temporary name and rename it into place through ``FileSystems``.

    A reader never sees a half-written file under the final name, on any file system: locally
    the rename is atomic; object stores publish an object whole.

    Args:
        path: The destination.
        encode: Writes the file at the local path it is given (whose suffix is ``path``'s).
        scratch: A local folder for the encoded file (removed again).
    """
    local = scratch / f"{secrets.token_hex(8)}{PurePosixPath(path).suffix}"
    encode(local)
    try:

        def copy(temporary: str) -> None:
            with (
                open(local, "rb") as source,
                FileSystems.create(
                    temporary, compression_type=CompressionTypes.UNCOMPRESSED
                ) as out,
            ):
                shutil.copyfileobj(source, out, _CHUNK)

        _rename_into_place(path, copy)
    finally:
        with contextlib.suppress(FileNotFoundError):
            local.unlink()


def _rename_into_place(path: str, write: Callable[[str], None]) -> None:
    temporary = _temporary_name(path)
    try:
        write(temporary)
        FileSystems.rename([temporary], [path])
    except BaseException:
        with contextlib.suppress(Exception):
            FileSystems.delete([temporary])
        raise


def read_bytes(path: str) -> bytes:
    """The whole file, read through ``FileSystems`` (no decompression by suffix)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        data: bytes = handle.read()
    return data


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """A local path holding ``uri``'s bytes: the file itself when it is local, else a temporary
    copy with the same name (removed afterwards), for readers that want a path."""
    if is_local(uri):
        yield Path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="camvidseg-beam-") as folder:
        name = PurePosixPath(uri).name or "file"
        local = Path(folder) / name
        with (
            FileSystems.open(uri, compression_type=CompressionTypes.UNCOMPRESSED) as source,
            open(local, "wb") as out,
        ):
            shutil.copyfileobj(source, out, _CHUNK)
        yield local


def with_uri(message: str, local: Path, uri: str) -> str:
    """``message`` with a temporary local copy's path replaced by the ``uri`` it stands for.

    Example:
        >>> with_uri("/tmp/x/a.png: empty file", Path("/tmp/x/a.png"), "gs://b/a.png")
        'gs://b/a.png: empty file'
    """
    return message.replace(str(local), uri)
