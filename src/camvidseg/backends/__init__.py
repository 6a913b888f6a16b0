"""Model backends and the one resolver from model handles to backends.

:func:`open_backend` opens any model handle (``fake:33``, a SavedModel folder, a tfhub.dev URL,
a Kaggle Models handle) with the first registered resolver that takes it
(:mod:`camvidseg.backends.resolver`). :class:`TFHubBackend` is the only place that imports
TensorFlow, lazily (through :func:`camvidseg.backends.tfhub.import_tensorflow`).

The names below are imported on first use (PEP 562), so ``import camvidseg.backends`` (and the
command line's ``--help``, which shows :data:`DEFAULT_HANDLE`) imports neither numpy nor
TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from camvidseg.backends.handles import DEFAULT_HANDLE

if TYPE_CHECKING:
    from camvidseg.backends.base import (
        Backend,
        FeatureBackend,
        LabelBackend,
        check_batch,
        check_scores,
    )
    from camvidseg.backends.fake import NearestColorBackend, SpeckleNoiseBackend
    from camvidseg.backends.resolver import (
        OpenOptions,
        Resolver,
        open_backend,
        register_resolver,
        resolver_for,
    )
    from camvidseg.backends.tfhub import TFHubBackend

__all__ = [
    "DEFAULT_HANDLE",
    "Backend",
    "FeatureBackend",
    "LabelBackend",
    "NearestColorBackend",
    "OpenOptions",
    "Resolver",
    "SpeckleNoiseBackend",
    "TFHubBackend",
    "check_batch",
    "check_scores",
    "open_backend",
    "register_resolver",
    "resolver_for",
]

#: Public name -> module that defines it, imported on first access.
_LAZY: dict[str, str] = {
    "Backend": "camvidseg.backends.base",
    "FeatureBackend": "camvidseg.backends.base",
    "LabelBackend": "camvidseg.backends.base",
    "check_batch": "camvidseg.backends.base",
    "check_scores": "camvidseg.backends.base",
    "NearestColorBackend": "camvidseg.backends.fake",
    "SpeckleNoiseBackend": "camvidseg.backends.fake",
    "OpenOptions": "camvidseg.backends.resolver",
    "Resolver": "camvidseg.backends.resolver",
    "open_backend": "camvidseg.backends.resolver",
    "register_resolver": "camvidseg.backends.resolver",
    "resolver_for": "camvidseg.backends.resolver",
    "TFHubBackend": "camvidseg.backends.tfhub",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
