"""Model management: cache inspection, download, describe, verify and `camvidseg model`."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camvidseg import ModelLoadError, Segmenter
from camvidseg.backends.tfhub import cache_folder, inspect_cache
from camvidseg.cli import main
from camvidseg.models import describe, download, verify, version_report
from tests.childproc import run_python
from tests.offline import UNREACHABLE

#: Above Linux's largest pid (2**22), so no process ever has it.
DEAD_PID = 2**22 + 4321
tf_only = pytest.mark.tf
pytestmark = pytest.mark.usefixtures("no_dns")


def _cache_copy(model: Path, handle: str, cache: Path) -> Path:
    """Lay ``model`` out the way tensorflow_hub caches a download of ``handle``."""
    folder = cache_folder(handle, cache)
    shutil.copytree(model, folder)
    return folder


def _fake_files(folder: Path) -> Path:
    """A folder that passes the cheap checks (no TensorFlow involved)."""
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    (folder / "variables" / "variables.index").write_bytes(b"x")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"x")
    return folder


# -- cache inspection (no TensorFlow) -------------------------------------------------------------


def test_inspect_cache_states(tmp_path: Path) -> None:
    handle = "https://example.com/hrnet/1"
    folder = cache_folder(handle, tmp_path)
    assert inspect_cache(handle, tmp_path).state == "absent"
    folder.mkdir()
    assert inspect_cache(handle, tmp_path).state == "absent"  # empty: tensorflow_hub refetches
    (folder / "variables").mkdir()
    (folder / "variables" / "variables.index").write_bytes(b"x")
    entry = inspect_cache(handle, tmp_path)
    assert (entry.state, entry.detail) == ("incomplete", "no saved_model.pb")
    (folder / "saved_model.pb").write_bytes(b"")
    assert inspect_cache(handle, tmp_path).detail == "saved_model.pb is empty"
    (folder / "saved_model.pb").write_bytes(b"\x08\x01")
    assert inspect_cache(handle, tmp_path).detail == "variables/variables.data-* is missing"
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"x")
    entry = inspect_cache(handle, tmp_path)
    assert entry.state == "complete"
    assert entry.cached
    assert entry.problem() is None
    (folder / "variables" / "variables.index").unlink()
    assert inspect_cache(handle, tmp_path).detail == "variables/variables.index is missing"


def test_incomplete_entry_says_which_folder_to_delete(tmp_path: Path) -> None:
    handle = "https://example.com/hrnet/1"
    folder = cache_folder(handle, tmp_path)
    (folder / "variables").mkdir(parents=True)
    (folder / "variables" / "variables.index").write_bytes(b"x")
    problem = inspect_cache(handle, tmp_path).problem()
    assert problem is not None
    assert f"{folder} for {handle!r} is incomplete or corrupt (no saved_model.pb)" in problem
    assert f"delete that folder and download again (camvidseg model download {handle}" in problem


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        (f"{socket.gethostname()}.{DEAD_PID}.abc", "no longer running: an interrupted download"),
        (f"{socket.gethostname()}.{os.getpid()}.abc", "a download may be in progress"),
        ("other.host.example.7.abc", "process 7 on host other.host.example"),
        ("garbage", "content 'garbage'"),
    ],
)
def test_leftover_lock_is_reported_with_its_owner(
    tmp_path: Path, owner: str, expected: str
) -> None:
    handle = "https://example.com/hrnet/1"
    folder = cache_folder(handle, tmp_path)
    lock = folder.with_name(folder.name + ".lock")
    tmp = folder.with_name(folder.name + ".abc.tmp")
    tmp.mkdir(parents=True)
    lock.write_text(owner)
    entry = inspect_cache(handle, tmp_path)
    assert entry.state == "locked"
    assert entry.lock_file == lock
    assert entry.leftovers == (tmp,)
    assert expected in entry.detail
    problem = entry.problem()
    assert problem is not None
    assert f"delete {lock} and {tmp} and download again" in problem
    # A finished download next to a stale lock is still usable: tensorflow_hub ignores the lock.
    _fake_files(folder)
    assert inspect_cache(handle, tmp_path).state == "complete"


def test_describe_uncached_url_does_not_download(tmp_path: Path) -> None:
    info = describe(UNREACHABLE, tmp_path)
    assert not info.cached
    assert info.location == cache_folder(UNREACHABLE, tmp_path)
    assert info.cache_dir == tmp_path
    assert info.functions == ()
    assert info.layout is None
    assert "camvidseg model download" in info.format()
    assert json.loads(json.dumps(info.to_dict()))["cached"] is False


def test_damaged_cache_fails_before_tensorflow(tmp_path: Path) -> None:
    folder = cache_folder(UNREACHABLE, tmp_path)
    (folder / "variables").mkdir(parents=True)
    for call in (
        lambda: describe(UNREACHABLE, tmp_path),
        lambda: download(UNREACHABLE, tmp_path, timeout=2),
        lambda: verify(UNREACHABLE, tmp_path, timeout=2),
    ):
        with pytest.raises(ModelLoadError, match="delete that folder") as info:
            call()
        assert str(folder) in str(info.value)


def test_version_report_reads_metadata_and_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(tmp_path))
    handle = "https://example.com/hrnet/1"
    lines = version_report(handle).splitlines()
    from camvidseg import __version__

    assert lines[0] == f"camvidseg {__version__}"
    assert lines[1].startswith("tensorflow ")
    assert lines[2].startswith("tensorflow_hub ")
    assert lines[-1] == f"model {handle}: not cached (camvidseg model download; cache {tmp_path})"
    folder = _fake_files(cache_folder(handle, tmp_path))
    assert version_report(handle).splitlines()[-1] == f"model {handle}: cached in {folder}"
    assert version_report(str(tmp_path)).endswith(f"model {tmp_path}: local folder")


def test_version_and_models_import_no_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys, camvidseg.models\n"
        "from camvidseg.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('TF', 'tensorflow' in sys.modules or 'tensorflow_hub' in sys.modules)\n"
    )
    out = run_python(code, env={"TFHUB_CACHE_DIR": str(tmp_path)}).stdout
    assert out.startswith("camvidseg ")
    assert "tensorflow_hub " in out
    assert "not cached" in out
    assert out.strip().endswith("TF False")


def test_model_without_action_is_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["model"]) == 2
    assert "download" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["download", "info", "verify"])
def test_model_actions_have_examples(capsys: pytest.CaptureFixture[str], action: str) -> None:
    with pytest.raises(SystemExit):
        main(["model", action, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"camvidseg model {action}" in out


# -- with TensorFlow ------------------------------------------------------------------------------


@tf_only
def test_download_is_a_cache_hit_without_network(fake_savedmodel: Path, tmp_path: Path) -> None:
    folder = _cache_copy(fake_savedmodel, UNREACHABLE, tmp_path)
    chunks: list[int] = []
    assert download(UNREACHABLE, tmp_path, timeout=2, progress=chunks.append) == folder
    assert chunks == []  # nothing was fetched


@tf_only
def test_describe_cached_33_channel_model(fake_savedmodel: Path, tmp_path: Path) -> None:
    folder = _cache_copy(fake_savedmodel, UNREACHABLE, tmp_path)
    info = describe(UNREACHABLE, tmp_path, timeout=2)
    assert info.cached
    assert info.kind == "url"
    assert info.location == folder
    assert info.size_bytes == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert info.channels == 33
    assert info.layout == "background33"
    by_name = {f.name: f for f in info.functions}
    assert by_name["predict"].probe == ((1, 32, 48, 3), (1, 32, 48, 33))
    assert by_name["predict"].inputs[0].shape == (None, None, None, 3)
    assert by_name["predict"].outputs[0].shape == (None, None, None, 33)
    assert by_name["predict"].inputs[0].dtype == "float32"
    assert by_name["get_features"].probe == ((1, 32, 48, 3), (1, 8, 12, 720))
    assert len(info.classes) == 33
    assert (info.classes[0].class_id, info.classes[0].name) == (None, "background (dropped)")
    assert (info.classes[1].class_id, info.classes[1].name) == (0, "Animal")
    assert (info.classes[32].class_id, info.classes[32].name) == (31, "Wall")
    data = json.loads(json.dumps(info.to_dict()))
    assert data["layout"] == "background33"
    assert data["classes"][18] == {
        "channel": 18,
        "class_id": 17,
        "name": "Road",
        "color": [128, 64, 128],
    }
    text = info.format()
    assert "background33" in text
    assert f"{folder} (cached" in text


@tf_only
def test_describe_32_channel_model_reports_void32(fake_savedmodel_32: Path) -> None:
    info = describe(fake_savedmodel_32)
    assert info.kind == "path"
    assert (info.channels, info.layout) == (32, "void32")
    assert len(info.classes) == 32
    assert (info.classes[0].class_id, info.classes[0].name) == (30, "Void")
    assert (info.classes[31].class_id, info.classes[31].name) == (31, "Wall")


@tf_only
def test_truncated_savedmodel_in_cache(fake_savedmodel: Path, tmp_path: Path) -> None:
    folder = _cache_copy(fake_savedmodel, UNREACHABLE, tmp_path)
    proto = folder / "saved_model.pb"
    proto.write_bytes(proto.read_bytes()[: proto.stat().st_size // 2])
    for call in (
        lambda: describe(UNREACHABLE, tmp_path),
        lambda: download(UNREACHABLE, tmp_path, timeout=2),
        lambda: Segmenter.from_hub(UNREACHABLE, cache_dir=tmp_path, timeout=2),
    ):
        with pytest.raises(ModelLoadError) as info:
            call()
        message = str(info.value)
        assert f"The SavedModel in {folder} looks corrupt or incomplete" in message
        assert "delete that folder and download again" in message


@tf_only
def test_stale_lock_fails_at_once_instead_of_waiting(tmp_path: Path) -> None:
    folder = cache_folder(UNREACHABLE, tmp_path)
    tmp_path.mkdir(exist_ok=True)
    folder.with_name(folder.name + ".lock").write_text(
        f"{socket.gethostname()}.{DEAD_PID}.0123abcd"
    )
    with pytest.raises(ModelLoadError, match="interrupted download") as info:
        Segmenter.from_hub(UNREACHABLE, cache_dir=tmp_path, timeout=2)
    assert "tensorflow_hub would wait up to 10 minutes" in str(info.value)


@tf_only
def test_unreachable_host_fails_with_advice(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as info:
        download(UNREACHABLE, tmp_path, timeout=2)
    message = str(info.value)
    assert message.startswith(f"could not load model {UNREACHABLE!r}")
    assert "download of" in message
    assert "--model" in message
    assert not any(tmp_path.iterdir())  # no lock, no temporary folder left behind


@contextlib.contextmanager
def _silent_server() -> Iterator[str]:
    """An HTTP 'server' that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hrnet/1"


