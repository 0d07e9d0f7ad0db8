"""Build ``src/caffe2keras/zoo/catalog.json`` from the gathered facts about Model Zoo nets.

    python tools/build_zoo_catalog.py ../shared/zoo/catalog.json

The facts (``../shared/zoo/catalog.json``, described in its README) say where every value was read
and where sources disagree. This script keeps what a download and a conversion need, in one regular
shape (see ``caffe2keras.zoo.catalog`` for the schema), and settles each conflict the way the
shared README asks: the net's own repository wins. Where the facts leave a value out, it stays
``null``: nothing is guessed. The few decisions that cannot be read off a field are in
``DECISIONS`` below, each with its reason.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

OUTPUT = Path(__file__).resolve().parent.parent / "src" / "caffe2keras" / "zoo" / "catalog.json"

# (task keyword in the facts' description, the catalog's task), first match wins.
TASKS = (
    ("segmentation", "segmentation"),
    ("pose", "pose"),
    ("colorization", "colorization"),
    ("edge detection", "edges"),
    ("face recognition", "face-recognition"),
    ("face detection", "detection"),
    ("detection", "detection"),
    ("classification", "classification"),
)

DRIVE_DOWNLOAD = "https://drive.google.com/uc?export=download&id="
IMAGENET_SYNSETS = "https://github.com/opencv/opencv/raw/3.3.1/samples/data/dnn/synset_words.txt"

# Values a field of the facts does not settle on its own. Each says why.
DECISIONS: dict[str, dict] = {
    # The BVLC nets train with imagenet_mean.binaryproto, which is only inside an archive with no
    # published hash; BVLC's own classification example averages it to this per-pixel mean.
    **{
        name: {"mean_key": "mean_pixel_bgr_exact"}
        for name in ("bvlc_alexnet", "bvlc_reference_caffenet", "bvlc_reference_rcnn_ilsvrc13", "finetune_flickr_style")
    },
    # The MATLAB demo (the authors' code) feeds RGB images, transposed (MATLAB is column-major).
    "mtcnn": {
        "channel_order": "RGB",
        "mean": [127.5, 127.5, 127.5],
        "scale": 0.0078125,
        "note": "The authors' MATLAB code feeds RGB images transposed (height and width swapped): "
        "transpose each image before it enters the model.",
    },
    # Only the order as bob.bio.face writes it is known, not which channel order the net takes.
    "vgg_face": {
        "mean_key": None,
        "note": "bob.bio.face gives the mean (129.1863, 104.7624, 93.594) without its channel order.",
    },
    # The net takes the L channel of a Lab image minus 50, not a colour image.
    "colorization_v2": {
        "channel_order": "L",
        "mean": [50.0],
        "scale": 1.0,
        "note": "Input is the L channel of a Lab image; the model predicts the ab channels.",
    },
}

# Label files and how each lists its classes.
LABEL_FORMATS = {
    # "n01440764 tench, Tinca tinca": kept whole, as caffe2keras's labels files are (the id is searched for too)
    "synset_words.txt": "lines",
    "synset.txt": "lines",
    "categories_places365.txt": "first_token",  # "/a/airfield 0"
    "pascal-classes.txt": "first_token",  # "aeroplane 128 0 0"
    "labelmap_ilsvrc_det.prototxt": "labelmap",  # LabelMap { item { display_name: ... } }
}


def hash_of(facts: dict) -> str | None:
    """The strongest published hash of the caffemodel itself; git blob ids and archive hashes are not."""
    for other in facts["other_hashes"]:
        if other["kind"] == "sha256":
            return f"sha256:{other['value']}"
    return f"sha1:{facts['sha1']}" if facts["sha1"] else None


def archive_hash(facts: dict) -> str | None:
    for other in facts["other_hashes"]:
        kind = other["kind"].lower()
        if "archive" in kind or "tar.gz" in kind:
            algorithm = kind.split()[0]
            return f"{algorithm}:{other['value']}"
    return None


def direct_url(entry: dict) -> str | None:
    """The URL that serves the file itself: a Google Drive page or id becomes Drive's download URL."""
    url, kind = entry["url"], entry["kind"].lower()
    if "drive" in kind and "package" not in kind:
        file_id = re.search(r"(?:id=|/d/|^)([\w-]{20,})", url.split()[-1])
        return f"{DRIVE_DOWNLOAD}{file_id.group(1)}" if file_id else None
    if "page" in kind or "package" in kind or "archive of both" in kind or not url.startswith("http"):
        return None  # a web page, or a package of other nets
    return url


