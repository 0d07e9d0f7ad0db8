"""The package's zoo catalog: its schema, and that it is what the build script makes of the shared facts."""

from __future__ import annotations

import copy
import importlib.util
import json
from importlib import resources

import pytest

from caffe2keras.errors import ZooError
from caffe2keras.zoo import validate_catalog
from tests.shared import REPO, SHARED

FACTS = SHARED / "zoo" / "catalog.json"


def shipped() -> dict:
    return json.loads(resources.files("caffe2keras.zoo").joinpath("catalog.json").read_text())


def test_the_shipped_catalog_is_in_schema_and_lists_at_least_25_nets():
    nets = validate_catalog(shipped())
    assert len(nets) >= 25
    verified = [net for net in nets if net.verified]
    assert len(verified) >= 25
    for net in verified:
        assert net.files["prototxt"]["hash"] and net.files["weights"]["hash"], net.name


def test_the_catalog_speaks_to_users_not_of_how_its_facts_were_gathered():
    text = json.dumps(shipped()).lower()
    assert "search index" not in text and "search-index" not in text
    vgg = next(net for net in shipped()["nets"] if net["name"] == "vgg16")
    assert "also appears in a third-party readme using the same URL" in vgg["notes"]


def test_non_commercial_licences_are_flagged():
    flagged = {net.name for net in validate_catalog(shipped()) if net.non_commercial}
    assert {"finetune_flickr_style", "vgg19", "openpose_coco"} <= flagged
    assert "bvlc_alexnet" not in flagged  # non-commercial only until 2015; BVLC's readme now says unrestricted


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda net: net["files"]["weights"].update(hash="sha1:xyz"), "hash must be"),
        (lambda net: net["files"]["weights"].update(hash=None), "verified net has a hash"),
        (lambda net: net.update(task=None), "'task' is missing"),
        (lambda net: net["preprocessing"].update(channel_order="GBR"), "channel_order"),
        (lambda net: net["files"]["weights"].update(urls=[]), "needs 'urls'"),
    ],
)
def test_schema_errors_name_the_net_and_field(change, message):
    catalog = copy.deepcopy(shipped())
    net = next(net for net in catalog["nets"] if net["name"] == "bvlc_alexnet")
    change(net)
    with pytest.raises(ZooError, match=message) as error:
        validate_catalog(catalog)
    assert "bvlc_alexnet" in str(error.value) and "Received:" in str(error.value)


@pytest.mark.skipif(not FACTS.exists(), reason=f"{FACTS} not found")
def test_the_catalog_is_generated_from_the_shared_facts():
    spec = importlib.util.spec_from_file_location("build_zoo_catalog", REPO / "tools" / "build_zoo_catalog.py")
    builder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(builder)
    facts = json.loads(FACTS.read_text())
    assert builder.build(facts) == shipped()["nets"]
    # git blob ids hash a header with the content: they never stand for a file's hash
    blob_ids = {h["value"] for fact in facts for h in fact["other_hashes"] if "git-blob" in h["kind"]}
    hashes = {file["hash"].split(":")[1] for net in shipped()["nets"] for file in net["files"].values() if file["hash"]}
    assert blob_ids and not blob_ids & hashes


def test_zoo_list_names_every_licence(capsys):
    from caffe2keras.cli import main

    assert main(["zoo", "list"]) == 0
    rows = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:-1]}
    assert rows["mtcnn_pnet"].endswith("MIT") and rows["bvlc_alexnet"].endswith("unrestricted")
    assert rows["vgg19"].endswith("non-commercial") and rows["mobilenet_v1"].endswith("BSD-3-Clause")
    assert all(line.split()[-1] not in ("yes", "no") for line in rows.values())  # no blank LICENCE column