def _finishes(call: Callable[[], object], limit: float = 120.0) -> BaseException | None:
    """Run ``call`` in a thread; the bound only stops a regression from hanging the suite."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), "the download hung: the socket timeout was not applied"
    return outcome[0]


@tf_only
def test_stalled_network_times_out(tmp_path: Path) -> None:
    with _silent_server() as handle:
        error = _finishes(lambda: download(handle, tmp_path, timeout=0.5))
    assert isinstance(error, ModelLoadError)
    assert "timed out" in str(error)
    assert "timeout 0.5 s" in str(error)
    assert socket.getdefaulttimeout() is None  # the process-wide default is restored


@contextlib.contextmanager
def _serving(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on localhost; yields the base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@tf_only
def test_download_over_http_fills_the_cache_with_progress(
    fake_savedmodel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    with tarfile.open(served / "hrnet.tar.gz", "w:gz") as archive:
        archive.add(fake_savedmodel, arcname=".")
    cache = tmp_path / "cache"
    chunks: list[int] = []
    with _serving(served) as base:
        handle = f"{base}/hrnet.tar.gz"
        folder = download(handle, cache, timeout=5, progress=chunks.append)
    assert folder == cache_folder(handle, cache)
    assert inspect_cache(handle, cache).state == "complete"
    model_bytes = sum(p.stat().st_size for p in fake_savedmodel.rglob("*") if p.is_file())
    assert sum(chunks) == model_bytes
    # The server is gone: everything now works from the cache alone.
    assert describe(handle, cache).layout == "background33"
    assert verify(handle, cache).ok
    assert main(["model", "download", handle, "--cache-dir", str(cache), "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(folder)


@tf_only
def test_verify_good_model(fake_savedmodel: Path) -> None:
    report = verify(fake_savedmodel)
    assert report.ok
    assert (report.channels, report.layout) == (33, "background33")
    names = [c.name for c in report.checks]
    assert names == [
        "loads",
        "predict runs",
        "output shape",
        "channels",
        "dtype",
        "probabilities in [0, 1]",
        "probabilities sum to 1",
        "get_features",
    ]
    assert all(c.ok for c in report.checks)
    assert report.format().endswith("model OK: 33 channels (background33)")
    assert json.loads(json.dumps(report.to_dict()))["ok"] is True


@pytest.fixture(scope="module")
def bad_savedmodel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SavedModel whose predict returns 24 channels of un-normalised scores, no features."""
    pytest.importorskip("tensorflow_hub")
    import tensorflow as tf

    spec = tf.TensorSpec([None, None, None, 3], tf.float32)

    class Bad(tf.Module):  # type: ignore[misc]
        @tf.function(input_signature=[spec])  # type: ignore[untyped-decorator]
        def predict(self, images: Any) -> Any:
            return tf.ones(tf.concat([tf.shape(images)[:3], [24]], 0)) * 2.0

    path = tmp_path_factory.mktemp("models") / "bad"
    tf.saved_model.save(Bad(), str(path))
    return path