def weight_urls(facts: dict) -> list[str]:
    """Direct download URLs without repeats, pinned ones first."""
    pinned, unpinned = [], []
    for entry in facts["caffemodel_urls"]:
        url = direct_url(entry)
        later = "unpinned" in entry["kind"] or "third-party" in entry["kind"]
        if url and url not in pinned + unpinned:
            (unpinned if later else pinned).append(url)
    return pinned + unpinned


def prototxt_file(facts: dict) -> dict | None:
    url = facts["deploy_prototxt_url"]
    if not url:
        return None
    hashes = facts["deploy_prototxt_hashes"] or {}
    known = next((f"{alg}:{hashes[alg]}" for alg in ("sha256", "sha1") if hashes.get(alg)), None)
    return {"filename": url.rsplit("/", 1)[-1], "urls": [url], "hash": known, "size": hashes.get("size_bytes")}


def file_name(facts: dict) -> str:
    return facts["caffemodel_filename"].split(" (")[0]


def weights_and_archive(facts: dict) -> tuple[dict | None, dict | None]:
    urls = weight_urls(facts)
    if not urls:
        return None, None
    archive = facts.get("archive")
    if archive:  # the caffemodel is a member of a published archive
        packed = {"filename": archive["file"], "urls": urls, "hash": archive_hash(facts), "size": None}
        member = {"filename": archive["member"].rsplit("/", 1)[-1], "member": archive["member"], "hash": hash_of(facts)}
        return {**member, "urls": [], "size": facts["size_bytes"]}, packed
    name = file_name(facts)
    if name.endswith((".tar.gz", ".tgz")):  # only the archive is known, not its members
        packed = {"filename": name, "urls": urls, "hash": archive_hash(facts), "size": facts["size_bytes"]}
        return None, packed
    return {"filename": name, "urls": urls, "hash": hash_of(facts), "size": facts["size_bytes"]}, None


def mean_file(preprocessing: dict) -> dict | None:
    mean = preprocessing.get("mean_file")
    if not isinstance(mean, dict) or "member" in mean:  # members of unhashed archives are not fetched
        return None
    return {
        "filename": mean["url"].rsplit("/", 1)[-1],
        "urls": [mean["url"]],
        "hash": f"sha1:{mean['sha1']}",
        "size": mean.get("size_bytes"),
    }


def channel_order(preprocessing: dict) -> str | None:
    match = re.match(r"(BGR|RGB)\b", preprocessing.get("channel_order") or "")
    return match.group(1) if match else None


def preprocessing_of(facts: dict, decision: dict) -> dict:
    given = facts["preprocessing"] or {}
    mean_key = decision.get("mean_key", "mean_bgr")
    mean = given.get(mean_key) if mean_key else None
    if mean is None and mean_key == "mean_bgr" and isinstance(given.get("mean"), list):
        mean = given["mean"]
    mean = decision.get("mean", mean)
    has_mean_file = mean_file(given) is not None
    # Caffe's transform_param scale defaults to 1: a source that subtracts a mean and says no more scales by 1.
    default_scale = 1.0 if mean or has_mean_file else None
    crop = given.get("crop") if isinstance(given.get("crop"), int) and given.get("crop") is not False else None
    notes = [text for text in (given.get("resize"), given.get("notes"), decision.get("note")) if isinstance(text, str)]
    return {
        "channel_order": decision.get("channel_order", channel_order(given)),
        "mean": [float(value) for value in mean] if mean else None,
        "mean_file": has_mean_file,
        "scale": decision.get("scale", given.get("scale", given.get("input_scale", default_scale))),
        "crop": crop,
        "note": " ".join(notes) or None,
    }


def labels_of(facts: dict) -> tuple[dict | None, dict | None]:
    """(the labels entry, the labels file to download)."""
    given = facts["labels"]
    if isinstance(given, dict) and "inline" in given:
        names = re.findall(r"'([^']*)'", given["inline"])
        return {"inline": names, "format": "inline"}, None
    urls = [entry["url"] for entry in given or [] if "member" not in entry]
    if IMAGENET_SYNSETS in urls:  # pinned to a tag, unlike the 4.x branch's copy
        urls = [IMAGENET_SYNSETS]
    if not urls:
        return None, None
    name = urls[0].rsplit("/", 1)[-1]
    return {"format": LABEL_FORMATS.get(name, "lines")}, {
        "filename": name,
        "urls": urls[:1],
        "hash": None,
        "size": None,
    }


def licence_of(facts: dict) -> dict:
    text = facts["license"]
    lowered = (text or "").lower()
    return {
        "text": text or "unknown: no licence statement in the sources read",
        "non_commercial": "non-commercial" in lowered or "by-nc" in lowered or "non-profit" in lowered,
    }


