"""Compact per-view model predictions, cached on disk, and averaging them (TTA from a cache).

Full class probabilities of a CamVid frame are 960 x 720 x 32 floats (88 MB); what tuning and
re-evaluating post-processing need is much less: per pixel, the few most likely classes with
their probabilities. :class:`ViewPrediction` keeps the top ``k`` CamVid-32 ids (uint8) and their
probabilities (float16) of one *view* of one image (a TTA scale, flipped or not), plus the share
of the kept channels needed to average views exactly as the Segmenter does.
:func:`combine_views` averages views; :class:`PredictionCache` stores them as ``.npz`` files
keyed by the model, the image's content hash, the view and the inference settings.

Exactness: ``ids[0]`` is the Segmenter's label (ties resolved in channel order, like its argmax)
and ``probs[0]`` its confidence rounded to float16. Averaging several views uses each view's top
``k`` classes only, a class outside them counting as 0 there; with ``k`` equal to the number of
classes the average is the Segmenter's up to float16 rounding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, LabelMap, Scores
from camvidseg.exceptions import ConfigError, InvalidImageError
from camvidseg.imageio import atomic_write
from camvidseg.postprocess import ChannelLayout, labels_and_confidence

__all__ = [
    "CACHE_FORMAT",
    "DEFAULT_TOP_K",
    "IDENTITY_VIEW",
    "PredictionCache",
    "View",
    "ViewPrediction",
    "combine_views",
    "hash_file",
]

log = logging.getLogger("camvidseg")

#: Version of the cached prediction files (part of every cache key).
CACHE_FORMAT = 1
#: Classes kept per pixel and view by default.
DEFAULT_TOP_K = 3

#: A test-time-augmentation view: ``(scale, flipped)``.
View = tuple[float, bool]
#: The image itself, unscaled and unflipped.
IDENTITY_VIEW: View = (1.0, False)


@attrs.frozen(eq=False)
class ViewPrediction:
    """The compact prediction of one view of one image.

    Attributes:
        ids: ``(k, H, W)`` uint8 CamVid-32 ids, best first (``ids[0]`` is the Segmenter's
            label, ties resolved in channel order like its argmax).
        probs: ``(k, H, W)`` float16 probabilities of those classes, renormalised over the
            kept channels (``probs[0]`` is the Segmenter's confidence).
        weight: ``(H, W)`` float16 sum of the kept channels in the raw scores (1 minus the
            background share), to average views exactly as the Segmenter does.
        channel_ids: CamVid-32 id of each kept model channel, in channel order (for ties).
    """

    ids: NDArray[np.uint8]
    probs: NDArray[np.float16]
    weight: NDArray[np.float16]
    channel_ids: NDArray[np.uint8]

    @property
    def shape(self) -> tuple[int, int]:
        """``(H, W)``."""
        return (int(self.ids.shape[1]), int(self.ids.shape[2]))

    @classmethod
    def from_scores(
        cls, scores: Scores, layout: ChannelLayout, top_k: int = DEFAULT_TOP_K
    ) -> ViewPrediction:
        """Keep the top ``top_k`` classes of raw model scores ``(H, W, C)``.

        Example:
            >>> s = np.zeros((1, 1, 33), np.float32); s[0, 0, [0, 18, 22]] = [0.5, 0.3, 0.2]
            >>> view = ViewPrediction.from_scores(s, ChannelLayout.detect(33), top_k=2)
            >>> view.ids[:, 0, 0].tolist(), view.probs[:, 0, 0].tolist(), float(view.weight[0, 0])
            ([17, 21], [0.60009765625, 0.39990234375], 0.5)
        """
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1 (got {top_k})")
        labels, conf = labels_and_confidence(scores, layout)
        kept = layout.kept(scores)
        work = np.array(kept, dtype=np.float32)
        total: NDArray[np.float32] = np.asarray(np.sum(work, axis=-1, dtype=np.float32))
        k = min(top_k, work.shape[-1])
        height, width = labels.shape
        ids = np.empty((k, height, width), np.uint8)
        probs = np.empty((k, height, width), np.float16)
        ids[0], probs[0] = labels, conf
        rows, cols = np.ogrid[:height, :width]
        for j in range(k):
            position = np.argmax(work, axis=-1)
            if j:
                value = work[rows, cols, position]
                share = np.zeros_like(value)
                np.divide(value, total, out=share, where=total > 0)
                ids[j] = layout.channel_ids[position]
                probs[j] = np.clip(share, 0.0, 1.0)
            work[rows, cols, position] = -np.inf
        return cls(ids, probs, total.astype(np.float16), np.asarray(layout.channel_ids))


def combine_views(views: Sequence[ViewPrediction]) -> tuple[LabelMap, ConfidenceMap]:
    """CamVid-32 labels and confidence of the average of ``views`` (TTA from the cache).

    One view gives its own labels and confidence. Several are averaged like the Segmenter's TTA
    (probabilities of the kept channels averaged, then the argmax, confidence renormalised),
    over the classes each view kept: a class outside a view's top ``k`` counts as 0 there.

    Returns:
        ``(labels, confidence)``: ``(H, W)`` uint8 CamVid-32 ids, float32 in ``[0, 1]``.

    Example:
        >>> a = ViewPrediction.from_scores(np.array([[[0.0, 0.6, 0.4]]], np.float32),
        ...                                ChannelLayout("t", 3, True, [4, 5]))
        >>> b = ViewPrediction.from_scores(np.array([[[0.0, 0.1, 0.9]]], np.float32),
        ...                                ChannelLayout("t", 3, True, [4, 5]))
        >>> labels, conf = combine_views([a, b])
        >>> labels.tolist(), round(float(conf[0, 0]), 3)
        ([[5]], 0.65)
    """
    if not views:
        raise ConfigError("combine_views needs at least one view")
    first = views[0]
    if any(v.shape != first.shape for v in views):
        raise InvalidImageError(
            f"views of one image must have one shape (got {[v.shape for v in views]})"
        )
    if len(views) == 1:
        return first.ids[0].copy(), first.probs[0].astype(np.float32)
    channel_ids = first.channel_ids
    position_of = np.zeros(256, dtype=np.intp)
    position_of[channel_ids] = np.arange(len(channel_ids))
    height, width = first.shape
    total = np.zeros((height, width, len(channel_ids)), np.float32)
    weight = np.zeros((height, width), np.float32)
    rows, cols = np.ogrid[:height, :width]
    for view in views:
        view_weight = view.weight.astype(np.float32)
        for ids, probs in zip(view.ids, view.probs, strict=True):
            total[rows, cols, position_of[ids]] += probs.astype(np.float32) * view_weight
        weight += view_weight
    position = np.argmax(total, axis=-1)
    labels: LabelMap = channel_ids[position].astype(np.uint8)
    best = total[rows, cols, position]
    conf = np.zeros_like(best)
    np.divide(best, weight, out=conf, where=weight > 0)
    np.clip(conf, 0.0, 1.0, out=conf)
    return labels, conf


def hash_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 hex digest of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PredictionCache:
    """Per-image, per-view predictions on disk, one ``.npz`` each, written atomically.

    A file's name is the SHA-256 of its key: the cache format, ``model``, the image's content
    hash, the view, ``settings`` (the inference settings that change predictions) and ``top_k``.
    The key is stored in the file too and checked when reading; a file that is unreadable or
    does not match is recomputed (and logged), never trusted.

    Args:
        folder: The cache folder (created when needed; safe to share between runs and data
            sets, since keys include the image's content).
        model: Identifies the model (its handle; for a local folder, include what changes when
            the model does).
        settings: JSON-ready inference settings (``max_side``, ``tile``, ...).
        top_k: Classes kept per pixel.
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        *,
        model: str,
        settings: Mapping[str, Any] | None = None,
        top_k: int = DEFAULT_TOP_K,
    ) -> None:
        if top_k < 1:
            raise ConfigError(f"top_k must be >= 1 (got {top_k})")
        self.folder = Path(folder)
        self.model = model
        self.settings = dict(settings or {})
        self.top_k = top_k

    def key(self, image_hash: str, view: View) -> str:
        """The JSON key of one image and view."""
        return json.dumps(
            {
                "format": CACHE_FORMAT,
                "model": self.model,
                "image": image_hash,
                "view": [float(view[0]), bool(view[1])],
                "settings": self.settings,
                "top_k": self.top_k,
            },
            sort_keys=True,
        )

    def path(self, image_hash: str, view: View) -> Path:
        """Where that prediction is stored."""
        name = hashlib.sha256(self.key(image_hash, view).encode()).hexdigest()[:40]
        return self.folder / f"{name}.npz"

    def contains(self, image_hash: str, view: View) -> bool:
        """Whether a file with this key is stored (reads only the key, not the arrays)."""
        path = self.path(image_hash, view)
        if not path.is_file():
            return False
        try:
            # An open handle of our own: np.load leaks the one it opens when the zip is bad.
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                return str(data["key"]) == self.key(image_hash, view)
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
            return False

    def load(
        self, image_hash: str, view: View, shape: tuple[int, int] | None = None
    ) -> ViewPrediction | None:
        """The stored prediction, or ``None`` when absent, unreadable or not matching."""
        path = self.path(image_hash, view)
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as data:
                stored_key = str(data["key"])
                view_prediction = ViewPrediction(
                    data["ids"], data["probs"], data["weight"], data["channel_ids"]
                )
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("ignoring unreadable cache file %s (%s); recomputing it", path, exc)
            return None
        problem = None
        if stored_key != self.key(image_hash, view):
            problem = "its key does not match"
        elif (
            view_prediction.ids.dtype != np.uint8
            or view_prediction.ids.ndim != 3
            or view_prediction.probs.shape != view_prediction.ids.shape
            or view_prediction.probs.dtype != np.float16
            or view_prediction.weight.shape != view_prediction.ids.shape[1:]
        ):
            problem = "its arrays are malformed"
        elif shape is not None and view_prediction.shape != shape:
            problem = f"it holds {view_prediction.shape}, not {shape}"
        if problem:
            log.warning("ignoring cache file %s: %s; recomputing it", path, problem)
            return None
        return view_prediction

    def store(self, image_hash: str, view: View, prediction: ViewPrediction) -> Path:
        """Write one prediction atomically; returns its path."""
        path = self.path(image_hash, view)
        with atomic_write(path) as handle:
            np.savez_compressed(
                handle,
                key=np.array(self.key(image_hash, view)),
                ids=prediction.ids,
                probs=prediction.probs,
                weight=prediction.weight,
                channel_ids=prediction.channel_ids,
            )
        return path