@tf_only
def test_verify_reports_each_failure(bad_savedmodel: Path) -> None:
    report = verify(bad_savedmodel)
    assert not report.ok
    failed = {c.name: c.detail for c in report.failures}
    assert set(failed) == {"channels", "probabilities in [0, 1]", "probabilities sum to 1"}
    assert failed["channels"].startswith("24; expected 33")
    assert "max 2" in failed["probabilities in [0, 1]"]
    get_features = next(c for c in report.checks if c.name == "get_features")
    assert (get_features.ok, get_features.required) == (True, False)
    assert "FAIL channels" in report.format()
    assert report.format().endswith("model FAILED 3 of 8 checks")


@tf_only
def test_download_refuses_a_model_that_fails_verification(
    bad_savedmodel: Path, tmp_path: Path
) -> None:
    folder = _cache_copy(bad_savedmodel, UNREACHABLE, tmp_path)
    with pytest.raises(ModelLoadError, match="does not work as the HRNet CamVid model") as info:
        download(UNREACHABLE, tmp_path, timeout=2)
    assert str(folder) in str(info.value)
    assert download(UNREACHABLE, tmp_path, timeout=2, check=False) == folder


@tf_only
def test_cli_model_info_and_verify(
    fake_savedmodel: Path, bad_savedmodel: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["model", "info", str(fake_savedmodel), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["layout"], data["channels"], data["cached"]) == ("background33", 33, True)
    assert main(["model", "info", str(fake_savedmodel)]) == 0
    assert "layout     background33" in capsys.readouterr().out
    assert main(["model", "verify", str(fake_savedmodel)]) == 0
    assert "model OK" in capsys.readouterr().out
    assert main(["model", "verify", str(bad_savedmodel), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


@tf_only
def test_cli_download_cache_hit_and_offline_failure(
    fake_savedmodel: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _cache_copy(fake_savedmodel, UNREACHABLE, tmp_path / "cache")
    argv = ["model", "download", UNREACHABLE, "--cache-dir", str(tmp_path / "cache")]
    assert main([*argv, "--timeout", "2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["path"] == str(folder)
    assert data["downloaded_bytes"] == 0
    assert data["verify"]["layout"] == "background33"
    argv = ["model", "download", UNREACHABLE, "--cache-dir", str(tmp_path / "empty")]
    assert main([*argv, "--timeout", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("camvidseg: error: could not load model")


@tf_only
def test_version_says_the_default_model_is_cached(
    fake_savedmodel: Path, isolated_tfhub_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from camvidseg import DEFAULT_HANDLE

    folder = _cache_copy(fake_savedmodel, DEFAULT_HANDLE, isolated_tfhub_cache)
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    import tensorflow as tf

    assert f"tensorflow {tf.__version__}" in out
    assert f"model {DEFAULT_HANDLE}: cached in {folder}" in out


def test_probe_batch_is_a_valid_image() -> None:
    from camvidseg.models import PROBE_SHAPE, _probe_batch

    batch = _probe_batch()
    assert batch.shape == PROBE_SHAPE
    assert batch.dtype == np.float32
    assert 0.0 <= batch.min() < batch.max() <= 1.0
