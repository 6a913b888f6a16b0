"""Evaluating folders of predictions, or a Segmenter on the fly, against CamVid ground truth.

Both functions accumulate one :class:`~camvidseg.metrics.ConfusionMatrix` over every pair and
return an :class:`~camvidseg.metrics.EvaluationResult`; a file that cannot be evaluated (missing
partner, size mismatch, unknown colours, unreadable) is recorded in ``result.problems`` and the
others go on. Configuration mistakes (a missing folder, no pairs at all, CamVid-11 ground truth
evaluated as CamVid-32) raise :class:`~camvidseg.exceptions.ConfigError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

from camvidseg.exceptions import (
    ConfigError,
    InvalidImageError,
    UnknownColorError,
)
from camvidseg.groundtruth import (
    LABEL_SUFFIXES,
    FilePair,
    LabelFile,
    LabelFormat,
    UnknownColors,
    ground_truth_key,
    index_ground_truth,
    list_files,
    pair_by_stem,
    problem_kind,
    read_ground_truth,
    read_label_file,
    to_label_set,
)
from camvidseg.imageio import IMAGE_SUFFIXES, atomic_write, open_image
from camvidseg.metrics import ConfusionMatrix, EvaluationProblem, EvaluationResult
from camvidseg.palette import CamVidPalette

if TYPE_CHECKING:
    from camvidseg._types import ImageArray, LabelMap
    from camvidseg.segmenter import Segmenter

__all__ = [
    "IMAGE_SUFFIXES",
    "StreamingEvaluator",
    "evaluate_folders",
    "evaluate_segmenter",
    "list_image_files",
    "resolve_prediction_folder",
    "write_report",
]

log = logging.getLogger("camvidseg")


def _palette(classes: int) -> CamVidPalette:
    if classes not in (32, 11):
        raise ConfigError(f"classes must be 32 or 11 (got {classes})")
    return CamVidPalette.by_name(str(classes))


def _check_folder(path: Path, what: str) -> None:
    if not path.exists():
        raise ConfigError(f"{what} {path}: no such folder")
    if not path.is_dir():
        raise ConfigError(f"{what} {path}: not a folder")


def resolve_prediction_folder(folder: str | os.PathLike[str]) -> Path:
    """The folder holding label maps: ``folder/labels`` when ``folder`` is the output folder of
    ``camvidseg segment`` (it holds ``manifest.json`` and ``labels/``), else ``folder``."""
    path = Path(folder)
    if (path / "manifest.json").is_file() and (path / "labels").is_dir():
        return path / "labels"
    return path


def _no_pairs(sources: list[Path], gt_files: list[Path], source_dir: Path, gt_dir: Path) -> str:
    def example(files: list[Path]) -> str:
        return f", e.g. {files[0].name!r}" if files else ""

    return (
        f"no file in {source_dir} pairs with ground truth in {gt_dir} "
        f"({len(sources)} files{example(sources)}; {len(gt_files)} ground-truth files"
        f"{example(gt_files)}); files pair by name: 'x.png' with 'x_L.png' or 'x.png'"
    )


def evaluate_folders(
    predictions: str | os.PathLike[str],
    ground_truth: str | os.PathLike[str],
    *,
    classes: int = 32,
    gt_format: LabelFormat = "auto",
    unknown: UnknownColors = "error",
    prediction_classes: int | None = None,
    grouping: str = "merge",
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate a folder of label maps against a folder of ground truth.

    Files pair by name (see :func:`camvidseg.groundtruth.pair_by_stem`), in any sub-folder.

    Args:
        predictions: Folder of prediction label files (indexed PNGs as ``camvidseg segment``
            writes them; colour masks are decoded too). The output folder of
            ``camvidseg segment`` itself is accepted (its ``labels/`` is used).
        ground_truth: Folder of ``*_L.png`` colour labels or SegNet index PNGs.
        classes: Evaluate in CamVid-32 (32) or CamVid-11 (11); CamVid-32 predictions and
            ground truth are grouped to 11 with ``grouping``.
        gt_format: ``"auto"``, ``"rgb"`` or ``"index"`` (see
            :func:`camvidseg.groundtruth.read_label_file`).
        unknown: Unknown colours in RGB ground truth: ``"error"`` (the file is a problem) or
            ``"void"`` (ignored pixels).
        prediction_classes: Label set of predictions without an embedded CamVid palette
            (default: ``classes``).
        grouping: Registered 32 -> 11 grouping.
        progress: Show a progress bar on stderr.

    Returns:
        The metrics, with a problem per file that could not be evaluated.

    Raises:
        ConfigError: a folder is missing, nothing pairs, or the label sets cannot be reconciled.
    """
    target = _palette(classes)
    fallback = _palette(prediction_classes) if prediction_classes is not None else target
    pred_dir = resolve_prediction_folder(predictions)
    gt_dir = Path(ground_truth)
    _check_folder(pred_dir, "prediction folder")
    _check_folder(gt_dir, "ground-truth folder")
    pred_files = list_files(pred_dir, LABEL_SUFFIXES)
    # The prediction folder may sit inside the ground-truth folder: never pair a file with itself.
    own = {p.resolve() for p in pred_files}
    gt_files = [p for p in list_files(gt_dir, LABEL_SUFFIXES) if p.resolve() not in own]
    pairs, problems = pair_by_stem(pred_files, gt_files)
    if not pairs:
        raise ConfigError(_no_pairs(pred_files, gt_files, pred_dir, gt_dir))
    matrix = ConfusionMatrix(target)
    for pair in tqdm(pairs, desc="evaluating", unit="image", disable=not progress, leave=False):
        try:
            truth = read_ground_truth(
                pair.ground_truth,
                target,
                label_format=gt_format,
                unknown=unknown,
                grouping=grouping,
            )
        except (InvalidImageError, UnknownColorError) as exc:
            problems.append(EvaluationProblem(problem_kind(exc), str(pair.ground_truth), str(exc)))
            continue
        try:
            predicted = read_label_file(pair.source, index_palette=fallback)
        except (InvalidImageError, UnknownColorError) as exc:
            problems.append(EvaluationProblem(problem_kind(exc), str(pair.source), str(exc)))
            continue
        if predicted.palette.names != target.names and predicted.palette.name == "camvid11":
            raise ConfigError(
                f"prediction {pair.source} holds CamVid-11 ids; evaluate with --classes 11 "
                "(classes=11)"
            )
        labels = to_label_set(predicted.labels, predicted.palette, target, grouping)
        if labels.shape != truth.labels.shape:
            problems.append(_size_mismatch(pair, labels.shape, truth.labels.shape))
            continue
        matrix.update(labels, truth.labels)
        log.debug("evaluated %s against %s", pair.source, pair.ground_truth)
    for problem in problems:
        log.info("%s", problem.message)
    return matrix.compute(problems)


