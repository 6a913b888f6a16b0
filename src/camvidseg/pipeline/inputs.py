"""Finding the inputs of a run: :func:`discover_inputs` walks files and folders into an
:class:`InputPlan` and checks that the output folder is a safe place for their results."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePosixPath

import attrs

from camvidseg.exceptions import ConfigError
from camvidseg.imageio import IMAGE_SUFFIXES
from camvidseg.pipeline.manifest import ManifestEntry

__all__ = ["InputFile", "InputPlan", "discover_inputs", "output_name"]

log = logging.getLogger("camvidseg")


def _fspath(value: str | os.PathLike[str]) -> str:
    return os.fspath(value)


@attrs.frozen
class InputFile:
    """One image to segment.

    Attributes:
        path: The file to read (under an input folder, or named directly).
        name: Output name relative to each output folder, without extension: the path relative
            to the input folder it was found in (``a/b/frame``), or the file's stem when it was
            named directly.

    Example:
        >>> InputFile(Path("in/a/b.jpg"), PurePosixPath("a/b")).name.parts
        ('a', 'b')
    """

    # Kept as strings (a third of the memory of path objects): a run may hold millions.
    _path: str = attrs.field(alias="path", converter=_fspath)
    _name: str = attrs.field(alias="name", converter=str)

    @property
    def path(self) -> Path:
        return Path(self._path)

    @property
    def name(self) -> PurePosixPath:
        return PurePosixPath(self._name)


@attrs.frozen
class InputPlan:
    """The inputs of a run: files to segment and inputs rejected before any work.

    Attributes:
        output: The output folder.
        files: Files to segment, in order (folders sorted by name), output names unique.
        rejected: ``error`` entries for inputs that cannot be processed: a second input mapping
            to an output name already taken, unreadable folders, broken links.
    """

    output: Path
    files: tuple[InputFile, ...]
    rejected: tuple[ManifestEntry, ...] = ()


def output_name(relative: PurePosixPath) -> PurePosixPath:
    """The output name of an input path relative to its folder: the path without its suffix.

    Raises:
        ConfigError: if a part of the path could lead elsewhere (empty, ``.``, ``..``, NUL or a
            backslash).

    Example:
        >>> output_name(PurePosixPath("a/b/frame.jpg")), output_name(PurePosixPath("...png"))
        (PurePosixPath('a/b/frame'), PurePosixPath('...png'))
    """
    parts = relative.parts
    if not parts or relative.is_absolute():
        raise ConfigError(f"input path {str(relative)!r} has no usable relative name")
    for part in parts:
        if part in ("", ".", "..") or "\x00" in part or "\\" in part:
            raise ConfigError(f"input path {str(relative)!r} has an unsafe part {part!r}")
    suffix = relative.suffix
    stem = relative.name[: -len(suffix)] if suffix else relative.name
    if stem in (".", ".."):  # "..png": keep the whole name rather than a path-like stem
        stem = relative.name
    return relative.parent / stem


def is_inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _reached_by_walk(target: Path, root: Path) -> bool:
    """Whether walking ``root`` (hidden folders skipped) would enter ``target`` inside it."""
    if not is_inside(target, root):
        return False
    return not any(part.startswith(".") for part in target.relative_to(root).parts)


def _selected(relative: PurePosixPath, globs: Sequence[str]) -> bool:
    if globs:
        return any(relative.match(pattern) for pattern in globs)
    return relative.suffix.lower() in IMAGE_SUFFIXES


def _rejected(path: Path | str, name: PurePosixPath | str, reason: str) -> ManifestEntry:
    return ManifestEntry(input=str(path), name=str(name), status="error", error=reason)


class _Walker:
    """Depth-first, name-sorted walk of an input folder that refuses to reach ``OUT``."""

    def __init__(self, out_real: Path, globs: Sequence[str]) -> None:
        self.out_real = out_real
        self.globs = globs
        self.rejected: list[ManifestEntry] = []
        self._seen_dirs: set[tuple[int, int]] = set()

    def walk(self, root: Path) -> Iterator[tuple[Path, PurePosixPath]]:
        st = root.stat()
        self._seen_dirs.add((st.st_dev, st.st_ino))
        yield from self._walk(root, PurePosixPath())

    def _refuse_if_reaches_out(self, folder: Path, shown: Path) -> None:
        real = folder.resolve()
        if is_inside(real, self.out_real) or _reached_by_walk(self.out_real, real):
            raise ConfigError(
                f"input folder {shown} leads into the output folder {self.out_real} (through "
                "a symbolic link), so outputs would be read back as inputs; choose an output "
                "folder outside the inputs"
            )

    def _walk(self, folder: Path, relative: PurePosixPath) -> Iterator[tuple[Path, PurePosixPath]]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            self.rejected.append(
                _rejected(folder, relative, f"{folder}: cannot list folder ({reason})")
            )
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden files and folders, our own temporary files included
            path = folder / entry.name
            rel = relative / entry.name
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError as exc:
                self.rejected.append(_rejected(path, rel, f"{path}: {exc.strerror}"))
                continue
            if is_dir:
                if entry.is_symlink():
                    self._refuse_if_reaches_out(path, path)
                st = path.stat()
                key = (st.st_dev, st.st_ino)
                if key in self._seen_dirs:
                    log.debug("%s: folder already visited (symbolic link loop), skipped", path)
                    continue
                self._seen_dirs.add(key)
                yield from self._walk(path, rel)
            elif _selected(rel, self.globs):
                if is_file:
                    yield path, rel
                elif entry.is_symlink() and not path.exists():
                    self.rejected.append(_rejected(path, rel, f"{path}: broken symbolic link"))
                else:
                    self.rejected.append(_rejected(path, rel, f"{path}: not a regular file"))


def discover_inputs(
    inputs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    globs: Sequence[str] = (),
) -> InputPlan:
    """Find the images to segment and check that ``output`` is a safe place for their results.

    Folders are walked recursively in name order; hidden files and folders (names starting with
    ``.``) are skipped, symbolic links are followed (loops are walked once). Without ``globs``
    files with an image suffix (:data:`~camvidseg.imageio.IMAGE_SUFFIXES`) are taken; with
    ``globs``, files whose path relative to their folder matches one of them
    (:meth:`pathlib.PurePath.match`, e.g. ``"*.jpg"`` or ``"cam1/*.png"``). Files named directly
    are always taken.

    Args:
        inputs: Image files and folders.
        output: The output folder (need not exist yet).
        globs: Patterns selecting files inside folders.

    Returns:
        The plan: unique files in order, and ``error`` entries for inputs that cannot be used.

    Raises:
        ConfigError: when an input does not exist, or ``output`` is an input folder or inside one
            where the walk would read outputs back, or an input is inside ``output``.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "in" / "a").mkdir(parents=True)
        >>> for name in ("a/x.jpg", "b.png", "b.jpg", "notes.txt"):
        ...     _ = (folder / "in" / name).write_bytes(b"")
        >>> plan = discover_inputs([folder / "in"], folder / "out")
        >>> [str(f.name) for f in plan.files], [e.input[-5:] for e in plan.rejected]
        (['a/x', 'b'], ['b.png'])
    """
    out = Path(output)
    out_real = out.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output {out} exists and is not a folder")
    walker = _Walker(out_real, globs)
    seen: dict[str, InputFile] = {}
    sources: set[tuple[Path, PurePosixPath]] = set()
    files: list[InputFile] = []
    rejected: list[ManifestEntry] = []
    for raw in inputs:
        given = Path(raw)
        if not given.exists():
            kind = "broken symbolic link" if given.is_symlink() else "no such file or folder"
            raise ConfigError(f"input {given}: {kind}")
        real = given.resolve()
        if real == out_real:
            raise ConfigError(f"the output folder {out} is also an input; choose another one")
        if is_inside(real, out_real):
            raise ConfigError(
                f"input {given} is inside the output folder {out}; outputs could overwrite it. "
                "Choose an output folder outside the inputs"
            )
        if given.is_dir():
            if _reached_by_walk(out_real, real):
                raise ConfigError(
                    f"the output folder {out} is inside the input folder {given}, so its "
                    "outputs would be read back as inputs; choose an output folder outside the "
                    "inputs (or a hidden one, like INPUT/.camvidseg)"
                )
            found: Iterable[tuple[Path, PurePosixPath]] = walker.walk(given)
        else:
            found = [(given, PurePosixPath(given.name))]
        for path, relative in found:
            try:
                name = output_name(relative)
            except ConfigError as exc:
                rejected.append(_rejected(path, relative, f"{path}: {exc}"))
                continue
            if path.is_symlink() and is_inside(path.resolve(), out_real):
                raise ConfigError(
                    f"input {path} is a link into the output folder {out}; outputs could "
                    "overwrite it. Choose an output folder outside the inputs"
                )
            source = (path.resolve(), name)
            if source in sources:
                continue  # the same file reached twice under the same name
            sources.add(source)
            key = os.path.normcase(str(name))
            if key in seen:
                rejected.append(
                    _rejected(
                        path,
                        name,
                        f"{path}: its outputs ({name}.*) would overwrite those of "
                        f"{seen[key].path}; rename one of them or segment them into separate "
                        "output folders",
                    )
                )
                continue
            file = InputFile(path, name)
            seen[key] = file
            files.append(file)
    return InputPlan(out, tuple(files), tuple(walker.rejected + rejected))


# -- manifest ----------------------------------------------------------------------------------
