"""The Backend protocol: what the Segmenter needs from a model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from camvidseg._types import ConfidenceMap, LabelMap, Scores
from camvidseg.exceptions import BackendError

if TYPE_CHECKING:
    from camvidseg.postprocess import ChannelLayout

__all__ = ["Backend", "FeatureBackend", "LabelBackend", "check_batch", "check_scores"]


@runtime_checkable
class Backend(Protocol):
    """A model that turns images into per-class probabilities.

    Implementations take a float32 batch ``[B, H, W, 3]`` of RGB values in ``[0, 1]`` and return
    float32 ``[B, H, W, C]`` probabilities at the input resolution, with ``C`` 33 (background
    channel 0) or 32 (Void in channel 0). ``input_multiple`` is the number H and W must be
    multiples of (the Segmenter pads and crops back); 1 means any size.
    """

    @property
    def name(self) -> str:
        """Human-readable description, e.g. the model handle."""
        ...

    @property
    def input_multiple(self) -> int:
        """H and W of a batch must be multiples of this."""
        ...

    def predict(self, batch: NDArray[np.float32]) -> Scores:
        """Per-class probabilities ``[B, H, W, C]`` for ``batch`` ``[B, H, W, 3]``."""
        ...


@runtime_checkable
class FeatureBackend(Backend, Protocol):
    """A backend that also exposes backbone features (for fine-tuning a head)."""

    def get_features(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        """Features ``[B, H', W', F]`` for ``batch`` ``[B, H, W, 3]``."""
        ...


@runtime_checkable
class LabelBackend(Backend, Protocol):
    """A backend that can also return labels and confidence directly (optional capability).

    For callers that need no per-class scores, this lets a backend compute the argmax and the
    renormalised maximum where the scores are (e.g. inside the TF graph), so 5 bytes per pixel
    come back instead of ``4 * C``. The result must equal
    :func:`camvidseg.postprocess.labels_and_confidence` applied to :meth:`predict`'s scores:
    labels exactly (first maximum in channel order wins), confidence within
    :data:`camvidseg.postprocess.CONFIDENCE_RTOL`.
    """

    def predict_labels(
        self, batch: NDArray[np.float32], layout: ChannelLayout
    ) -> tuple[LabelMap, ConfidenceMap]:
        """uint8 CamVid-32 labels and float32 confidence ``[B, H, W]`` for ``batch``
        ``[B, H, W, 3]``, with ``layout`` the channel layout of :meth:`predict`'s scores."""
        ...


def check_batch(batch: NDArray[np.float32]) -> None:
    """Raise :class:`BackendError` unless ``batch`` is float32 ``[B, H, W, 3]`` with B, H, W > 0."""
    if batch.dtype != np.float32 or batch.ndim != 4 or batch.shape[-1] != 3:
        raise BackendError(
            f"a batch must be float32 [B, H, W, 3] (got shape {batch.shape}, dtype {batch.dtype})"
        )
    if min(batch.shape[:3]) == 0:
        raise BackendError(f"a batch must not be empty (got shape {batch.shape})")


def check_scores(scores: object, batch_shape: tuple[int, ...], backend: str) -> Scores:
    """Validate what a backend returned for a batch of ``batch_shape``; return it as float32."""
    if not isinstance(scores, np.ndarray):
        raise BackendError(f"{backend} returned {type(scores).__name__}, not a numpy array")
    expected = batch_shape[:3]
    if scores.ndim != 4 or scores.shape[:3] != expected:
        raise BackendError(
            f"{backend} returned scores of shape {scores.shape}; expected "
            f"[{expected[0]}, {expected[1]}, {expected[2]}, C] for a batch of shape {batch_shape}"
        )
    if not np.issubdtype(scores.dtype, np.floating):
        raise BackendError(f"{backend} returned scores of dtype {scores.dtype}, not float")
    return scores.astype(np.float32, copy=False)
