"""Model handles to backends: one small resolver per kind of handle, tried in order.

After tensorflow_hub's ``resolver.py``/``registry.py``: each :class:`Resolver` says whether it
takes a handle (:meth:`Resolver.is_supported`, cheap: string and file checks, no TensorFlow)
and opens it (:meth:`Resolver.open`). :func:`open_backend` asks the registered resolvers in
order and opens the handle with the first that takes it. The built-in order is:

1. ``fake:...``: the deterministic fake models (:mod:`camvidseg.backends.fake`);
2. an OpenVINO IR folder (``model.xml``, from ``camvidseg model convert``; never imports
   TensorFlow, see :mod:`camvidseg.backends.openvino`);
3. a local SavedModel folder (anything else that exists on disk);
4. a URL (``https://``, ``http://``, ``gs://``; tfhub.dev redirects to Kaggle Models);
5. a Kaggle Models handle ``OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]`` (needs ``kagglehub``).

:func:`register_resolver` adds a resolver: first by default (so it wins), or just before a
named built-in (``before="savedmodel"`` for another kind of model folder). Nothing else in
camvidseg knows what a handle looks like: the command line, :class:`~camvidseg.SegmentConfig`,
``tune`` and :meth:`Segmenter.from_hub <camvidseg.Segmenter.from_hub>` all come here.

Example:
    >>> backend = open_backend("fake:32")
    >>> backend.name, resolver_for("fake:32").name, resolver_for(DEFAULT_HANDLE).name
    ('fake:nearest-color-32', 'fake', 'url')
"""

from __future__ import annotations

import abc
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, cast

import attrs

from camvidseg import validators
from camvidseg.backends.handles import (
    DEFAULT_HANDLE,
    DEFAULT_TIMEOUT,
    is_fake_handle,
    is_kaggle_handle,
    is_openvino_folder,
    is_url,
)
from camvidseg.backends.precision import PRECISIONS
from camvidseg.exceptions import ConfigError, ModelLoadError

if TYPE_CHECKING:
    from camvidseg.backends.base import Backend, FeatureBackend

__all__ = [
    "DEFAULT_HANDLE",
    "PRECISIONS",
    "FakeResolver",
    "KaggleResolver",
    "OpenOptions",
    "OpenVINOResolver",
    "Resolver",
    "SavedModelResolver",
    "UrlResolver",
    "open_backend",
    "register_resolver",
    "reset_resolvers",
    "resolver_for",
    "resolvers",
    "unregister_resolver",
]


def _to_cache_dir(value: str | os.PathLike[str] | None) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"cache_dir must be a folder path or null (got {value!r})")
    return Path(value).expanduser()


@attrs.frozen
class OpenOptions:
    """How to open a model handle (load-time options, not segmentation settings).

    Attributes:
        cache_dir: TF Hub cache folder (``None``: ``$TFHUB_CACHE_DIR``, else
            ``$TMPDIR/tfhub_modules``).
        timeout: Seconds a network read may stall before a download is abandoned.
        precision: Numeric precision of the model's computation (one of :data:`PRECISIONS`).
        threads: CPU threads the backend may use (``None``: its own default).
        input_multiple: Pad inputs so H and W are multiples of this (1: any size).

    Example:
        >>> OpenOptions(timeout=0)
        Traceback (most recent call last):
        ...
        camvidseg.exceptions.ConfigError: timeout must be a number > 0 (got 0)
    """

    cache_dir: Path | None = attrs.field(default=None, converter=_to_cache_dir)
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, validator=validators.gt(0))
    precision: str = attrs.field(default="fp32", validator=validators.in_(lambda: PRECISIONS))
    threads: int | None = attrs.field(
        default=None, validator=validators.optional(validators.int_range(1))
    )
    input_multiple: int = attrs.field(default=1, validator=validators.int_range(1))


