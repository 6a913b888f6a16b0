"""``camvidseg model info`` for an OpenVINO IR folder: metadata, ports, size, classes, bf16.

No compilation and no TensorFlow; the network is read only where OpenVINO is installed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from camvidseg.backends.openvino import (
    FEATURES_XML,
    INSTALL_HINT,
    MODEL_XML,
    OpenVINOMetadata,
    import_openvino,
    openvino_folder,
    read_metadata,
    read_model,
)
from camvidseg.backends.precision import bf16_support_problem
from camvidseg.exceptions import BackendError, ModelLoadError

__all__ = ["OpenVINOModelInfo", "PortInfo", "describe_openvino"]


@attrs.frozen
class PortInfo:
    """Name, partial shape (``None`` for a free dimension) and element type of a model port."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str

    def __str__(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype}[{dims}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}


@attrs.frozen
class OpenVINOModelInfo:
    """What :func:`describe_openvino` found out about an IR folder.

    Attributes:
        folder: The IR folder.
        metadata: Its ``camvidseg_openvino.json``.
        size_bytes: Size of the folder's files.
        inputs, outputs: Ports of ``model.xml`` (empty when OpenVINO is not installed).
        features: Output ports of ``features.xml``, ``None`` when ``get_features`` was not
            converted.
        openvino: The installed OpenVINO version (``None``: not installed).
        bf16_problem: Why ``--precision bf16`` is unavailable on this CPU, ``None`` if it is.
        classes: ``(channel, class id, name)`` of every output channel in channel order
            (class id ``None`` for a dropped background channel).
    """

    folder: Path
    metadata: OpenVINOMetadata
    size_bytes: int
    inputs: tuple[PortInfo, ...] = ()
    outputs: tuple[PortInfo, ...] = ()
    features: tuple[PortInfo, ...] | None = None
    openvino: str | None = None
    bf16_problem: str | None = None
    classes: tuple[tuple[int, int | None, str], ...] = ()

    @property
    def layout(self) -> str:
        """``"label_set"`` for a fine-tuned model, else the CamVid channel layout's name."""
        if self.metadata.label_set is not None:
            return "label_set"
        return {33: "background33", 32: "void32"}.get(self.metadata.channels, "unknown")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {
            "handle": str(self.folder),
            "kind": "openvino",
            "location": str(self.folder),
            "size_bytes": self.size_bytes,
            "metadata": self.metadata.to_dict(),
            "inputs": [p.to_dict() for p in self.inputs],
            "outputs": [p.to_dict() for p in self.outputs],
            "features": None if self.features is None else [p.to_dict() for p in self.features],
            "channels": self.metadata.channels,
            "layout": self.layout,
            "classes": [{"channel": c, "class_id": i, "name": n} for c, i, n in self.classes],
            "openvino": self.openvino,
            "bf16_available": self.bf16_problem is None,
            "bf16_problem": self.bf16_problem,
        }

    def format(self) -> str:
        """A human-readable, multi-line description."""
        meta = self.metadata
        lines = [
            f"model      {self.folder} (OpenVINO IR, {self.size_bytes / 2**20:.1f} MiB)",
            f"converted  from {meta.source} by camvidseg {meta.camvidseg}, OpenVINO "
            f"{meta.openvino}",
        ]
        if self.openvino is None:
            lines.append(f"runtime    OpenVINO is not installed here ({INSTALL_HINT})")
        else:
            lines.append(f"runtime    OpenVINO {self.openvino}; runs without TensorFlow")
        for index, port in enumerate(self.inputs):
            lines.append(f"{'inputs' if index == 0 else '':<10} {port}")
        for index, port in enumerate(self.outputs):
            lines.append(f"{'outputs' if index == 0 else '':<10} {port}")
        if self.features is None:
            lines.append("features   get_features not converted (only fine-tuning needs it)")
        else:
            lines.append(f"features   {', '.join(map(str, self.features))}")
        bf16 = "available" if self.bf16_problem is None else f"unavailable: {self.bf16_problem}"
        lines.append("precision  fp32 (default); bf16 " + bf16)
        if meta.label_set is not None:
            name = meta.label_set.get("name", "?")
            lines.append(f"layout     label set {name!r}: {meta.channels} channels, one per class")
        else:
            lines.append(f"layout     {self.layout} ({meta.channels} channels)")
        if self.classes:
            lines.append("classes    channel  id  name")
            for channel, class_id, name in self.classes:
                shown = "-" if class_id is None else str(class_id)
                lines.append(f"           {channel:>7}  {shown:>2}  {name}")
        return "\n".join(lines)


def _ports(ports: Sequence[Any]) -> tuple[PortInfo, ...]:
    infos = []
    for port in ports:
        shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
        names = sorted(port.get_names())
        infos.append(
            PortInfo(names[0] if names else "", shape, port.get_element_type().get_type_name())
        )
    return tuple(infos)


def _class_rows(metadata: OpenVINOMetadata) -> tuple[tuple[int, int | None, str], ...]:
    if metadata.label_set is not None:
        classes = metadata.label_set.get("classes") or []
        return tuple(
            (channel, int(c.get("id", channel)), str(c.get("name", "?")))
            for channel, c in enumerate(classes)
            if isinstance(c, dict)
        )
    from camvidseg.palette import CamVidPalette
    from camvidseg.postprocess import ChannelLayout

    try:
        layout = ChannelLayout.detect(metadata.channels)
    except BackendError:
        return ()
    names = CamVidPalette.camvid32().names
    rows: list[tuple[int, int | None, str]] = []
    if layout.drop_first:
        rows.append((0, None, "background (dropped)"))
    first = int(layout.drop_first)
    rows += [(first + offset, int(i), names[int(i)]) for offset, i in enumerate(layout.channel_ids)]
    return tuple(rows)


def describe_openvino(folder: str | os.PathLike[str]) -> OpenVINOModelInfo:
    """Describe an IR folder: metadata, ports, size, classes, and whether bf16 runs here.

    Reads the network only if OpenVINO is installed (no compilation, no TensorFlow).

    Raises:
        ModelLoadError: if ``folder`` is not an IR folder or its metadata is unreadable.
    """
    path = openvino_folder(folder)
    if path is None:
        raise ModelLoadError(f"{folder}: not an OpenVINO IR folder (no {MODEL_XML})")
    metadata = read_metadata(path)
    size = sum(p.stat().st_size for p in path.iterdir() if p.is_file())
    info = OpenVINOModelInfo(
        path,
        metadata,
        size,
        bf16_problem=bf16_support_problem(),
        classes=_class_rows(metadata),
    )
    try:
        ov = import_openvino()
    except ModelLoadError:
        return info
    core = ov.Core()
    model = read_model(path / MODEL_XML, core)
    features = None
    if (path / FEATURES_XML).is_file():
        features = _ports(read_model(path / FEATURES_XML, core).outputs)
    return attrs.evolve(
        info,
        inputs=_ports(model.inputs),
        outputs=_ports(model.outputs),
        features=features,
        openvino=str(ov.__version__),
    )
