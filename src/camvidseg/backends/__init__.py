"""Model backends. :class:`TFHubBackend` is the only place that imports TensorFlow, lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING

from camvidseg.backends.base import (
    Backend,
    FeatureBackend,
    LabelBackend,
    check_batch,
    check_scores,
)
from camvidseg.backends.fake import NearestColorBackend

if TYPE_CHECKING:
    from camvidseg.backends.tfhub import TFHubBackend

__all__ = [
    "Backend",
    "FeatureBackend",
    "LabelBackend",
    "NearestColorBackend",
    "TFHubBackend",
    "check_batch",
    "check_scores",
]


def __getattr__(name: str) -> object:
    # TFHubBackend's module is light, but keep the import lazy so `import camvidseg.backends`
    # never even looks for TensorFlow.
    if name == "TFHubBackend":
        from camvidseg.backends.tfhub import TFHubBackend

        return TFHubBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