class Resolver(abc.ABC):
    """Opens one kind of model handle.

    Subclasses set :attr:`name` (short, unique: ``"savedmodel"``) and :attr:`description` (what
    handles it takes, for error messages), and implement :meth:`is_supported` and :meth:`open`.
    A resolver that can run other precisions than fp32, or honours ``threads``, says so with
    :attr:`precisions` and :attr:`takes_threads`; :func:`open_backend` refuses the rest.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    precisions: ClassVar[tuple[str, ...]] = ("fp32",)
    takes_threads: ClassVar[bool] = False

    @abc.abstractmethod
    def is_supported(self, handle: str) -> bool:
        """Whether this resolver opens ``handle``. Cheap: no model is loaded, no network."""

    @abc.abstractmethod
    def open(self, handle: str, options: OpenOptions) -> Backend:
        """Open ``handle`` (which :meth:`is_supported`).

        Raises:
            ModelLoadError: naming what was tried, when the model cannot be loaded.
        """

    def check_options(self, options: OpenOptions) -> None:
        """Refuse options this resolver cannot honour (precision, threads)."""
        validators.in_(self.precisions).check(
            options.precision, f"precision (with {self.description})"
        )
        if options.threads is not None and not self.takes_threads:
            raise ConfigError(
                f"threads cannot be set with {self.description} (got {options.threads})"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class FakeResolver(Resolver):
    """``fake:33``, ``fake:32``, ``fake:noisy`` (optionally ``?latency=SECONDS``): numpy fakes."""

    name = "fake"
    description = "a fake model (fake:33, fake:32, fake:noisy)"

    def is_supported(self, handle: str) -> bool:
        return is_fake_handle(handle)

    def open(self, handle: str, options: OpenOptions) -> Backend:
        from camvidseg.backends.fake import parse_fake_handle

        return parse_fake_handle(handle).backend(input_multiple=options.input_multiple)


def _load_tfhub(handle: str, options: OpenOptions) -> Backend:
    from camvidseg.backends.tfhub import TFHubBackend

    return TFHubBackend.load(
        handle,
        cache_dir=options.cache_dir,
        timeout=options.timeout,
        input_multiple=options.input_multiple,
        precision=options.precision,
        threads=options.threads,
    )


class OpenVINOResolver(Resolver):
    """A folder converted by ``camvidseg model convert --to openvino`` (``model.xml`` and
    ``camvidseg_openvino.json``), run by OpenVINO without importing TensorFlow."""

    name = "openvino"
    description = "an OpenVINO IR folder (model.xml, from camvidseg model convert)"
    precisions = PRECISIONS
    takes_threads = True

    def is_supported(self, handle: str) -> bool:
        return is_openvino_folder(handle)

    def open(self, handle: str, options: OpenOptions) -> Backend:
        from camvidseg.backends.openvino import OpenVINOBackend

        return OpenVINOBackend.load(
            handle,
            precision=options.precision,
            threads=options.threads,
            input_multiple=options.input_multiple,
        )


class SavedModelResolver(Resolver):
    """A local folder holding a TensorFlow SavedModel (anything that exists on disk)."""

    name = "savedmodel"
    description = "a local SavedModel folder"
    precisions = PRECISIONS
    takes_threads = True

    def is_supported(self, handle: str) -> bool:
        return not is_url(handle) and Path(handle).expanduser().exists()

    def open(self, handle: str, options: OpenOptions) -> Backend:
        return _load_tfhub(handle, options)


class UrlResolver(Resolver):
    """A URL (tfhub.dev, or any http(s)/gs address of a compressed SavedModel), downloaded once
    into the TF Hub cache."""

    name = "url"
    description = "a URL (https://, http://, gs://) such as " + DEFAULT_HANDLE
    precisions = PRECISIONS
    takes_threads = True

    def is_supported(self, handle: str) -> bool:
        return is_url(handle)

    def open(self, handle: str, options: OpenOptions) -> Backend:
        return _load_tfhub(handle, options)


class KaggleResolver(Resolver):
    """A Kaggle Models handle, downloaded with the optional ``kagglehub`` package."""

    name = "kaggle"
    description = "a Kaggle Models handle OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]"
    precisions = PRECISIONS
    takes_threads = True

    def is_supported(self, handle: str) -> bool:
        return is_kaggle_handle(handle)

    def open(self, handle: str, options: OpenOptions) -> Backend:
        return _load_tfhub(handle, options)


# The built-in order. Another kind of model folder goes before SavedModelResolver, which takes
# anything that exists on disk: add it here, or at run time with
# register_resolver(resolver, before="savedmodel").
_BUILTIN: tuple[Resolver, ...] = (
    FakeResolver(),
    OpenVINOResolver(),
    SavedModelResolver(),
    UrlResolver(),
    KaggleResolver(),
)
_registry: list[Resolver] = list(_BUILTIN)
_lock = threading.Lock()


def resolvers() -> tuple[Resolver, ...]:
    """The registered resolvers, in the order they are tried."""
    with _lock:
        return tuple(_registry)


def register_resolver(resolver: Resolver, *, before: str | None = None) -> None:
    """Add ``resolver``: tried first, or (``before="savedmodel"``) just before that one.

    A resolver of the same :attr:`~Resolver.name` is replaced.

    Raises:
        ConfigError: if ``resolver`` is not a :class:`Resolver`, or no resolver is named
            ``before``.
    """
    validators.instance_of(Resolver, "a Resolver").check(resolver, "resolver")
    with _lock:
        others = [r for r in _registry if r.name != resolver.name]
        names = [r.name for r in others]
        if before is None:
            index = 0
        else:
            validators.in_(names).check(before, "before")
            index = names.index(before)
        others.insert(index, resolver)
        _registry[:] = others


def unregister_resolver(name: str) -> None:
    """Remove the resolver called ``name`` (:func:`reset_resolvers` brings back the built-ins).

    Raises:
        ConfigError: if no resolver is called ``name``.
    """
    with _lock:
        validators.in_([r.name for r in _registry]).check(name, "resolver name")
        _registry[:] = [r for r in _registry if r.name != name]


def reset_resolvers() -> None:
    """Back to the built-in resolvers, in their built-in order."""
    with _lock:
        _registry[:] = _BUILTIN


def resolver_for(handle: str | os.PathLike[str]) -> Resolver:
    """The first registered resolver that takes ``handle``.

    Raises:
        ModelLoadError: when none does; the message lists every kind tried, in order.
    """
    text = os.fspath(handle)
    tried = resolvers()
    for resolver in tried:
        if resolver.is_supported(text):
            return resolver
    where = Path(text).expanduser().absolute()
    kinds = "; ".join(f"{i}. {r.description}" for i, r in enumerate(tried, 1))
    raise ModelLoadError(
        f"cannot open model {text!r}: there is no file or folder {where}, and it is no other "
        f"kind of model handle. Tried, in order: {kinds}."
    )


def open_backend(
    handle: str | os.PathLike[str] | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    precision: str = "fp32",
    threads: int | None = None,
    input_multiple: int = 1,
    head: str | os.PathLike[str] | None = None,
) -> Backend:
    """Open a model handle with the first resolver that takes it.

    Args:
        handle: ``fake:33``/``fake:32``/``fake:noisy``, an OpenVINO IR folder, a local
            SavedModel folder, a tfhub.dev URL or a Kaggle Models handle (``None``:
            :data:`DEFAULT_HANDLE`).
        cache_dir: TF Hub cache (default ``$TFHUB_CACHE_DIR``, else ``$TMPDIR/tfhub_modules``).
        timeout: Seconds a network read may stall before a download is abandoned.
        precision: One of :data:`PRECISIONS`.
        threads: CPU threads for backends that take a thread count (``None``: their default).
        input_multiple: Pad inputs so H and W are multiples of this (1: any size).
        head: A head folder written by ``camvidseg finetune``, put on top of the model's
            backbone features (refused if it was trained on another backbone).

    Raises:
        ModelLoadError: when no resolver takes the handle, or the model cannot be loaded; the
            message lists what was tried.
        ConfigError: for a bad option (or a ``fake:`` handle with an unknown name).

    Example:
        >>> open_backend("fake:noisy?latency=0").name
        'fake:nearest-color-33+speckle0.1/0'
    """
    options = OpenOptions(
        cache_dir=cache_dir,
        timeout=timeout,
        precision=precision,
        threads=threads,
        input_multiple=input_multiple,
    )
    text = DEFAULT_HANDLE if handle is None else os.fspath(handle)
    resolver = resolver_for(text)
    resolver.check_options(options)
    backend = resolver.open(text, options)
    if head is None:
        return backend
    from camvidseg.backends.head import attach_head

    return attach_head(cast("FeatureBackend", backend), head)