def _size_mismatch(
    pair: FilePair, got: tuple[int, ...], expected: tuple[int, ...]
) -> EvaluationProblem:
    return EvaluationProblem(
        "size_mismatch",
        str(pair.source),
        f"{pair.source}: size {got[1]}x{got[0]} does not match ground truth "
        f"{pair.ground_truth} ({expected[1]}x{expected[0]})",
    )


def list_image_files(
    images: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[Path]:
    """The image files ``images`` names: a folder's files with an image suffix
    (:data:`~camvidseg.imageio.IMAGE_SUFFIXES`, the set ``camvidseg segment`` reads; recursively,
    sorted, hidden ones skipped), a single file, or the given files as they are.

    Raises:
        ConfigError: ``images`` is one path and it does not exist.

    Example:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("b.png", "a.jpg", "notes.txt"):
        ...     _ = (folder / name).write_bytes(b"")
        >>> [p.name for p in list_image_files(folder)]
        ['a.jpg', 'b.png']
        >>> [str(p) for p in list_image_files(["x.png"])]
        ['x.png']
    """
    if isinstance(images, (str, os.PathLike)):
        root = Path(images)
        if root.is_dir():
            return list_files(root, IMAGE_SUFFIXES)
        if not root.exists():
            raise ConfigError(f"image folder {root}: no such file or folder")
        return [root]
    return [Path(p) for p in images]


def evaluate_segmenter(
    segmenter: Segmenter,
    images: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    ground_truth: str | os.PathLike[str],
    *,
    classes: int | None = None,
    gt_format: LabelFormat = "auto",
    unknown: UnknownColors = "error",
    grouping: str | None = None,
    progress: bool = False,
) -> EvaluationResult:
    """Segment images and evaluate the labels against ground truth on the fly.

    Every image needs a ground-truth file of the same name (``x.jpg`` with ``x_L.png`` or
    ``x.png``); ground truth without an image is not a problem here (the images define the
    set). Images are segmented ``segmenter.batch_size`` at a time; labels are what
    :meth:`Segmenter.segment` returns (its ``min_confidence`` included: abstaining is a miss).

    Args:
        segmenter: Any Segmenter (CamVid-32 or CamVid-11 output).
        images: A folder (searched recursively), one image file, or an iterable of paths.
        ground_truth: Folder of ``*_L.png`` colour labels or SegNet index PNGs.
        classes: 32 or 11 (default: the segmenter's label set).
        gt_format: ``"auto"``, ``"rgb"`` or ``"index"``.
        unknown: Unknown colours in RGB ground truth: ``"error"`` or ``"void"``.
        grouping: 32 -> 11 grouping of the ground truth (default: the segmenter's).
        progress: Show a progress bar on stderr.

    Returns:
        The metrics, with a problem per image that could not be evaluated.

    Raises:
        ConfigError: a folder is missing, nothing pairs, or the label sets cannot be reconciled
            (e.g. a CamVid-11 segmenter evaluated in 32 classes).

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg import Segmenter
        >>> from camvidseg.testing import NearestColorBackend, street_scene
        >>> folder = Path(tempfile.mkdtemp())
        >>> image, truth = street_scene(36, 48, seed=4)
        >>> Image.fromarray(image).save(folder / "a.png")
        >>> Image.fromarray(CamVidPalette.camvid32().colorize(truth)).save(folder / "a_L.png")
        >>> result = evaluate_segmenter(Segmenter(NearestColorBackend()), [folder / "a.png"],
        ...                             folder)
        >>> result.miou, result.num_images
        (1.0, 1)
    """
    source = segmenter.palette
    target = source if classes is None else _palette(classes)
    grouping = grouping or segmenter.grouping
    if source.names != target.names and source.name == "camvid11":
        raise ConfigError("a CamVid-11 segmenter can only be evaluated with classes=11")
    gt_dir = Path(ground_truth)
    _check_folder(gt_dir, "ground-truth folder")
    image_files = list_image_files(images)
    gt_files = list_files(gt_dir, LABEL_SUFFIXES)
    pairs, problems = pair_by_stem(image_files, gt_files, report_unused_ground_truth=False)
    if not pairs:
        raise ConfigError(_no_pairs(image_files, gt_files, Path("images"), gt_dir))
    matrix = ConfusionMatrix(target)

    def ready() -> Iterator[tuple[FilePair, ImageArray, LabelFile]]:
        for pair in tqdm(pairs, desc="segmenting", unit="image", disable=not progress):
            try:
                truth = read_ground_truth(
                    pair.ground_truth,
                    target,
                    label_format=gt_format,
                    unknown=unknown,
                    grouping=grouping,
                )
                image = open_image(pair.source).array
            except (InvalidImageError, UnknownColorError) as exc:
                problems.append(EvaluationProblem(problem_kind(exc), str(pair.source), str(exc)))
                continue
            if image.shape[:2] != truth.labels.shape:
                problems.append(_size_mismatch(pair, image.shape[:2], truth.labels.shape))
                continue
            yield pair, image, truth

    batch: list[tuple[FilePair, ImageArray, LabelFile]] = []
    for item in ready():
        batch.append(item)
        if len(batch) >= segmenter.batch_size:
            _segment_into(segmenter, batch, matrix, grouping)
            batch = []
    if batch:
        _segment_into(segmenter, batch, matrix, grouping)
    return matrix.compute(problems)


def _segment_into(
    segmenter: Segmenter,
    batch: list[tuple[FilePair, ImageArray, LabelFile]],
    matrix: ConfusionMatrix,
    grouping: str,
) -> None:
    results = segmenter.segment_batch([image for _, image, _ in batch], batch_size=len(batch))
    for (pair, _, truth), seg in zip(batch, results, strict=True):
        labels = to_label_set(seg.labels, seg.palette, matrix.palette, grouping)
        matrix.update(labels, truth.labels)
        log.debug("evaluated %s against %s", pair.source, pair.ground_truth)


class StreamingEvaluator:
    """Scores label maps against ground truth as they are produced (e.g. by a pipeline).

    Each :meth:`add` pairs one input with its ground truth by name, as
    :func:`evaluate_segmenter` does (``x.jpg`` with ``x_L.png`` or ``x.png`` anywhere under the
    ground-truth folder), and adds its pixels to one confusion matrix; an input that cannot be
    scored (no ground truth, unreadable, size mismatch) becomes a problem of the result. Safe
    to call from several threads.

    Args:
        ground_truth: Folder of ``*_L.png`` colour labels or SegNet index PNGs (recursed).
        classes: Evaluate in CamVid-32 (32) or CamVid-11 (11).
        gt_format: ``"auto"``, ``"rgb"`` or ``"index"``.
        unknown: Unknown colours in RGB ground truth: ``"error"`` or ``"void"``.
        grouping: 32 -> 11 grouping of labels and ground truth.

    Raises:
        ConfigError: the folder is missing or holds no label file, or its first label file
            cannot be evaluated in ``classes`` (CamVid-11 ground truth with ``classes=32``):
            found before any image is segmented.

    Example:
        >>> import tempfile
        >>> from PIL import Image
        >>> from camvidseg.testing import street_scene
        >>> folder = Path(tempfile.mkdtemp())
        >>> _, truth = street_scene(24, 32, seed=2)
        >>> Image.fromarray(CamVidPalette.camvid32().colorize(truth)).save(folder / "a_L.png")
        >>> evaluator = StreamingEvaluator(folder)
        >>> evaluator.add("photos/a.jpg", truth, CamVidPalette.camvid32())
        >>> evaluator.add("photos/b.jpg", truth, CamVidPalette.camvid32())
        >>> result = evaluator.result()
        >>> result.miou, result.num_images, [p.kind for p in result.problems]
        (1.0, 1, ['missing_ground_truth'])
    """

    def __init__(
        self,
        ground_truth: str | os.PathLike[str],
        *,
        classes: int = 32,
        gt_format: LabelFormat = "auto",
        unknown: UnknownColors = "error",
        grouping: str = "merge",
    ) -> None:
        self.palette = _palette(classes)
        self.folder = Path(ground_truth)
        _check_folder(self.folder, "ground-truth folder")
        files = list_files(self.folder, LABEL_SUFFIXES)
        if not files:
            raise ConfigError(f"ground-truth folder {self.folder} holds no label files")
        self._index, ambiguous = index_ground_truth(files)
        self._ambiguous = {ground_truth_key(p.path): p for p in ambiguous}
        self.gt_format: LabelFormat = gt_format
        self.unknown: UnknownColors = unknown
        self.grouping = grouping
        self._matrix = ConfusionMatrix(self.palette)
        self._problems: list[EvaluationProblem] = []
        self._lock = threading.Lock()
        first = next(iter(self._index.values()), None)
        if first is not None:
            # A label set that cannot work is a usage error, found before the slow part; one
            # bad file is only that file's problem, reported when it is used.
            with contextlib.suppress(InvalidImageError, UnknownColorError):
                self._truth(FilePair(ground_truth_key(first), first, first))

    def _truth(self, pair: FilePair) -> LabelFile:
        return read_ground_truth(
            pair.ground_truth,
            self.palette,
            label_format=self.gt_format,
            unknown=self.unknown,
            grouping=self.grouping,
        )

    def _problem(self, problem: EvaluationProblem) -> None:
        log.info("%s", problem.message)
        with self._lock:
            self._problems.append(problem)

    def add(self, source: str | os.PathLike[str], labels: LabelMap, palette: CamVidPalette) -> None:
        """Score one input's ``(H, W)`` uint8 ``labels`` (ids of ``palette``, or 255)."""
        source = Path(source)
        key = ground_truth_key(source)
        if key in self._ambiguous:
            message = f"{source}: its ground truth {key!r} is ambiguous"
            self._problem(EvaluationProblem("ambiguous", str(source), message))
            return
        truth_path = self._index.get(key)
        if truth_path is None:
            message = f"{source}: no ground truth for {key!r} in {self.folder}"
            self._problem(EvaluationProblem("missing_ground_truth", str(source), message))
            return
        pair = FilePair(key, source, truth_path)
        try:
            truth = self._truth(pair)
        except (InvalidImageError, UnknownColorError) as exc:
            self._problem(EvaluationProblem(problem_kind(exc), str(truth_path), str(exc)))
            return
        if labels.shape != truth.labels.shape:
            self._problem(_size_mismatch(pair, labels.shape, truth.labels.shape))
            return
        mapped = to_label_set(labels, palette, self.palette, self.grouping)
        with self._lock:
            self._matrix.update(mapped, truth.labels)
        log.debug("evaluated %s against %s", source, truth_path)

    def add_file(self, source: str | os.PathLike[str], labels_file: str | os.PathLike[str]) -> None:
        """Score one input from a label file written earlier (e.g. by a previous run)."""
        try:
            predicted = read_label_file(labels_file, index_palette=self.palette)
        except (InvalidImageError, UnknownColorError) as exc:
            self._problem(EvaluationProblem(problem_kind(exc), str(labels_file), str(exc)))
            return
        self.add(source, predicted.labels, predicted.palette)

    def skip(self, source: str | os.PathLike[str], reason: str) -> None:
        """Record that ``source`` could not be scored, and why."""
        self._problem(EvaluationProblem("missing_prediction", str(source), f"{source}: {reason}"))

    def result(self) -> EvaluationResult:
        """The metrics so far (a snapshot; :meth:`add` may go on)."""
        with self._lock:
            matrix = ConfusionMatrix(
                self.palette, self._matrix.counts.copy(), self._matrix.num_images
            )
            problems = list(self._problems)
        return matrix.compute(problems)


def write_report(result: EvaluationResult, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``metrics.json``, ``metrics.txt`` and ``confusion.png`` into ``folder`` atomically.

    Returns:
        ``{"metrics": ..., "table": ..., "confusion": ...}`` paths.
    """
    from camvidseg.plotting import save_confusion_plot

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.json"
    with atomic_write(metrics_path) as handle:
        handle.write((json.dumps(result.to_dict(), indent=2) + "\n").encode())
    table_path = out / "metrics.txt"
    with atomic_write(table_path) as handle:
        handle.write((result.table() + "\n").encode())
    plot_path = save_confusion_plot(out / "confusion.png", result.confusion)
    return {"metrics": metrics_path, "table": table_path, "confusion": plot_path}
