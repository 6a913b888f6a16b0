"""Reading label files (ground truth and predictions) and pairing them by file stem.

Two ground-truth layouts exist (see the CamVid reference):

- the original release: RGB images ``0001TP_006690_L.png`` coloured with the CamVid-32 table,
  decoded with :meth:`CamVidPalette.decode` (a table lookup; unknown colours raise or become
  Void, by option);
- the SegNet release: single-channel PNGs under ``trainannot/``, ``valannot/``, ``testannot/``
  holding CamVid-11 ids (11 = Void), named like their images.

Predictions are the indexed PNGs ``camvidseg segment`` writes (CamVid-32 or CamVid-11 ids with
the palette embedded), read with the same function.

Example:
    >>> ground_truth_key("LabeledApproved_full/0001TP_006690_L.png")
    '0001TP_006690'
    >>> ground_truth_key("testannot/0001TP_008550.png")
    '0001TP_008550'
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import attrs
import numpy as np
from PIL import Image, UnidentifiedImageError

from camvidseg._types import LabelMap
from camvidseg.exceptions import (
    CamVidSegError,
    ConfigError,
    InvalidImageError,
    InvalidLabelError,
    PaletteError,
    UnknownColorError,
)
from camvidseg.imageio import pil_to_rgb_array
from camvidseg.metrics import EvaluationProblem, ProblemKind
from camvidseg.palette import CamVidPalette, check_label_ids, get_grouping

__all__ = [
    "LABEL_SUFFIXES",
    "FilePair",
    "LabelFile",
    "LabelFormat",
    "UnknownColors",
    "embedded_palette",
    "ground_truth_key",
    "index_ground_truth",
    "list_files",
    "pair_by_stem",
    "problem_kind",
    "read_ground_truth",
    "read_label_file",
    "to_label_set",
]

log = logging.getLogger("camvidseg")

#: How a label file stores its classes: ``"rgb"`` colours, ``"index"`` ids, or ``"auto"``.
LabelFormat = Literal["auto", "rgb", "index"]
#: What becomes of colours an RGB label image holds that are not in the palette.
UnknownColors = Literal["error", "void"]

#: File extensions looked at when listing label files.
LABEL_SUFFIXES = frozenset({".png", ".bmp", ".tif", ".tiff"})
_RGB_SUFFIX = "_L"


@attrs.frozen(eq=False)
class LabelFile:
    """A label map read from disk.

    Attributes:
        labels: ``(H, W)`` uint8 ids of ``palette`` (or 255, unlabelled).
        palette: The label set the ids belong to.
        path: The file.
        format: ``"rgb"`` (decoded from colours) or ``"index"`` (ids stored directly).
    """

    labels: LabelMap
    palette: CamVidPalette
    path: Path
    format: Literal["rgb", "index"]

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (int(self.labels.shape[0]), int(self.labels.shape[1]))


def ground_truth_key(path: str | os.PathLike[str]) -> str:
    """The pairing key of a label or image file: its stem without a trailing ``_L``."""
    stem = Path(path).stem
    return stem.removesuffix(_RGB_SUFFIX) if stem.endswith(_RGB_SUFFIX) else stem


def embedded_palette(colors: Sequence[int] | None) -> CamVidPalette | None:
    """The built-in CamVid palette an indexed PNG's embedded colour table starts with, if any.

    Args:
        colors: Flat ``[r, g, b, ...]`` list as ``PIL.Image.getpalette()`` returns.

    Example:
        >>> embedded_palette(CamVidPalette.camvid11().to_pil_palette()).name
        'camvid11'
        >>> embedded_palette([0, 0, 0] * 256) is None
        True
    """
    if not colors:
        return None
    table = np.asarray(colors, dtype=np.int64).reshape(-1)
    for palette in (CamVidPalette.camvid32(), CamVidPalette.camvid11()):
        flat = palette.colors.reshape(-1).astype(np.int64)
        if len(table) >= len(flat) and np.array_equal(table[: len(flat)], flat):
            return palette
    return None


def _colours_are_camvid32(image: Image.Image) -> bool:
    """Whether every colour an indexed image uses is a CamVid-32 colour (a palettised RGB label)."""
    table = image.getpalette()
    if not table:
        return False
    used = np.flatnonzero(np.bincount(np.asarray(image, dtype=np.uint8).reshape(-1), minlength=256))
    colors = np.zeros((256, 3), dtype=np.uint8)
    flat = np.asarray(table, dtype=np.uint8).reshape(-1, 3)
    colors[: len(flat)] = flat
    known = {tuple(c) for c in CamVidPalette.camvid32().colors.tolist()}
    return all(tuple(colors[i].tolist()) in known for i in used)


def read_label_file(
    path: str | os.PathLike[str],
    *,
    label_format: LabelFormat = "auto",
    rgb_palette: CamVidPalette | None = None,
    index_palette: CamVidPalette | None = None,
    unknown: UnknownColors = "error",
    use_embedded: bool = True,
) -> LabelFile:
    """Read a ground-truth or prediction label file.

    ``label_format="auto"`` looks at the image: RGB(A) images are colour labels; grayscale (``L``)
    images hold ids; indexed (``P``) images hold ids when their embedded colour table is a
    CamVid palette (as ``camvidseg segment`` writes them), are colour labels when every colour
    they use is a CamVid-32 colour, and hold ids otherwise.

    Args:
        path: The file.
        label_format: ``"auto"``, ``"rgb"`` (decode colours) or ``"index"`` (ids).
        rgb_palette: Colour table of RGB labels (default CamVid-32).
        index_palette: Label set of index files without an embedded CamVid palette (default
            CamVid-11, the SegNet layout).
        unknown: RGB colours not in ``rgb_palette``: ``"error"`` raises, ``"void"`` maps them to
            Void.
        use_embedded: Take the label set of an index file from the CamVid palette it embeds
            (``False``: always ``index_palette``).

    Returns:
        The labels and the palette they belong to.

    Raises:
        InvalidImageError: the file cannot be read, or an index file is not single-channel.
        UnknownColorError: an RGB label holds unknown colours (with ``unknown="error"``).
        InvalidLabelError: an index file holds ids outside its label set.
    """
    path = Path(path)
    rgb_palette = rgb_palette or CamVidPalette.camvid32()
    index_palette = index_palette or CamVidPalette.camvid11()
    if label_format not in ("auto", "rgb", "index"):
        raise ConfigError(f"label format must be 'auto', 'rgb' or 'index' (got {label_format!r})")
    if unknown not in ("error", "void"):
        raise ConfigError(f"unknown colours must be 'error' or 'void' (got {unknown!r})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                kind = label_format
                embedded = embedded_palette(image.getpalette()) if image.mode == "P" else None
                if kind == "auto":
                    if image.mode == "L" or embedded is not None:
                        kind = "index"
                    elif image.mode == "P":
                        kind = "rgb" if _colours_are_camvid32(image) else "index"
                    else:
                        kind = "rgb"
                if kind == "index":
                    if image.mode not in ("P", "L"):
                        raise InvalidImageError(
                            f"{path}: an index label file must be an indexed or grayscale image "
                            f"(got mode {image.mode}); use the rgb format for colour labels"
                        )
                    labels = np.asarray(image, dtype=np.uint8).copy()
                    rgb = None
                else:
                    rgb = pil_to_rgb_array(image)
    except FileNotFoundError:
        raise InvalidImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidImageError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise InvalidImageError(f"{path}: not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImageError(f"{path}: refused as a decompression bomb ({exc})") from None
    except InvalidImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImageError(f"{path}: cannot decode image ({exc})") from None
    if rgb is not None:
        try:
            decoded = rgb_palette.decode(rgb, unknown=unknown)
        except UnknownColorError as exc:
            raise UnknownColorError(f"{path}: {exc}") from None
        return LabelFile(decoded, rgb_palette, path, "rgb")
    palette = (embedded if use_embedded else None) or index_palette
    if use_embedded and embedded is None:
        log.debug("%s embeds no CamVid palette; reading its ids as %s", path, palette.name)
    check_label_ids(np.bincount(labels.reshape(-1), minlength=256), palette, str(path))
    return LabelFile(labels, palette, path, "index")


def to_label_set(
    labels: LabelMap, source: CamVidPalette, target: CamVidPalette, grouping: str = "merge"
) -> LabelMap:
    """Express ``labels`` (ids of ``source``) in ``target``, grouping with a named grouping.

    Args:
        labels: ``(H, W)`` uint8 ids of ``source`` (or 255).
        source: Their label set.
        target: The label set wanted; the same, or the target of grouping ``grouping``.
        grouping: Name of a registered grouping (``"merge"``: CamVid-32 -> CamVid-11).

    Returns:
        ``labels`` itself when the sets are the same, else a remapped copy.

    Raises:
        ConfigError: when no grouping maps ``source`` to ``target`` (e.g. CamVid-11 to -32).

    Example:
        >>> c32, c11 = CamVidPalette.camvid32(), CamVidPalette.camvid11()
        >>> to_label_set(np.array([[17, 10, 255]], np.uint8), c32, c11).tolist()
        [[3, 3, 255]]
    """
    if source.names == target.names:
        return labels
    try:
        group = get_grouping(grouping)
    except PaletteError as exc:
        raise ConfigError(str(exc)) from None
    if group.source.names != source.names or group.target.names != target.names:
        raise ConfigError(
            f"cannot evaluate {source.name} labels as {target.name}: grouping {grouping!r} maps "
            f"{group.source.name} to {group.target.name}"
        )
    return group.remap(labels)


def read_ground_truth(
    path: str | os.PathLike[str],
    target: CamVidPalette,
    *,
    label_format: LabelFormat = "auto",
    unknown: UnknownColors = "error",
    grouping: str = "merge",
    command: str = "evaluate",
) -> LabelFile:
    """Read a ground-truth file and express it in the label set ``target``.

    Args:
        path: The ground-truth file.
        target: The label set wanted (CamVid-32 or CamVid-11).
        label_format: As in :func:`read_label_file`.
        unknown: As in :func:`read_label_file`.
        grouping: As in :func:`to_label_set`.
        command: The command named in the error raised for CamVid-11 ground truth read as
            CamVid-32 (``"evaluate"``, ``"tune"``).

    Returns:
        ``(H, W)`` uint8 ids of ``target`` (or 255), with ``target`` as palette and the file's
        path and format.

    Raises:
        ConfigError: the file holds CamVid-11 ids and ``target`` is not CamVid-11.
        InvalidImageError, UnknownColorError, InvalidLabelError: as :func:`read_label_file`.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "x.png"
        >>> Image.fromarray(np.array([[3, 11]], np.uint8), "L").save(path, format="PNG")
        >>> read_ground_truth(path, CamVidPalette.camvid11()).labels.tolist()
        [[3, 11]]
        >>> try:
        ...     read_ground_truth(path, CamVidPalette.camvid32(), command="tune")
        ... except ConfigError as exc:
        ...     print(str(exc).split("; ")[1])
        tune with --classes 11 (classes=11)
    """
    truth = read_label_file(path, label_format=label_format, unknown=unknown)
    if truth.palette.names != target.names and truth.palette.name == "camvid11":
        raise ConfigError(
            f"ground truth {path} holds CamVid-11 ids (SegNet layout); "
            f"{command} with --classes 11 (classes=11)"
        )
    labels = to_label_set(truth.labels, truth.palette, target, grouping)
    return LabelFile(labels, target, truth.path, truth.format)


def problem_kind(exc: CamVidSegError) -> ProblemKind:
    """The :class:`~camvidseg.metrics.EvaluationProblem` kind of an error reading a file.

    Example:
        >>> problem_kind(UnknownColorError("x.png: unknown colours"))
        'unknown_colors'
        >>> problem_kind(InvalidImageError("x.png: no such file"))
        'unreadable'
    """
    if isinstance(exc, UnknownColorError):
        return "unknown_colors"
    if isinstance(exc, InvalidLabelError):
        return "invalid_labels"
    return "unreadable"


def list_files(folder: str | os.PathLike[str], suffixes: Iterable[str]) -> list[Path]:
    """Files under ``folder`` (recursively) with one of ``suffixes``, sorted; hidden ones skipped.

    Hidden files include the temporary files of an unfinished atomic write.
    """
    wanted = {s.lower() for s in suffixes}
    root = Path(folder)
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def _group_by_key(files: Iterable[Path]) -> dict[str, list[Path]]:
    """``files`` grouped by :func:`ground_truth_key`, in their order within each key."""
    by_key: dict[str, list[Path]] = {}
    for path in files:
        by_key.setdefault(ground_truth_key(path), []).append(path)
    return by_key


def _rank(path: Path) -> tuple[int, int]:
    """Lower is preferred: ``*_L`` colour labels, then files under a ``*annot`` folder."""
    return (
        0 if path.stem.endswith(_RGB_SUFFIX) else 1,
        0 if any(part.lower().endswith("annot") for part in path.parent.parts) else 1,
    )


def index_ground_truth(files: Iterable[Path]) -> tuple[dict[str, Path], list[EvaluationProblem]]:
    """Map pairing keys to ground-truth files.

    When several files share a key, a ``*_L`` file wins over a plain one (the plain one is the
    photo of the original release) and a file under a ``*annot`` folder wins over one elsewhere
    (the image of the SegNet release); a remaining tie is reported as ``"ambiguous"``.
    """
    by_key = _group_by_key(files)
    chosen: dict[str, Path] = {}
    problems: list[EvaluationProblem] = []
    for key, paths in sorted(by_key.items()):
        best = min(_rank(p) for p in paths)
        winners = [p for p in paths if _rank(p) == best]
        if len(winners) > 1:
            problems.append(
                EvaluationProblem(
                    "ambiguous",
                    str(winners[0]),
                    f"ground truth for {key!r} is ambiguous: {', '.join(map(str, winners))}",
                )
            )
            continue
        chosen[key] = winners[0]
    return chosen, problems


@attrs.frozen
class FilePair:
    """A prediction (or image) and its ground truth, paired by :func:`ground_truth_key`."""

    key: str
    source: Path
    ground_truth: Path


def pair_by_stem(
    sources: Sequence[Path],
    ground_truth: Sequence[Path],
    *,
    report_unused_ground_truth: bool = True,
) -> tuple[list[FilePair], list[EvaluationProblem]]:
    """Pair predictions (or images) with ground-truth files by key.

    ``0001TP_006690.png`` pairs with ``0001TP_006690_L.png`` or ``0001TP_006690.png``, in any
    sub-folder.

    Args:
        sources: Prediction or image files.
        ground_truth: Ground-truth files.
        report_unused_ground_truth: Report ground truth nothing pairs with as
            ``"missing_prediction"`` (a metric over part of a set is not the set's metric).

    Returns:
        ``(pairs, problems)``: pairs sorted by key; problems for sources without ground truth,
        ground truth without a source, and ambiguous keys.
    """
    gt_index, problems = index_ground_truth(ground_truth)
    ambiguous_keys = {ground_truth_key(p.path) for p in problems}
    by_key = _group_by_key(sources)
    pairs: list[FilePair] = []
    for key, paths in sorted(by_key.items()):
        if len(paths) > 1:
            problems.append(
                EvaluationProblem(
                    "ambiguous",
                    str(paths[0]),
                    f"several predictions share the name {key!r}: {', '.join(map(str, paths))}",
                )
            )
        elif key in gt_index:
            pairs.append(FilePair(key, paths[0], gt_index[key]))
        elif key not in ambiguous_keys:
            problems.append(
                EvaluationProblem(
                    "missing_ground_truth",
                    str(paths[0]),
                    f"{paths[0]}: no ground truth for {key!r}",
                )
            )
    if report_unused_ground_truth:
        problems.extend(
            EvaluationProblem("missing_prediction", str(path), f"{path}: no prediction for {key!r}")
            for key, path in sorted(gt_index.items())
            if key not in by_key
        )
    return pairs, problems
