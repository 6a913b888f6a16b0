"""A stand-in for a remote Beam file system (``gs://``, ``s3://``) in tests: paths
``camvidtest://a/b`` are files under :attr:`RemoteFileSystemForTests.root`.

Defining the class registers it with Beam's ``FileSystems`` in this process (the DirectRunner
runs here), so camvidseg's code takes its remote paths exactly as it would take a bucket's: no
local path ever reaches Pillow or TensorFlow without a copy.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from apache_beam.io.filesystem import FileMetadata, MatchResult
from apache_beam.io.localfilesystem import LocalFileSystem

SCHEME = "camvidtest"
PREFIX = f"{SCHEME}://"


class RemoteFileSystemForTests(LocalFileSystem):
    """Object-store-like paths over a local folder."""

    root: ClassVar[Path] = Path("/nonexistent")

    def __init__(self, pipeline_options: Any = None) -> None:
        LocalFileSystem.__init__(self, pipeline_options)
        # The local file system does the work on translated paths; its own methods call each
        # other with local paths, so this one only translates at the edges.
        self._inner = LocalFileSystem(pipeline_options)

    @classmethod
    def scheme(cls) -> str:
        return SCHEME

    def _local(self, path: str) -> str:
        if not path.startswith(PREFIX):
            raise ValueError(f"not a {SCHEME} path: {path}")
        return os.path.join(self.root, path[len(PREFIX) :])  # noqa: PTH118

    def _remote(self, path: str) -> str:
        return PREFIX + Path(path).relative_to(self.root).as_posix()

    def join(self, basepath: str, *paths: str) -> str:
        return "/".join([basepath.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path: str) -> tuple[str, str]:
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self) -> bool:
        return False

    def mkdirs(self, path: str) -> None:
        self._inner.mkdirs(self._local(path))

    def match(self, patterns: Sequence[str], limits: Sequence[int] | None = None) -> list[Any]:
        results = self._inner.match([self._local(p) for p in patterns], limits)
        return [
            MatchResult(
                pattern,
                [
                    FileMetadata(self._remote(m.path), m.size_in_bytes, m.last_updated_in_seconds)
                    for m in result.metadata_list
                ],
            )
            for pattern, result in zip(patterns, results, strict=True)
        ]

    def create(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.create(self._local(path), *args, **kwargs)

    def open(self, path: str, *args: Any, **kwargs: Any) -> Any:
        return self._inner.open(self._local(path), *args, **kwargs)

    def copy(self, sources: Sequence[str], destinations: Sequence[str]) -> None:
        self._inner.copy([self._local(p) for p in sources], [self._local(p) for p in destinations])

    def rename(self, sources: Sequence[str], destinations: Sequence[str]) -> None:
        self._inner.rename(
            [self._local(p) for p in sources], [self._local(p) for p in destinations]
        )

    def exists(self, path: str) -> bool:
        return bool(self._inner.exists(self._local(path)))

    def size(self, path: str) -> int:
        return int(self._inner.size(self._local(path)))

    def last_updated(self, path: str) -> float:
        return float(self._inner.last_updated(self._local(path)))

    def checksum(self, path: str) -> Any:
        return self._inner.checksum(self._local(path))

    def metadata(self, path: str) -> Any:
        found = self._inner.metadata(self._local(path))
        return FileMetadata(path, found.size_in_bytes, found.last_updated_in_seconds)

    def delete(self, paths: Sequence[str]) -> None:
        self._inner.delete([self._local(p) for p in paths])
