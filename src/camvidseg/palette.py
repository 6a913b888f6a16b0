"""Class indexes: CamVid-32, CamVid-11 and named, data-driven groupings between them.

Everything here is numpy only. Colours are the dataset's own, so ground-truth ``*_L.png`` files
decode with the same table that colours predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import UNLABELLED, ColorTable, ImageArray, LabelMap
from camvidseg.exceptions import InvalidLabelError, PaletteError, UnknownColorError
from camvidseg.postprocess import ColorLookup

__all__ = [
    "CAMVID11_CLASSES",
    "CAMVID32_CLASSES",
    "MERGE_32_TO_11",
    "CamVidPalette",
    "ClassGrouping",
    "available_groupings",
    "check_label_ids",
    "get_grouping",
    "register_grouping",
    "rgb_keys",
]

#: CamVid-32 classes as ``(name, (r, g, b))`` in id order (alphabetical, as ``label_colors.txt``).
CAMVID32_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Animal", (64, 128, 64)),
    ("Archway", (192, 0, 128)),
    ("Bicyclist", (0, 128, 192)),
    ("Bridge", (0, 128, 64)),
    ("Building", (128, 0, 0)),
    ("Car", (64, 0, 128)),
    ("CartLuggagePram", (64, 0, 192)),
    ("Child", (192, 128, 64)),
    ("Column_Pole", (192, 192, 128)),
    ("Fence", (64, 64, 128)),
    ("LaneMkgsDriv", (128, 0, 192)),
    ("LaneMkgsNonDriv", (192, 0, 64)),
    ("Misc_Text", (128, 128, 64)),
    ("MotorcycleScooter", (192, 0, 192)),
    ("OtherMoving", (128, 64, 64)),
    ("ParkingBlock", (64, 192, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Road", (128, 64, 128)),
    ("RoadShoulder", (128, 128, 192)),
    ("Sidewalk", (0, 0, 192)),
    ("SignSymbol", (192, 128, 128)),
    ("Sky", (128, 128, 128)),
    ("SUVPickupTruck", (64, 128, 192)),
    ("TrafficCone", (0, 0, 64)),
    ("TrafficLight", (0, 64, 64)),
    ("Train", (192, 64, 128)),
    ("Tree", (128, 128, 0)),
    ("Truck_Bus", (192, 128, 192)),
    ("Tunnel", (64, 0, 64)),
    ("VegetationMisc", (192, 192, 0)),
    ("Void", (0, 0, 0)),
    ("Wall", (64, 192, 0)),
)

#: CamVid-11 (SegNet benchmark) classes in id order; id 11 is Void / unlabelled.
CAMVID11_CLASSES: tuple[tuple[str, tuple[int, int, int]], ...] = (
    ("Sky", (128, 128, 128)),
    ("Building", (128, 0, 0)),
    ("Pole", (192, 192, 128)),
    ("Road", (128, 64, 128)),
    ("Pavement", (60, 40, 222)),
    ("Tree", (128, 128, 0)),
    ("SignSymbol", (192, 128, 128)),
    ("Fence", (64, 64, 128)),
    ("Car", (64, 0, 128)),
    ("Pedestrian", (64, 64, 0)),
    ("Bicyclist", (0, 128, 192)),
    ("Void", (0, 0, 0)),
)

#: The common ("merge") CamVid-32 -> CamVid-11 grouping: target name -> source names.
MERGE_32_TO_11: Mapping[str, tuple[str, ...]] = {
    "Sky": ("Sky",),
    "Building": ("Building", "Bridge", "Tunnel", "Archway", "Wall"),
    "Pole": ("Column_Pole", "TrafficCone"),
    "Road": ("Road", "LaneMkgsDriv", "LaneMkgsNonDriv"),
    "Pavement": ("Sidewalk", "ParkingBlock", "RoadShoulder"),
    "Tree": ("Tree", "VegetationMisc"),
    "SignSymbol": ("SignSymbol", "Misc_Text", "TrafficLight"),
    "Fence": ("Fence",),
    "Car": ("Car", "SUVPickupTruck", "Truck_Bus", "Train", "OtherMoving"),
    "Pedestrian": ("Pedestrian", "Child", "CartLuggagePram", "Animal"),
    "Bicyclist": ("Bicyclist", "MotorcycleScooter"),
    "Void": ("Void",),
}


#: Number of distinct 24-bit colours, the size of the decoding table.
_NUM_RGB = 1 << 24
#: Decoding-table entry of a colour that is not in the palette (never a class id: at most
#: ``UNLABELLED`` = 255 classes, so ids end at 254).
_MISSING = 255


def rgb_keys(rgb: NDArray[np.uint8]) -> NDArray[np.uint32]:
    """Pack ``(..., 3)`` uint8 colours into flat uint32 keys ``r | g << 8 | b << 16``.

    The pixels' bytes are copied once into a buffer one byte longer than the image; a
    little-endian uint32 view of that buffer with a 3-byte stride then reads every pixel's three
    bytes (and the next pixel's first byte, masked off) in a single pass, instead of three
    conversions, two shifts and two ors.

    Returns:
        ``(n,)`` uint32, one key per pixel in C order.

    Example:
        >>> hex(int(rgb_keys(np.array([[1, 2, 3]], np.uint8))[0]))
        '0x30201'
    """
    flat = rgb.reshape(-1)
    n = flat.size // 3
    buffer = np.zeros(flat.size + 1, dtype=np.uint8)
    buffer[:-1] = flat
    # numpy checks that the view stays inside the buffer: (n - 1) * 3 + 4 <= 3 * n + 1.
    words = np.ndarray((n,), dtype="<u4", buffer=buffer, strides=(3,))
    keys: NDArray[np.uint32] = np.bitwise_and(words, np.uint32(0xFFFFFF), dtype=np.uint32)
    return keys


def _check_colors(
    instance: object, attribute: attrs.Attribute[ColorTable], value: ColorTable
) -> None:
    if value.dtype != np.uint8 or value.ndim != 2 or value.shape[1] != 3:
        raise PaletteError(
            f"colors must be an (N, 3) uint8 array (got shape {value.shape}, dtype {value.dtype})"
        )
    if len(value) == 0 or len(value) > UNLABELLED:
        raise PaletteError(f"a palette holds 1..{UNLABELLED} classes (got {len(value)})")


def _to_names(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in values)


def _readonly(array: NDArray[np.uint8]) -> NDArray[np.uint8]:
    copy = np.array(array, dtype=np.uint8, copy=True)
    copy.setflags(write=False)
    return copy


@attrs.frozen(eq=False)
class CamVidPalette:
    """A class index: ids ``0..N-1`` with a name and an RGB colour each.

    Attributes:
        name: Short name of the label set, e.g. ``"camvid32"``.
        names: Class names in id order.
        colors: ``(N, 3)`` uint8 colour table in id order (read-only).
        void_id: Id of the Void/unlabelled class that metrics ignore, or ``None``.

    Example:
        >>> palette = CamVidPalette.camvid32()
        >>> len(palette), palette.id_of("Road"), palette.color_of("Road")
        (32, 17, (128, 64, 128))
        >>> palette.colorize(np.array([[17, 21]], dtype=np.uint8)).tolist()
        [[[128, 64, 128], [128, 128, 128]]]
    """

    name: str
    names: tuple[str, ...] = attrs.field(converter=_to_names)
    colors: ColorTable = attrs.field(converter=_readonly, validator=_check_colors)
    void_id: int | None = None
    _lut: NDArray[np.uint8] = attrs.field(init=False, repr=False)
    _index: Mapping[str, int] = attrs.field(init=False, repr=False)
    _lookup: ColorLookup = attrs.field(init=False, repr=False)
    # 2**24-entry colour -> id table (16 MB), built by the first decode() and kept with the
    # palette it belongs to.
    _decode_lut: NDArray[np.uint8] | None = attrs.field(init=False, repr=False, default=None)

    def __attrs_post_init__(self) -> None:
        if len(self.names) != len(self.colors):
            raise PaletteError(
                f"palette {self.name!r} has {len(self.names)} names but {len(self.colors)} colours"
            )
        if len(set(self.names)) != len(self.names):
            raise PaletteError(f"palette {self.name!r} has duplicate class names")
        if self.void_id is not None and not 0 <= self.void_id < len(self.names):
            raise PaletteError(f"void_id {self.void_id} is not a class id of {self.name!r}")
        # A 256-entry table colours any uint8 label map (UNLABELLED included) in one lookup;
        # ids without a class are drawn black.
        lut = np.zeros((256, 3), dtype=np.uint8)
        lut[: len(self.colors)] = self.colors
        lut.setflags(write=False)
        object.__setattr__(self, "_lut", lut)
        object.__setattr__(self, "_lookup", ColorLookup(self.colors))
        object.__setattr__(self, "_index", {n.lower(): i for i, n in enumerate(self.names)})

    @classmethod
    def from_classes(
        cls, name: str, classes: Iterable[tuple[str, tuple[int, int, int]]], void: str | None = None
    ) -> CamVidPalette:
        """Build a palette from ``(name, (r, g, b))`` pairs in id order.

        Example:
            >>> p = CamVidPalette.from_classes("two", [("a", (1, 2, 3)), ("b", (4, 5, 6))])
            >>> p.names, p.colors.tolist()
            (('a', 'b'), [[1, 2, 3], [4, 5, 6]])
        """
        pairs = list(classes)
        names = tuple(n for n, _ in pairs)
        colors = np.array([c for _, c in pairs], dtype=np.uint8).reshape(-1, 3)
        void_id = names.index(void) if void is not None else None
        return cls(name=name, names=names, colors=colors, void_id=void_id)

    @classmethod
    def camvid32(cls) -> CamVidPalette:
        """The 32 CamVid classes (ids 0..31, Void = 30)."""
        return _CAMVID32

    @classmethod
    def camvid11(cls) -> CamVidPalette:
        """The 11 SegNet benchmark classes plus Void (id 11)."""
        return _CAMVID11

    @classmethod
    def by_name(cls, name: str) -> CamVidPalette:
        """Look up a built-in palette by name (``"camvid32"``, ``"32"``, ``"camvid11"``, ``"11"``).

        Example:
            >>> CamVidPalette.by_name("11").name
            'camvid11'
        """
        key = name.lower().removeprefix("camvid")
        if key == "32":
            return _CAMVID32
        if key == "11":
            return _CAMVID11
        raise PaletteError(f"unknown palette {name!r} (expected 'camvid32' or 'camvid11')")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def num_classes(self) -> int:
        """Number of classes, Void included."""
        return len(self.names)

    @property
    def scored_ids(self) -> tuple[int, ...]:
        """Ids that metrics score: every id but Void."""
        return tuple(i for i in range(len(self.names)) if i != self.void_id)

    @property
    def color_lut(self) -> NDArray[np.uint8]:
        """``(256, 3)`` uint8 table: ``color_lut[label]`` is the colour of any uint8 label."""
        return self._lut

    def id_of(self, name: str) -> int:
        """Class id of ``name`` (case-insensitive).

        Raises:
            PaletteError: if no class has that name.
        """
        try:
            return self._index[name.lower()]
        except KeyError:
            raise PaletteError(
                f"no class named {name!r} in {self.name} (classes: {', '.join(self.names)})"
            ) from None

    def name_of(self, class_id: int) -> str:
        """Name of class ``class_id``; ``"unlabelled"`` for :data:`~camvidseg.UNLABELLED`."""
        if class_id == UNLABELLED:
            return "unlabelled"
        if not 0 <= class_id < len(self.names):
            raise PaletteError(f"class id {class_id} is not in {self.name} (0..{len(self) - 1})")
        return self.names[class_id]

    def color_of(self, key: int | str) -> tuple[int, int, int]:
        """RGB colour of a class given by id or name."""
        class_id = self.id_of(key) if isinstance(key, str) else key
        self.name_of(class_id)  # validates the id
        r, g, b = (int(v) for v in self._lut[class_id])
        return (r, g, b)

    def colorize(self, labels: LabelMap) -> ImageArray:
        """Colour a label map.

        Args:
            labels: ``(H, W)`` integer ids. Ids without a class (e.g. 255) are drawn black.

        Returns:
            ``(H, W, 3)`` uint8 RGB image.
        """
        return self._lookup.colorize(labels)

    def decode(
        self, rgb: ImageArray, unknown: Literal["error", "void", "unlabelled"] = "error"
    ) -> LabelMap:
        """Decode an RGB label image (e.g. CamVid ``*_L.png``) back to class ids.

        Args:
            rgb: ``(H, W, 3)`` uint8 image coloured with this palette.
            unknown: What to do with colours not in the palette: ``"error"`` raises,
                ``"void"`` maps them to the Void class, ``"unlabelled"`` to 255.

        Returns:
            ``(H, W)`` uint8 ids.

        Raises:
            UnknownColorError: with ``unknown="error"``, listing up to five unknown colours.

        Example:
            >>> p = CamVidPalette.camvid32()
            >>> p.decode(np.array([[[128, 64, 128], [0, 0, 0]]], dtype=np.uint8)).tolist()
            [[17, 30]]
        """
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[-1] != 3:
            raise UnknownColorError(
                f"an RGB label image must be HxWx3 uint8 (got shape {rgb.shape}, dtype {rgb.dtype})"
            )
        if unknown not in ("error", "void", "unlabelled"):
            raise PaletteError(f"unknown must be 'error', 'void' or 'unlabelled' (got {unknown!r})")
        if unknown == "void" and self.void_id is None:
            raise PaletteError(f"palette {self.name} has no Void class")
        keys = rgb_keys(rgb)
        labels = np.take(self.decode_table(), keys, mode="clip").reshape(rgb.shape[:2])
        missing = labels == _MISSING
        if missing.any():
            if unknown == "error":
                bad = np.unique(keys[missing.reshape(-1)])[:5]
                shown = ", ".join(f"({k & 255}, {k >> 8 & 255}, {k >> 16 & 255})" for k in bad)
                raise UnknownColorError(
                    f"{int(missing.sum())} pixels have colours not in {self.name}: {shown}"
                )
            replacement = UNLABELLED if self.void_id is None or unknown != "void" else self.void_id
            labels[missing] = replacement
        return labels

    def decode_table(self) -> NDArray[np.uint8]:
        """The ``2**24``-entry uint8 table from :func:`rgb_keys` keys to ids (255: not a colour).

        Built on first use (16 MB) and kept by this palette, so decoding a label image is one
        gather. When two classes share a colour, the lower id wins.
        """
        if self._decode_lut is None:
            table = np.full(_NUM_RGB, _MISSING, dtype=np.uint8)
            keys = rgb_keys(self.colors).tolist()
            # Reversed, so the first id of a repeated colour is written last and wins.
            for class_id in reversed(range(len(keys))):
                table[keys[class_id]] = class_id
            table.setflags(write=False)
            object.__setattr__(self, "_decode_lut", table)
            return table
        return self._decode_lut

    def to_pil_palette(self) -> list[int]:
        """Flat 768-entry ``[r, g, b, ...]`` list for ``PIL.Image.putpalette``."""
        flat: list[int] = self._lut.reshape(-1).tolist()
        return flat


_CAMVID32 = CamVidPalette.from_classes("camvid32", CAMVID32_CLASSES, void="Void")
_CAMVID11 = CamVidPalette.from_classes("camvid11", CAMVID11_CLASSES, void="Void")


@attrs.frozen(eq=False)
class ClassGrouping:
    """A named many-to-one map between two palettes (e.g. CamVid-32 -> CamVid-11).

    Build one from data with :meth:`from_mapping`; register it with :func:`register_grouping`
    to make it available by name everywhere (CLI ``--grouping`` included).

    Example:
        >>> g = get_grouping("merge")
        >>> g.remap(np.array([[17, 10, 30, 255]], dtype=np.uint8)).tolist()
        [[3, 3, 11, 255]]
    """

    name: str
    source: CamVidPalette
    target: CamVidPalette
    lut: NDArray[np.uint8] = attrs.field(converter=_readonly)

    @classmethod
    def from_mapping(
        cls,
        name: str,
        mapping: Mapping[str, Iterable[str]],
        source: CamVidPalette | None = None,
        target: CamVidPalette | None = None,
    ) -> ClassGrouping:
        """Build a grouping from ``{target class: [source classes, ...]}``.

        Every source class must be assigned exactly once. Unlabelled (255) stays 255.
        """
        source = source or CamVidPalette.camvid32()
        target = target or CamVidPalette.camvid11()
        lut = np.full(256, UNLABELLED, dtype=np.uint8)
        assigned: dict[int, str] = {}
        for target_name, source_names in mapping.items():
            target_id = target.id_of(target_name)
            for source_name in source_names:
                source_id = source.id_of(source_name)
                if source_id in assigned:
                    raise PaletteError(
                        f"grouping {name!r} assigns {source_name!r} twice "
                        f"({assigned[source_id]!r} and {target_name!r})"
                    )
                assigned[source_id] = target_name
                lut[source_id] = target_id
        missing = [source.names[i] for i in range(len(source)) if i not in assigned]
        if missing:
            raise PaletteError(f"grouping {name!r} does not assign: {', '.join(missing)}")
        return cls(name=name, source=source, target=target, lut=lut)

    def remap(self, labels: LabelMap) -> LabelMap:
        """Map source ids to target ids; shape is kept, dtype uint8."""
        remapped: LabelMap = self.lut[labels]
        return remapped


_GROUPINGS: dict[str, ClassGrouping] = {}


def register_grouping(grouping: ClassGrouping, *, replace: bool = False) -> None:
    """Make ``grouping`` available to :func:`get_grouping` under its name."""
    if grouping.name in _GROUPINGS and not replace:
        raise PaletteError(f"a grouping named {grouping.name!r} already exists")
    _GROUPINGS[grouping.name] = grouping


def get_grouping(name: str = "merge") -> ClassGrouping:
    """Return a registered grouping by name."""
    try:
        return _GROUPINGS[name]
    except KeyError:
        raise PaletteError(
            f"unknown grouping {name!r} (available: {', '.join(sorted(_GROUPINGS))})"
        ) from None


def available_groupings() -> tuple[str, ...]:
    """Names of all registered groupings, sorted."""
    return tuple(sorted(_GROUPINGS))


register_grouping(ClassGrouping.from_mapping("merge", MERGE_32_TO_11))


def check_label_ids(counts: NDArray[np.integer[Any]], palette: CamVidPalette, what: str) -> None:
    """Raise unless every id present is a class of ``palette`` or 255 (unlabelled).

    The one label-id check: reading label files, saving and loading label PNGs and counting
    metrics all use it, so the message reads the same everywhere.

    Args:
        counts: Pixels per id ``0..255``, e.g. ``np.bincount(labels.reshape(-1), minlength=256)``
            (callers that count anyway pass their counts).
        palette: The label set the ids should belong to.
        what: What holds the ids, for the message: a file path, ``"prediction"``, ...

    Raises:
        InvalidLabelError: naming ``what``, the label set and up to five offending ids.

    Example:
        >>> labels = np.array([[0, 11, 12, 255]], np.uint8)
        >>> counts = np.bincount(labels.reshape(-1), minlength=256)
        >>> try:
        ...     check_label_ids(counts, CamVidPalette.camvid11(), "a.png")
        ... except InvalidLabelError as exc:
        ...     print(exc)
        a.png holds ids that are not classes of camvid11 (0..11 or 255): 12
    """
    size = len(palette)
    bad = np.flatnonzero(np.asarray(counts)[size:UNLABELLED]) + size
    if bad.size:
        shown = ", ".join(str(int(i)) for i in bad[:5])
        raise InvalidLabelError(
            f"{what} holds ids that are not classes of {palette.name} "
            f"(0..{size - 1} or {UNLABELLED}): {shown}"
        )