def task_of(description: str) -> str:
    return next(task for keyword, task in TASKS if keyword in description.lower())


def unverified_reason(files: dict) -> str | None:
    if "prototxt" not in files:
        return "no published deploy prototxt URL"
    missing = [role for role in ("prototxt", "weights", "archive") if role in files and not files[role]["hash"]]
    if "weights" not in files:
        return "no weights file of its own (an archive whose members are not catalogued, or no URL)"
    return f"no published hash for the {' and '.join(missing)}" if missing else None


def shape_of(value) -> tuple[list[int] | None, str | None]:
    if isinstance(value, list):
        return value, None
    return None, (value if isinstance(value, str) else None)


def net(facts: dict, *, name=None, prototxt=None, weights=None, input_shape=None) -> dict:
    decision = DECISIONS.get(facts["name"], {})
    files = {}
    found_weights, archive = weights_and_archive(facts)
    for role, entry in (
        ("archive", archive),
        ("prototxt", prototxt or prototxt_file(facts)),
        ("weights", weights or found_weights),
        ("mean", mean_file(facts["preprocessing"] or {})),
    ):
        if entry:
            files[role] = entry
    labels, labels_file = labels_of(facts)
    if labels_file:
        files["labels"] = labels_file
    extra = (facts["preprocessing"] or {}).get("extra_file")
    if extra:
        files["extra"] = {
            "filename": extra["name"],
            "urls": [extra["url"]],
            "hash": f"sha256:{extra['sha256']}",
            "size": extra["size_bytes"],
        }
    reason = unverified_reason(files)
    shape, shape_note = shape_of(input_shape if input_shape is not None else facts["input_shape"])
    return {
        "name": name or facts["name"],
        "task": task_of(facts["task"]),
        "summary": facts["task"],
        "verified": reason is None,
        "unverified_reason": reason,
        "files": files,
        "input_shape": shape,
        "input_note": shape_note,
        "preprocessing": preprocessing_of(facts, decision),
        "labels": labels,
        "license": licence_of(facts),
        "citation": facts["paper"],
        "conflicts": [f"{conflict['field']}: {conflict['detail']}" for conflict in facts["conflicts"]],
        "notes": plain(facts["notes"]),
    }


# How the facts were gathered (a code search index and its file ids) means nothing to a user.
RESEARCH_JARGON = (
    (re.compile(r" \(search-index (?:file )?id \d+\)"), ""),
    (re.compile(r" seen in the search index"), " in public code"),
)


def plain(notes: str | None) -> str | None:
    """The facts' notes without the jargon of how they were gathered; the facts themselves stay."""
    if notes is None:
        return None
    for jargon, replacement in RESEARCH_JARGON:
        notes = jargon.sub(replacement, notes)
    return notes


def mtcnn_stages(facts: dict) -> list[dict]:
    """One catalog net per MTCNN stage: each stage is its own prototxt and caffemodel."""
    stages = []
    for stage in facts["files"]:
        key = stage["stage"].split()[0]
        prototxt = {
            "filename": stage["prototxt_url"].rsplit("/", 1)[-1],
            "urls": [stage["prototxt_url"]],
            "hash": f"sha256:{stage['prototxt_sha256']}",
            "size": None,
        }
        weights = {
            "filename": stage["caffemodel_url"].rsplit("/", 1)[-1],
            "urls": [stage["caffemodel_url"]],
            "hash": f"sha256:{stage['caffemodel_sha256']}",
            "size": stage["caffemodel_size"],
        }
        shapes = facts["input_shape"]
        entry = net(facts, name=f"mtcnn_{key.lower()}", prototxt=prototxt, weights=weights, input_shape=shapes[key])
        entry["summary"] = f"{facts['task']}: stage {stage['stage']}"
        stages.append(entry)
    return stages


def build(facts: list[dict]) -> list[dict]:
    nets = []
    for entry in facts:
        nets.extend(mtcnn_stages(entry) if entry["name"] == "mtcnn" else [net(entry)])
    return sorted(nets, key=lambda item: item["name"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("facts", help="the gathered facts (../shared/zoo/catalog.json)")
    parser.add_argument("-o", "--output", default=str(OUTPUT))
    args = parser.parse_args(argv)
    nets = build(json.loads(Path(args.facts).read_text()))
    Path(args.output).write_text(json.dumps({"version": 1, "nets": nets}, indent=1, ensure_ascii=False) + "\n")
    verified = sum(item["verified"] for item in nets)
    print(f"wrote {args.output}: {len(nets)} nets, {verified} verified", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
