"""`caffe2keras zoo` downloads against a local HTTP server (127.0.0.1 only): verified, resumed, locked."""

from __future__ import annotations

import errno
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from caffe2keras.cli import main
from caffe2keras.errors import CacheError, DownloadError, HashMismatchError, UnverifiedNetError
from caffe2keras.zoo import download
from caffe2keras.zoo.download import PARTIAL_DIR, ResumableDownloader
from tests.zoo_server import ZooServer, catalog_entry, serve, write_catalog


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """A served zoo with nets ``tiny``, ``big`` (about 800 kB of weights) and ``loose`` (no weights hash)."""
    server_state = ZooServer()
    server = serve(server_state)
    entries = [
        catalog_entry(server_state, tmp_path, "tiny"),
        catalog_entry(server_state, tmp_path, "big", padding_layers=48),
        catalog_entry(server_state, tmp_path, "loose", verified=False),
    ]
    catalog = write_catalog(tmp_path / "catalog.json", entries)
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CATALOG", str(catalog))
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CAFFE2KERAS_ZOO_FROM", raising=False)
    server_state.entries = {entry["name"]: entry for entry in entries}
    server_state.cache = tmp_path / "cache"
    yield server_state
    server.shutdown()
    server.server_close()


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(directory: Path) -> list[str]:
    """Files in a net's folder other than the lock (and empty partial folders)."""
    if not directory.exists():
        return []
    return sorted(
        str(path.relative_to(directory))
        for path in directory.rglob("*")
        if path.is_file() and path.name != ".caffe2keras-zoo.lock"
    )


def test_happy_path_verifies_every_file_and_serves_the_cache_afterwards(zoo):
    lines = []
    result = download("tiny", echo=lines.append)
    files = zoo.entries["tiny"]["files"]
    for role in ("prototxt", "weights"):
        assert sha256_of(result.paths[role]) == files[role]["hash"]
    assert result.paths["labels"].read_text().startswith("n00000001 red thing")
    assert result.directory == zoo.cache / "tiny"
    assert any("NON-COMMERCIAL" in line for line in lines), lines
    served = len(zoo.requests)
    assert download("tiny", echo=lines.append).paths == result.paths
    assert len(zoo.requests) == served  # the second call is served from the cache


def test_hash_mismatch_keeps_nothing(zoo):
    zoo.files["/tiny/tiny.caffemodel"] = b"\x00" * 1000  # the host now serves other bytes
    with pytest.raises(HashMismatchError, match="tiny.caffemodel"):
        download("tiny", echo=lambda line: None)
    assert leftovers(zoo.cache / "tiny") == ["deploy.prototxt"]


def test_prototxt_hash_is_checked_too(zoo):
    zoo.files["/tiny/deploy.prototxt"] += b"# edited\n"
    with pytest.raises(HashMismatchError, match=r"deploy\.prototxt"):
        download("tiny", echo=lambda line: None)
    assert leftovers(zoo.cache / "tiny") == []


def test_dropped_connection_resumes_with_a_range_request(zoo):
    weights = "/big/tiny.caffemodel"
    size = len(zoo.files[weights])
    zoo.drop_after[weights] = 256 * 1024
    with pytest.raises(DownloadError, match="run the same command again to resume"):
        download("big", retries=0, echo=lambda line: None)
    assert not (zoo.cache / "big" / "tiny.caffemodel").exists()
    partial = zoo.cache / "big" / PARTIAL_DIR / "tiny.caffemodel.part"
    have = partial.stat().st_size
    assert 0 < have < size

    result = download("big", echo=lambda line: None)  # the next run asks for the rest only
    assert zoo.gets(weights) == [None, f"bytes={have}-"]
    assert sha256_of(result.paths["weights"]) == zoo.entries["big"]["files"]["weights"]["hash"]
    assert not partial.exists()


def test_a_drop_is_retried_within_one_call(zoo):
    weights = "/big/tiny.caffemodel"
    zoo.drop_after[weights] = 128 * 1024
    result = download("big", retries=2, echo=lambda line: None)
    ranges = zoo.gets(weights)
    assert ranges[0] is None and len(ranges) == 2 and ranges[1].startswith("bytes=")
    assert sha256_of(result.paths["weights"]) == zoo.entries["big"]["files"]["weights"]["hash"]


def test_404_names_the_url_and_keeps_nothing(zoo):
    del zoo.files["/tiny/tiny.caffemodel"]
    with pytest.raises(
        DownloadError, match=r"HTTP 404 .*Received: url='http://127\.0\.0\.1:\d+/tiny/tiny\.caffemodel'"
    ):
        download("tiny", echo=lambda line: None)
    assert leftovers(zoo.cache / "tiny") == ["deploy.prototxt"]


def test_a_mirror_is_tried_when_the_first_url_fails(zoo, tmp_path, monkeypatch):
    entry = zoo.entries["tiny"]
    weights = entry["files"]["weights"]
    weights["urls"] = [zoo.url("/moved/tiny.caffemodel"), *weights["urls"]]
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CATALOG", str(write_catalog(tmp_path / "mirrors.json", [entry])))
    result = download("tiny", echo=lambda line: None)
    assert sha256_of(result.paths["weights"]) == weights["hash"]
    assert zoo.gets("/moved/tiny.caffemodel") == [None]


