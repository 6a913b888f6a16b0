"""What model handles look like: the default handle and the handle kinds.

Plain strings and regular expressions only (no numpy, no attrs), so the command line can show
the default model in ``--help`` without importing anything heavy. Opening a handle is
:func:`camvidseg.backends.open_backend`'s job.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

__all__ = [
    "DEFAULT_HANDLE",
    "DEFAULT_TIMEOUT",
    "FAKE_PREFIX",
    "KAGGLE_HANDLE",
    "OPENVINO_XML",
    "HandleKind",
    "classify_handle",
    "is_fake_handle",
    "is_kaggle_handle",
    "is_openvino_folder",
    "is_url",
    "model_identity",
    "openvino_folder",
]

#: The published model (tfhub.dev redirects to Kaggle Models). The one definition: every other
#: ``DEFAULT_HANDLE`` (``camvidseg``, ``camvidseg.segmenter``, ``camvidseg.backends.tfhub``,
#: ``camvidseg.models``) and the CLI's ``DEFAULT_MODEL`` are this object.
DEFAULT_HANDLE = "https://tfhub.dev/google/HRNet/camvid-hrnetv2-w48/1"
#: The same model as a Kaggle Models handle (needs the ``kaggle`` extra).
KAGGLE_HANDLE = "google/hrnet/tensorFlow2/camvid-hrnetv2-w48/1"
#: Seconds a network read may stall before a download is abandoned.
DEFAULT_TIMEOUT = 30.0
#: Handles of the deterministic fake models (``fake:33``, ``fake:32``, ``fake:noisy``), which are
#: only ever used when asked for by name.
FAKE_PREFIX = "fake:"

#: The network file of an OpenVINO IR folder (``camvidseg model convert --to openvino``).
OPENVINO_XML = "model.xml"

HandleKind = Literal["path", "url", "kaggle"]
_URL_RE = re.compile(r"^(https?|gs)://")
_KAGGLE_RE = re.compile(r"^[\w.-]+/[\w.-]+/[\w.-]+/[\w.-]+(/\d+)?$")


def is_fake_handle(handle: str) -> bool:
    """Whether ``handle`` names a fake model (``fake:...``).

    Example:
        >>> is_fake_handle("fake:33?latency=0.1"), is_fake_handle("/models/fake:33")
        (True, False)
    """
    return handle.startswith(FAKE_PREFIX)


def model_identity(handle: str, head: str | None = None) -> str:
    """The handle a manifest records: a fake model's test parameters (``?latency=``) do not
    change its outputs, so they do not stop a resume. A fine-tuned head is part of the model
    (``HANDLE+head:<sha>``), so outputs of two heads are never mixed on resume.

    Example:
        >>> model_identity("fake:33?latency=0.05"), model_identity("/models/hrnet")
        ('fake:33', '/models/hrnet')
    """
    model = handle.split("?", 1)[0] if is_fake_handle(handle) else handle
    if head is None:
        return model
    from camvidseg.backends.head import head_identity

    return f"{model}+{head_identity(head)}"


def is_url(handle: str) -> bool:
    """Whether ``handle`` is an ``http://``, ``https://`` or ``gs://`` URL.

    Example:
        >>> is_url(DEFAULT_HANDLE), is_url("models/hrnet")
        (True, False)
    """
    return _URL_RE.match(handle) is not None


def is_kaggle_handle(handle: str) -> bool:
    """Whether ``handle`` has the form ``OWNER/MODEL/FRAMEWORK/VARIATION[/VERSION]`` (and does
    not start like a path: ``.``, ``/``, ``~``). Says nothing about a local folder of that name.

    Example:
        >>> is_kaggle_handle(KAGGLE_HANDLE), is_kaggle_handle("./a/b/c/d")
        (True, False)
    """
    return _KAGGLE_RE.match(handle) is not None and not handle.startswith((".", "/", "~"))


def openvino_folder(handle: str | os.PathLike[str]) -> Path | None:
    """The OpenVINO IR folder ``handle`` names (the folder, or its ``model.xml``), else ``None``.

    Looks at the files only: a folder holding ``model.xml``.

    Example:
        >>> openvino_folder(DEFAULT_HANDLE) is None
        True
    """
    text = os.fspath(handle)
    if is_url(text) or is_fake_handle(text):
        return None
    path = Path(text).expanduser()
    if path.name == OPENVINO_XML and path.is_file():
        return path.parent
    if (path / OPENVINO_XML).is_file():
        return path
    return None


def is_openvino_folder(handle: str | os.PathLike[str]) -> bool:
    """Whether ``handle`` names an OpenVINO IR folder (see :func:`openvino_folder`)."""
    return openvino_folder(handle) is not None


def classify_handle(handle: str) -> HandleKind:
    """Tell what kind of TensorFlow model handle ``handle`` is (an existing local file or folder
    wins over the Kaggle form).

    Example:
        >>> classify_handle(DEFAULT_HANDLE), classify_handle(KAGGLE_HANDLE), classify_handle(".")
        ('url', 'kaggle', 'path')
    """
    if is_url(handle):
        return "url"
    if Path(handle).expanduser().exists():
        return "path"
    if is_kaggle_handle(handle):
        return "kaggle"
    return "path"
