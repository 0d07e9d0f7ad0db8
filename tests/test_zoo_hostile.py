"""Hostile catalogs and misbehaving servers (issue 22): each is one clear error, in bounded time and
memory, and nothing is written outside the net's cache folder."""

from __future__ import annotations

import importlib
import time

import pytest

from caffe2keras.errors import DownloadError, ZooError
from caffe2keras.zoo import download, transfer
from caffe2keras.zoo.transfer import Limits
from tests import test_zoo_download
from tests.cli_process import assert_one_error, run_cli
from tests.test_zoo_download import leftovers
from tests.zoo_server import catalog_entry, write_catalog

download_module = importlib.import_module("caffe2keras.zoo.download")  # `zoo.download` is also a function
served_zoo = test_zoo_download.zoo  # the fixture `zoo`: a tiny zoo on 127.0.0.1
pytestmark = pytest.mark.filterwarnings("ignore::caffe2keras.errors.ConversionWarning")


@pytest.fixture
def quick_limits(monkeypatch):
    """Deadlines of a fraction of a second, so that a drip is given up on at once."""
    monkeypatch.setattr(transfer, "LIMITS", Limits(connect_s=2, silence_s=1, grace_s=0.3, min_rate=2000))


def _tree(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize(
    "edit",
    [
        lambda entry: entry.update(name="../escaped"),
        lambda entry: entry.update(name=".."),
        lambda entry: entry["files"]["weights"].update(filename="../../escaped.caffemodel"),
        lambda entry: entry["files"]["labels"].update(filename=".."),
        lambda entry: entry["files"]["prototxt"].update(filename="/tmp/escaped.prototxt"),
        lambda entry: entry["files"]["weights"].update(size=-1),
    ],
)
def test_a_catalog_entry_that_leads_out_of_the_cache_is_refused(tmp_path, monkeypatch, edit):
    from tests.zoo_server import ZooServer

    entry = catalog_entry(ZooServer(), tmp_path, "tiny")
    edit(entry)
    catalog = write_catalog(tmp_path / "catalog.json", [entry])
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CATALOG", str(catalog))
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("CAFFE2KERAS_ZOO_CACHE", str(tmp_path / "cache"))
    before = _tree(tmp_path)
    result = run_cli("zoo", "download", entry["name"], "-q", cwd=tmp_path)
    assert_one_error(result, "catalog.json: net")
    assert _tree(tmp_path) == before


def test_a_cache_folder_linked_elsewhere_is_refused(served_zoo, tmp_path):
    served_zoo.cache.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (served_zoo.cache / "tiny").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ZooError, match="leads out of the cache"):
        download("tiny")
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_an_endless_body_is_cut_at_the_catalogued_size(served_zoo):
    served_zoo.endless.add("/tiny/tiny.caffemodel")
    result = run_cli(
        "zoo",
        "download",
        "tiny",
        "-q",
        env={
            "CAFFE2KERAS_ZOO_CATALOG": str(served_zoo.cache.parent / "catalog.json"),
            "CAFFE2KERAS_ZOO_CACHE": str(served_zoo.cache),
        },
        timeout=60,
    )
    assert_one_error(result, "may have at most", "sends more bytes than that")
    assert sorted(p.name for p in (served_zoo.cache / "tiny").iterdir()) == ["deploy.prototxt"]  # no lock, no part


def test_a_lying_length_is_refused_before_the_body(served_zoo):
    served_zoo.lengths["/tiny/tiny.caffemodel"] = 10**12
    with pytest.raises(DownloadError, match="announces 1,000,000,000,000 bytes"):
        download("tiny")
    assert leftovers(served_zoo.cache / "tiny") == ["deploy.prototxt"]


def test_a_short_length_gives_a_file_that_fails_its_hash(served_zoo, quick_limits):
    served_zoo.lengths["/tiny/tiny.caffemodel"] = 100
    with pytest.raises(DownloadError):
        download("tiny", retries=0)
    assert "tiny.caffemodel" not in leftovers(served_zoo.cache / "tiny")


def test_a_drip_is_given_up_on_by_its_rate(served_zoo, quick_limits):
    served_zoo.drip_s["/tiny/deploy.prototxt"] = 0.05
    started = time.monotonic()
    with pytest.raises(DownloadError, match="bytes a second, below the 2,000"):
        download("tiny")
    assert time.monotonic() - started < 5


