"""Label sets (the classes a model or a fine-tuned head predicts) and the model metadata file.

A :class:`LabelSet` is a small value: a name, class names and colours in id order, and the ids
that are never trained nor scored (Void). It comes from CamVid-32, CamVid-11, or a class-list
file written by a user for their own classes:

- JSON: ``[{"name": "road", "color": [128, 64, 128]}, {"name": "void", "color": [0, 0, 0],
  "ignore": true}, ...]``
- CSV: one ``name,r,g,b`` line per class (an optional fifth column ``ignore`` marks an ignored
  class; a header line ``name,r,g,b`` and ``#`` comments are allowed).

A class named ``Void`` is ignored unless the file says ``"ignore": false`` for it.

A model exported by ``camvidseg finetune --export`` carries its label set in
``assets/camvidseg.json`` (:data:`METADATA_PATH`); :func:`read_model_metadata` and
:func:`write_model_metadata` read and write it. Such a model returns exactly
:attr:`LabelSet.channels` channels: one per class that is not ignored, in id order, with no
background channel (:meth:`LabelSet.channel_layout`).

Numpy and attrs only.

Example:
    >>> labels = LabelSet.camvid11()
    >>> labels.channels, labels.ignore_ids, labels.trained_ids[-1]
    (11, (11,), 10)
    >>> labels.to_palette().name
    'camvid11'
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED, ColorTable
from camvidseg.exceptions import ConfigError, ModelLoadError
from camvidseg.imageio import atomic_write
from camvidseg.palette import CamVidPalette
from camvidseg.postprocess import ChannelLayout

__all__ = [
    "METADATA_FORMAT",
    "METADATA_PATH",
    "METADATA_VERSION",
    "LabelSet",
    "ModelMetadata",
    "model_label_set",
    "output_palette",
    "read_model_metadata",
    "write_model_metadata",
]

#: Where a fine-tuned SavedModel keeps its metadata, relative to the model folder.
METADATA_PATH = "assets/camvidseg.json"
#: ``"format"`` value of the metadata file.
METADATA_FORMAT = "camvidseg-model"
#: Version of the metadata file this library writes (and the newest it reads).
METADATA_VERSION = 1

_VOID_NAME = "void"
_TRUE = frozenset({"1", "true", "yes", "ignore", "ignored", "y"})
_FALSE = frozenset({"", "0", "false", "no", "n"})


def _names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _colors(values: object) -> ColorTable:
    array = np.array(values, dtype=np.int64, copy=True)
    if array.ndim != 2 or array.shape[1:] != (3,):
        raise ConfigError(f"colours must be an (N, 3) table (got shape {array.shape})")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ConfigError("colour components must be integers in 0..255")
    table = array.astype(np.uint8)
    table.setflags(write=False)
    return table


def _ids(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted({int(v) for v in values}))


@attrs.frozen(eq=False)
class LabelSet:
    """Classes in id order, with a name and an RGB colour each, and the ids that are ignored.

    Ignored ids (Void) are never trained and never scored: ground-truth pixels holding them
    count nowhere, like 255 (unlabelled), and no output channel stands for them.

    Attributes:
        name: Short name, e.g. ``"camvid32"`` or the class-list file's stem.
        names: Class names in id order (unique, case-insensitively).
        colors: ``(N, 3)`` uint8 colours in id order (read-only; distinct).
        ignore_ids: Sorted ids that are ignored.

    Example:
        >>> ls = LabelSet.from_classes("mine", [("road", (1, 1, 1)), ("car", (2, 2, 2))])
        >>> ls.channels, ls.channel_layout().channel_ids.tolist()
        (2, [0, 1])
    """

    name: str
    names: tuple[str, ...] = attrs.field(converter=_names)
    colors: ColorTable = attrs.field(converter=_colors)
    ignore_ids: tuple[int, ...] = attrs.field(default=(), converter=_ids)
    _palette: CamVidPalette | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        n = len(self.names)
        if not self.name:
            raise ConfigError("a label set needs a name")
        if n != len(self.colors):
            raise ConfigError(f"label set {self.name!r}: {n} names but {len(self.colors)} colours")
        if not 1 <= n < UNLABELLED:
            raise ConfigError(f"label set {self.name!r}: 1..{UNLABELLED - 1} classes (got {n})")
        seen: dict[str, int] = {}
        for i, class_name in enumerate(self.names):
            if not class_name.strip():
                raise ConfigError(f"label set {self.name!r}: class {i} has an empty name")
            other = seen.setdefault(class_name.lower(), i)
            if other != i:
                raise ConfigError(
                    f"label set {self.name!r}: classes {other} and {i} are both named "
                    f"{class_name!r}"
                )
        bad = [i for i in self.ignore_ids if not 0 <= i < n]
        if bad:
            raise ConfigError(f"label set {self.name!r}: ignore ids {bad} are not class ids")
        if len(self.trained_ids) < 2:
            raise ConfigError(
                f"label set {self.name!r} needs at least 2 classes that are not ignored "
                f"(got {len(self.trained_ids)})"
            )
        keys = [tuple(c) for c in self.colors.tolist()]
        if len(set(keys)) != len(keys):
            first = {key: i for i, key in reversed(list(enumerate(keys)))}
            i, j = next((first[k], j) for j, k in enumerate(keys) if first[k] != j)
            raise ConfigError(
                f"label set {self.name!r}: classes {self.names[i]!r} and {self.names[j]!r} "
                f"share the colour {keys[j]}; RGB label images could not tell them apart"
            )

    # -- constructors ---------------------------------------------------------------------------

    @classmethod
    def from_classes(
        cls,
        name: str,
        classes: Iterable[tuple[str, tuple[int, int, int]]],
        ignore: Iterable[str] = (),
    ) -> LabelSet:
        """From ``(name, (r, g, b))`` pairs in id order; ``ignore`` names the ignored classes."""
        pairs = list(classes)
        names = [n for n, _ in pairs]
        lower = [n.lower() for n in names]
        ignore_ids = []
        for ignored in ignore:
            if ignored.lower() not in lower:
                raise ConfigError(f"label set {name!r}: no class named {ignored!r} to ignore")
            ignore_ids.append(lower.index(ignored.lower()))
        return cls(name, names, [c for _, c in pairs] or np.zeros((0, 3)), ignore_ids)

    @classmethod
    def from_palette(cls, palette: CamVidPalette) -> LabelSet:
        """The label set of a palette (its Void class ignored).

        Example:
            >>> LabelSet.from_palette(CamVidPalette.camvid32()).ignore_ids
            (30,)
        """
        ignore = () if palette.void_id is None else (palette.void_id,)
        return cls(palette.name, palette.names, palette.colors, ignore)

    @classmethod
    def camvid32(cls) -> LabelSet:
        """CamVid-32: 31 trained classes, Void (id 30) ignored."""
        return _CAMVID32

    @classmethod
    def camvid11(cls) -> LabelSet:
        """CamVid-11 (SegNet): 11 trained classes, Void (id 11) ignored."""
        return _CAMVID11

    @classmethod
    def by_classes(cls, classes: int | str) -> LabelSet:
        """``32``/``"camvid32"`` or ``11``/``"camvid11"``."""
        palette = CamVidPalette.by_name(str(classes))
        return _CAMVID32 if palette.name == "camvid32" else _CAMVID11

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> LabelSet:
        """Read a class-list file: JSON ``[{"name", "color"[, "ignore"]}, ...]`` or CSV
        ``name,r,g,b[,ignore]`` (chosen by the ``.json``/``.csv`` suffix, else by content).

        Raises:
            ConfigError: naming the file (and the entry or line) for anything malformed.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise ConfigError(f"class list {path}: no such file") from None
        except IsADirectoryError:
            raise ConfigError(f"class list {path}: is a folder, not a file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"class list {path}: cannot read it ({exc})") from None
        is_json = path.suffix.lower() == ".json" or (
            path.suffix.lower() != ".csv" and text.lstrip().startswith("[")
        )
        entries = _parse_json(text, path) if is_json else _parse_csv(text, path)
        if not entries:
            raise ConfigError(f"class list {path}: holds no classes")
        names = [name for name, _, _ in entries]
        explicit = any(flag is not None for _, _, flag in entries)
        ignore_ids = [
            i
            for i, (name, _, flag) in enumerate(entries)
            if flag or (flag is None and name.lower() == _VOID_NAME and not explicit)
        ]
        try:
            return cls(path.stem, names, [color for _, color, _ in entries], ignore_ids)
        except ConfigError as exc:
            raise ConfigError(f"class list {path}: {exc}") from None

    # -- serialisation --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "classes": [{"id", "name", "color"}], "ignore_ids"}`` (JSON-ready).

        Example:
            >>> LabelSet.from_dict(LabelSet.camvid11().to_dict()) == LabelSet.camvid11()
            True
        """
        return {
            "name": self.name,
            "classes": [
                {"id": i, "name": n, "color": [int(v) for v in c]}
                for i, (n, c) in enumerate(zip(self.names, self.colors.tolist(), strict=True))
            ],
            "ignore_ids": list(self.ignore_ids),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSet:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: for a missing key, ids that are not ``0..N-1`` in order, or bad values.
        """
        try:
            classes = list(data["classes"])
            ids = [int(c["id"]) for c in classes]
            if ids != list(range(len(classes))):
                raise ConfigError(f"class ids must be 0..{len(classes) - 1} in order (got {ids})")
            label_set = cls(
                str(data["name"]),
                [str(c["name"]) for c in classes],
                [list(c["color"]) for c in classes],
                [int(i) for i in data.get("ignore_ids", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"not a label set ({type(exc).__name__}: {exc})") from None
        for builtin in (_CAMVID32, _CAMVID11):
            if label_set == builtin:
                return builtin
        return label_set

    # -- derived values -------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSet):
            return NotImplemented
        return (
            self.name == other.name
            and self.names == other.names
            and np.array_equal(self.colors, other.colors)
            and self.ignore_ids == other.ignore_ids
        )

    def __hash__(self) -> int:
        return hash((self.name, self.names, self.colors.tobytes(), self.ignore_ids))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        """Number of classes, ignored ones included."""
        return len(self.names)

    @property
    def trained_ids(self) -> tuple[int, ...]:
        """Ids that are trained and scored (not ignored), in id order."""
        ignored = set(self.ignore_ids)
        return tuple(i for i in range(len(self.names)) if i not in ignored)

    @property
    def channels(self) -> int:
        """Output channels of a model for this label set: one per trained class."""
        return len(self.trained_ids)

    @property
    def is_camvid(self) -> bool:
        """Whether this is the built-in CamVid-32 or CamVid-11 label set."""
        return self in (_CAMVID32, _CAMVID11)

    def channel_layout(self) -> ChannelLayout:
        """The ``"exact"`` layout of a model with this label set (channel ``j`` is the ``j``-th
        trained id; no background channel)."""
        return ChannelLayout.exact(self.trained_ids, num_classes=len(self.names))

    def channel_of_id(self) -> NDArray[np.uint8]:
        """``(256,)`` uint8 table from a label id to its output channel; 255 for ignored ids,
        255 itself and ids outside the set.

        Example:
            >>> LabelSet.camvid32().channel_of_id()[[29, 30, 31, 255]].tolist()
            [29, 255, 30, 255]
        """
        table = np.full(256, UNLABELLED, dtype=np.uint8)
        trained = np.asarray(self.trained_ids, dtype=np.intp)
        table[trained] = np.arange(len(trained), dtype=np.uint8)
        return table

    def to_palette(self) -> CamVidPalette:
        """A :class:`~camvidseg.palette.CamVidPalette` of these classes (the built-in one for
        CamVid-32/-11), usable by the Segmenter, ``save_label_png`` and the visualisations. Its
        ``void_id`` is the first ignored id."""
        if self._palette is not None:
            return self._palette
        palette = None
        for builtin in (CamVidPalette.camvid32(), CamVidPalette.camvid11()):
            same_classes = self.name == builtin.name and self.names == builtin.names
            if same_classes and np.array_equal(self.colors, builtin.colors):
                palette = builtin
        if palette is None:
            void = self.ignore_ids[0] if self.ignore_ids else None
            palette = CamVidPalette(self.name, self.names, self.colors, void_id=void)
        object.__setattr__(self, "_palette", palette)  # built once: it caches colour tables
        return palette

    def describe(self) -> str:
        """``"camvid11 (11 classes + ignored Void)"``-style summary for messages."""
        ignored = ", ".join(self.names[i] for i in self.ignore_ids)
        suffix = f" + ignored {ignored}" if ignored else ""
        return f"{self.name} ({self.channels} classes{suffix})"


_CAMVID32 = LabelSet.from_palette(CamVidPalette.camvid32())
_CAMVID11 = LabelSet.from_palette(CamVidPalette.camvid11())


def _ignore_flag(value: object, where: str) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ConfigError(f"{where}: ignore must be true or false (got {value!r})")


def _color(value: object, where: str) -> tuple[int, int, int]:
    items = list(value) if isinstance(value, (list, tuple)) else None
    if items is None or len(items) != 3:
        raise ConfigError(f"{where}: color must be [r, g, b] (got {value!r})")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ConfigError(f"{where}: color must be three integers 0..255 (got {value!r})")
        try:
            number = int(item)
        except ValueError:
            raise ConfigError(
                f"{where}: color must be three integers 0..255 (got {value!r})"
            ) from None
        if not 0 <= number <= 255:
            raise ConfigError(f"{where}: colour component {number} is not in 0..255")
        out.append(number)
    return (out[0], out[1], out[2])


_Entry = tuple[str, tuple[int, int, int], "bool | None"]


def _parse_json(text: str, path: Path) -> list[_Entry]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"class list {path}: not valid JSON ({exc.msg} at line {exc.lineno}, column "
            f"{exc.colno})"
        ) from None
    if isinstance(data, Mapping) and "classes" in data:
        data = data["classes"]  # a label set written by LabelSet.to_dict works too
    if not isinstance(data, list):
        raise ConfigError(
            f'class list {path}: expected a JSON list of {{"name": ..., "color": [r, g, b]}} '
            f"objects (got {type(data).__name__})"
        )
    entries: list[_Entry] = []
    for i, item in enumerate(data):
        where = f"class list {path}: entry {i}"
        if not isinstance(item, Mapping):
            raise ConfigError(
                f'{where}: expected {{"name": ..., "color": [r, g, b]}} (got {item!r})'
            )
        unknown = sorted(set(item) - {"name", "color", "ignore", "id"})
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {unknown}; expected name, color, ignore")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: name must be a non-empty string (got {name!r})")
        if "id" in item and item["id"] != i:
            raise ConfigError(f"{where}: id {item['id']!r} is not its position {i}")
        if "color" not in item:
            raise ConfigError(f"{where} ({name!r}): no color")
        entries.append(
            (
                name.strip(),
                _color(item["color"], f"{where} ({name!r})"),
                _ignore_flag(item.get("ignore"), where),
            )
        )
    return entries


def _parse_csv(text: str, path: Path) -> list[_Entry]:
    entries: list[_Entry] = []
    reader = csv.reader(io.StringIO(text))
    for line_number, row in enumerate(reader, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells) or cells[0].startswith("#"):
            continue
        where = f"class list {path}, line {line_number}"
        if not entries and cells[0].lower() == "name" and cells[1:4] == ["r", "g", "b"]:
            continue  # header
        if len(cells) not in (4, 5):
            raise ConfigError(f"{where}: expected name,r,g,b[,ignore] (got {len(cells)} fields)")
        if not cells[0]:
            raise ConfigError(f"{where}: empty class name")
        flag = _ignore_flag(cells[4], where) if len(cells) == 5 else None
        entries.append((cells[0], _color(cells[1:4], where), flag))
    return entries


def output_palette(label_set: LabelSet, classes: int | None = None) -> CamVidPalette:
    """The palette of a model's (or head's) outputs, with an optional ``--classes`` request.

    ``None`` keeps the label set's own classes. An explicit request must match them, or group
    them: CamVid-32 outputs can be grouped to CamVid-11 (``classes=11``).

    Raises:
        ConfigError: when ``classes`` neither matches nor groups the label set.

    Example:
        >>> output_palette(LabelSet.camvid32(), 11).name
        'camvid11'
        >>> output_palette(LabelSet.camvid11()).name
        'camvid11'
    """
    if classes is None:
        return label_set.to_palette()
    wanted = CamVidPalette.by_name(str(classes))
    if label_set == LabelSet.by_classes(wanted.name):
        return wanted
    if wanted.name == "camvid11" and label_set == _CAMVID32:
        return wanted
    raise ConfigError(
        f"classes {classes} does not fit the model's label set {label_set.describe()}: "
        "leave --classes out to use the model's own classes"
        + (" (CamVid-32 can be grouped to 11)" if label_set.is_camvid else "")
    )


@attrs.frozen
class ModelMetadata:
    """What ``assets/camvidseg.json`` says about a fine-tuned model.

    Attributes:
        label_set: The classes of the outputs.
        base_model: Handle of the backbone the head was trained on.
        backbone_fingerprint: Fingerprint of that backbone.
        channels: Output channels (``label_set.channels``).
    """

    label_set: LabelSet
    base_model: str
    backbone_fingerprint: str
    channels: int

    def __attrs_post_init__(self) -> None:
        if self.channels != self.label_set.channels:
            raise ConfigError(
                f"channels {self.channels} does not match label set {self.label_set.describe()}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of the metadata file."""
        return {
            "format": METADATA_FORMAT,
            "version": METADATA_VERSION,
            "label_set": self.label_set.to_dict(),
            "base_model": self.base_model,
            "backbone_fingerprint": self.backbone_fingerprint,
            "channels": self.channels,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelMetadata:
        """Inverse of :meth:`to_dict`.

        Raises:
            ConfigError: for another format, a newer version, or a malformed object.
        """
        if not isinstance(data, Mapping) or data.get("format") != METADATA_FORMAT:
            raise ConfigError(
                f'not a camvidseg model metadata object ("format": {METADATA_FORMAT!r})'
            )
        version = data.get("version")
        if not isinstance(version, int) or not 1 <= version <= METADATA_VERSION:
            raise ConfigError(
                f"metadata version {version!r} is not one this camvidseg reads "
                f"(1..{METADATA_VERSION}); upgrade camvidseg"
            )
        try:
            return cls(
                LabelSet.from_dict(data["label_set"]),
                str(data["base_model"]),
                str(data["backbone_fingerprint"]),
                int(data["channels"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"malformed metadata ({type(exc).__name__}: {exc})") from None


def read_model_metadata(folder: str | os.PathLike[str]) -> ModelMetadata | None:
    """The metadata of the model in ``folder``, or ``None`` when it has none (a stock model).

    Raises:
        ModelLoadError: naming the file, when it exists but cannot be read or understood.

    Example:
        >>> import tempfile
        >>> read_model_metadata(tempfile.mkdtemp()) is None
        True
    """
    path = Path(folder) / METADATA_PATH
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ModelMetadata.from_dict(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, ConfigError) as exc:
        raise ModelLoadError(f"{path}: cannot read the model metadata ({exc})") from None


def write_model_metadata(folder: str | os.PathLike[str], metadata: ModelMetadata) -> Path:
    """Write ``metadata`` to ``folder/assets/camvidseg.json`` atomically; returns the path."""
    path = Path(folder) / METADATA_PATH
    with atomic_write(path) as handle:
        handle.write((json.dumps(metadata.to_dict(), indent=2) + "\n").encode("utf-8"))
    return path


def model_label_set(backend: object) -> LabelSet | None:
    """The label set a backend declares (``backend.label_set``: a head, or an exported model
    with metadata), or ``None`` for a stock model (CamVid-32 by its channel count)."""
    label_set = getattr(backend, "label_set", None)
    return label_set if isinstance(label_set, LabelSet) else None
