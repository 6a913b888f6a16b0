"""Resuming a run: which outputs an earlier run left that can be kept, and refusing to mix them
with outputs made with other options."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from camvidseg.exceptions import ConfigError
from camvidseg.pipeline.inputs import InputFile
from camvidseg.pipeline.manifest import MANIFEST_NAME, ManifestEntry, PreviousManifest
from camvidseg.pipeline.options import OUTPUT_KINDS, RunOptions
from camvidseg.pipeline.outputs import OutputWriter, expected_format, oriented_size, valid_output

__all__ = ["ALREADY_PRESENT", "ResumeChecker", "check_previous", "kept_fields"]

#: The note of an input whose outputs were kept.
ALREADY_PRESENT = "outputs already present"


def check_previous(
    head: Mapping[str, Any] | None,
    wanted: Mapping[str, Mapping[str, Any]],
    *,
    output: object,
    overwrite: bool,
) -> dict[str, Any]:
    """The ``output_options`` a run records: its own (``wanted``, per kind it writes, see
    :func:`~camvidseg.pipeline.manifest.kind_options`), plus the earlier run's record of kinds
    it does not write (their files stay).

    Args:
        head: The earlier manifest's fields (``None``: there is none).
        wanted: Output kind -> the options this run writes it with.
        output: The output folder, for the message.
        overwrite: Whether the run replaces every output (then nothing is refused).

    Raises:
        ConfigError: when the folder holds outputs of a kind this run writes made with other
            settings, unless ``overwrite``.

    Example:
        >>> check_previous({"output_options": {"panel": {"legend": True}}},
        ...                {"labels": {"model": "m"}}, output="out", overwrite=False)
        {'labels': {'model': 'm'}, 'panel': {'legend': True}}
    """
    recorded: dict[str, Any] = dict(wanted)
    before = None if head is None else head.get("output_options")
    if not isinstance(before, dict):
        return recorded
    # Files of kinds this run does not write stay on disk: keep their record.
    for kind, record in before.items():
        if kind in OUTPUT_KINDS and kind not in recorded:
            recorded[kind] = record
    if overwrite:
        return recorded
    changed: dict[str, str] = {}
    for kind, options in wanted.items():
        record = before.get(kind)
        if not isinstance(record, dict):
            continue
        for key, value in options.items():
            if key in record and record[key] != value:
                changed[key] = f"{key} {record[key]!r} -> {value!r}"
    if changed:
        raise ConfigError(
            f"{output} holds outputs made with other options ({', '.join(changed.values())});"
            " pass --overwrite to replace them, or choose another output folder"
        )
    return recorded


def kept_fields(
    before: Mapping[str, Any] | None,
) -> tuple[str | None, dict[str, Any] | None, tuple[str, ...]]:
    """``mode``, ``class_areas`` and ``notes`` of an input whose outputs are kept, from what
    the earlier manifest said of it (``before``; ``None``: nothing), checked.

    Example:
        >>> kept_fields({"mode": "RGB", "class_areas": [], "notes": [ALREADY_PRESENT, "x"]})
        ('RGB', None, ('x',))
    """
    if before is None:
        return None, None, ()
    mode, areas = before.get("mode"), before.get("class_areas")
    notes = tuple(str(n) for n in before.get("notes") or () if n != ALREADY_PRESENT)
    return (
        mode if isinstance(mode, str) else None,
        areas if isinstance(areas, dict) else None,
        notes,
    )


class ResumeChecker:
    """Compares the output folder with what a run would write.

    Args:
        writer: Where the run writes (its output folder and paths).
        options: The run's options.
        kind_options: The options that decide what the files of one output kind hold (see
            :func:`~camvidseg.pipeline.manifest.kind_options`).
    """

    def __init__(
        self,
        writer: OutputWriter,
        options: RunOptions,
        kind_options: Callable[[str], dict[str, Any]],
    ) -> None:
        self.writer = writer
        self.options = options
        self.kind_options = kind_options
        self.previous: PreviousManifest | None = None
        #: Output kind -> the options its files were made with (the manifest's
        #: ``output_options``); set by :meth:`check_previous_run`.
        self.output_options: dict[str, Any] = {}

    def check_previous_run(self) -> None:
        """Load the last manifest; refuse to mix its files with ones made differently."""
        out = self.writer.out
        wanted = {kind: self.kind_options(kind) for kind in self.options.outputs}
        self.previous = PreviousManifest(out / MANIFEST_NAME)
        self.output_options = check_previous(
            self.previous.head, wanted, output=out, overwrite=self.options.overwrite
        )

    def kinds_to_write(
        self, file: InputFile
    ) -> tuple[tuple[str, ...], dict[str, str], tuple[int, int] | None]:
        """Kinds that need (re)writing, the manifest paths of all kinds, and the input's size
        when it was read to check existing outputs."""
        kinds = self.options.outputs
        out_real = self.writer.out_real
        relpaths = {k: self.writer.relpath(file.name, k) for k in kinds}
        if self.options.overwrite:
            return kinds, relpaths, None
        existing = [k for k in kinds if os.path.lexists(out_real / relpaths[k])]
        if not existing:
            return kinds, relpaths, None
        size = oriented_size(file.path)
        try:
            input_mtime = file.path.stat().st_mtime_ns
        except OSError:
            return kinds, relpaths, None
        if size is None:
            return kinds, relpaths, None
        todo = []
        for kind in kinds:
            fmt, modes = expected_format(kind, self.options)
            expected = None if kind == "panel" else size
            if kind not in existing or not valid_output(
                out_real / relpaths[kind], fmt, modes, expected, input_mtime
            ):
                todo.append(kind)
        return tuple(todo), relpaths, size

    def skipped_entry(
        self,
        file: InputFile,
        relpaths: dict[str, str],
        size: tuple[int, int] | None,
        seconds: float,
    ) -> ManifestEntry:
        """The entry of an input whose outputs are all kept: what the earlier run said of it."""
        before = self.previous.entry(str(file.name)) if self.previous else None
        mode, areas, notes = kept_fields(before)
        return ManifestEntry(
            input=str(file.path),
            name=str(file.name),
            status="skipped",
            outputs=relpaths,
            size=size,
            mode=mode,
            class_areas=areas,
            timing={"check": seconds},
            notes=(ALREADY_PRESENT, *notes),
        )