def test_labels_without_a_size_are_capped(served_zoo, monkeypatch):
    monkeypatch.setitem(download_module.ROLE_LIMITS, "labels", 100_000)
    served_zoo.endless.add("/tiny/labels.txt")
    with pytest.warns(Warning, match="labels.txt.*may have at most 100,000"):
        got = download("tiny")
    assert "labels" not in got.paths
    assert leftovers(served_zoo.cache / "tiny") == ["deploy.prototxt", "tiny.caffemodel"]


def test_a_redirect_is_followed_and_a_loop_is_refused(served_zoo):
    served_zoo.files["/moved/deploy.prototxt"] = served_zoo.files["/tiny/deploy.prototxt"]
    served_zoo.redirects["/tiny/deploy.prototxt"] = "/moved/deploy.prototxt"
    served_zoo.redirects["/tiny/tiny.caffemodel"] = "/tiny/tiny.caffemodel"
    with pytest.raises(DownloadError, match="TooManyRedirects"):
        download("tiny")
    assert leftovers(served_zoo.cache / "tiny") == ["deploy.prototxt"]


def test_a_failed_first_download_leaves_no_folder_or_lock(served_zoo):
    del served_zoo.files["/tiny/deploy.prototxt"]
    with pytest.raises(DownloadError, match="404"):
        download("tiny")
    assert not (served_zoo.cache / "tiny").exists()


def test_catalog_labels_files_follow_the_labels_format(served_zoo, tmp_path):
    served_zoo.files["/tiny/labels.txt"] = b"a\nb\x1b[2Jc\nd\n"
    got = download("tiny")
    from caffe2keras.errors import ModelFileError
    from caffe2keras.zoo.catalog import read_labels

    with pytest.raises(ModelFileError, match="control character"):
        read_labels(got.net, got.paths["labels"])


def test_the_catalog_file_is_read_with_the_readers_rules(tmp_path, monkeypatch):
    import os

    fifo = tmp_path / "catalog.json"
    os.mkfifo(fifo)
    result = run_cli("zoo", "list", env={"CAFFE2KERAS_ZOO_CATALOG": str(fifo)}, timeout=30)
    assert_one_error(result, "not a regular file")


def _archived(served_zoo, weights_size_listed: int | None):
    """Net `tiny` with its files as members of an archive; the catalog lists the weights at ``weights_size_listed``."""
    import io
    import tarfile

    from tests.zoo_server import sha256

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as packed:
        for name in ("deploy.prototxt", "tiny.caffemodel"):
            data = served_zoo.files[f"/tiny/{name}"]
            info = tarfile.TarInfo(f"tiny/{name}")
            info.size = len(data)
            packed.addfile(info, io.BytesIO(data))
    served_zoo.files["/tiny/tiny.tar.gz"] = buffer.getvalue()
    entry = served_zoo.entries["tiny"]
    files = entry["files"]
    weights_size = len(served_zoo.files["/tiny/tiny.caffemodel"])
    files["archive"] = {
        "filename": "tiny.tar.gz",
        "urls": [served_zoo.url("/tiny/tiny.tar.gz")],
        "hash": sha256(buffer.getvalue()),
        "size": len(buffer.getvalue()),
    }
    files["prototxt"] = {**files["prototxt"], "member": "tiny/deploy.prototxt", "urls": []}
    files["weights"] = {
        **files["weights"],
        "member": "tiny/tiny.caffemodel",
        "urls": [],
        "size": weights_size_listed or weights_size,
    }
    write_catalog(served_zoo.cache.parent / "catalog.json", list(served_zoo.entries.values()))
    from caffe2keras.zoo.catalog import _load

    _load.cache_clear()


def test_archive_members_are_extracted_within_their_catalogued_size(served_zoo):
    _archived(served_zoo, None)
    got = download("tiny")
    assert got.paths["weights"].read_bytes() == served_zoo.files["/tiny/tiny.caffemodel"]
    _archived(served_zoo, 100)
    got.paths["weights"].unlink()
    with pytest.raises(DownloadError, match="member tiny/tiny.caffemodel is not the catalogued file"):
        download("tiny")
    assert not got.paths["weights"].exists()