def test_offline_from_a_folder_never_touches_the_network(zoo, tmp_path, monkeypatch):
    local = tmp_path / "local" / "tiny"
    local.mkdir(parents=True)
    for path in ("deploy.prototxt", "tiny.caffemodel", "labels.txt"):
        (local / path).write_bytes(zoo.files[f"/tiny/{path}"])
    monkeypatch.setenv("CAFFE2KERAS_ZOO_FROM", str(tmp_path / "local"))  # DIR/NAME/ is searched too
    result = download("tiny", echo=lambda line: None)
    assert zoo.requests == []
    assert sha256_of(result.paths["weights"]) == zoo.entries["tiny"]["files"]["weights"]["hash"]

    (local / "tiny.caffemodel").unlink()
    with pytest.raises(DownloadError, match="offline: tiny.caffemodel"):
        download("tiny", directory=tmp_path / "elsewhere", echo=lambda line: None)
    assert zoo.requests == []


def test_unverified_net_needs_permission(zoo):
    with pytest.raises(UnverifiedNetError, match="--allow-unverified"):
        download("loose", echo=lambda line: None)
    assert not (zoo.cache / "loose").exists()
    assert download("loose", allow_unverified=True, echo=lambda line: None).paths["weights"].is_file()


def test_two_processes_downloading_one_net_take_turns(zoo):
    zoo.delay_s = 0.02  # about a second per download: the two overlap
    code = "from caffe2keras.zoo import download; print(download('big', echo=lambda line: None).paths['weights'])"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=_subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    weights = zoo.cache / "big" / "tiny.caffemodel"
    assert sha256_of(weights) == zoo.entries["big"]["files"]["weights"]["hash"]
    assert zoo.gets("/big/tiny.caffemodel") == [None]  # one download; the other process found it done
    assert leftovers(zoo.cache / "big") == ["deploy.prototxt", "labels.txt", "tiny.caffemodel"]


def read_only_download(cache: Path) -> subprocess.CompletedProcess:
    """``zoo download tiny -q`` into ``cache`` made read-only; root, who writes anywhere, runs it without that power."""
    cache.chmod(0o555)
    command = [sys.executable, "-m", "caffe2keras", "zoo", "download", "tiny", "-q"]
    if os.geteuid() == 0:
        command = ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", shlex.join(command)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=_subprocess_env())


def _subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


@pytest.mark.skipif(os.geteuid() == 0 and shutil.which("capsh") is None, reason="root ignores permissions; no capsh")
def test_read_only_cache_fails_clearly_and_serves_what_it_holds(zoo):
    cache = zoo.cache
    cache.mkdir()
    try:
        refused = read_only_download(cache)
        assert refused.returncode == 1, refused
        assert "cannot write to" in refused.stderr and "CAFFE2KERAS_ZOO_CACHE" in refused.stderr
        assert "Traceback" not in refused.stderr
        assert list(cache.iterdir()) == []

        cache.chmod(0o755)
        download("tiny", echo=lambda line: None)
        for path in cache.rglob("*"):
            path.chmod(0o555 if path.is_dir() else 0o444)
        held = read_only_download(cache)  # everything is there and verified: nothing to write
        assert held.returncode == 0, held
    finally:
        for path in [cache, *cache.rglob("*")]:
            path.chmod(0o755)


def test_full_disk_leaves_no_partial_file(zoo, monkeypatch):
    def full(self, url, session, requests):
        self.partial.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ResumableDownloader, "_get", full)
    with pytest.raises(CacheError, match="No space left on device"):
        download("tiny", echo=lambda line: None)
    assert leftovers(zoo.cache / "tiny") == []


def test_cli_prints_errors_without_traceback(zoo, capsys):
    del zoo.files["/tiny/tiny.caffemodel"]
    assert main(["zoo", "download", "tiny", "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("caffe2keras: error:") and "HTTP 404" in err and "Traceback" not in err


def test_cli_download_prints_licence_and_paths(zoo, capsys, tmp_path):
    assert main(["zoo", "download", "tiny", "--dir", str(tmp_path / "here")]) == 0
    out = capsys.readouterr().out
    assert "NON-COMMERCIAL" in out and str(tmp_path / "here" / "tiny.caffemodel") in out


def test_an_unreachable_host_is_not_called_a_drop(zoo, tmp_path, monkeypatch):
    entry = zoo.entries["tiny"]
    entry["files"]["weights"]["urls"] = ["http://127.0.0.1:1/tiny.caffemodel"]  # nothing listens on port 1
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CATALOG", str(write_catalog(tmp_path / "down.json", [entry])))
    with pytest.raises(DownloadError) as caught:
        download("tiny", retries=0, echo=lambda line: None)
    message = str(caught.value)
    assert "cannot reach the host (ConnectionError)" in message and "--from DIR (or $CAFFE2KERAS_ZOO_FROM)" in message
    assert "dropped" not in message and "resume" not in message


def test_a_local_file_with_another_hash_is_named_and_kept(zoo, tmp_path):
    local = tmp_path / "local"
    local.mkdir()
    for path in ("deploy.prototxt", "labels.txt"):
        (local / path).write_bytes(zoo.files[f"/tiny/{path}"])
    (local / "tiny.caffemodel").write_bytes(b"\x00" * 100)
    with pytest.raises(HashMismatchError) as caught:
        download("tiny", from_dir=local, echo=lambda line: None)
    message = str(caught.value)
    assert message.startswith(
        f"{local / 'tiny.caffemodel'}: this local file's SHA256 hash does not match the catalog's"
    )
    assert "Received: sha256=" + hashlib.sha256(b"\x00" * 100).hexdigest() in message
    assert "download" not in message.lower() and "deleted" not in message.lower()
    assert (local / "tiny.caffemodel").read_bytes() == b"\x00" * 100
    assert zoo.requests == []


def test_missing_labels_are_a_caffe2keras_warning(zoo, capsys):
    del zoo.files["/tiny/labels.txt"]
    assert main(["zoo", "download", "tiny", "-q"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("caffe2keras: warning: tiny: no labels: ") and "class numbers" in err
