"""Fuzzing the model files: hostile prototxts, caffemodels, HDF5 weights and ``.keras`` configs,
converted through the CLI (see :mod:`tools.fuzzing.harness` for the outcomes).

Cases are mutations of real files: the small net below and, when ``../shared`` is there, the
trained LeNet and CIFAR-10 models. A conversion must be a clean refusal or exit 0 with the
``.keras`` file and nothing else; when the case has a canonical twin (the same net re-serialized
by protobuf, or with whitespace and comments added) the two ``.keras`` files hold the same config
and weights; a truncated weights file either is refused or converts to the model of the whole
file. A mutated ``.keras`` config loads or raises (Keras' own errors).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tools.fuzzing.harness import SHARED, Case

# Writing a crafted HDF5 dataset of 70**4 values (gzip, checksums) takes seconds, and hypothesis
# draws larger ones as a run goes on: past this size they are declared, not filled.
FILLED_VALUES_AT_MOST = 1 << 20

TINY_NET = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 12 dim: 12 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 stride: 1 pad: 1 } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc" inner_product_param { num_output: 5 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


@dataclass(frozen=True)
class SeedFile:
    seed: int
    role: str  # "prototxt", "weights" or "hdf5"


_SEEDS: list = []


def _bytes(value) -> bytes:
    if not isinstance(value, SeedFile):
        return value
    _, prototxt, weights = seeds()[value.seed]
    if value.role == "hdf5":
        return hdf5_of(weights)
    return prototxt if value.role == "prototxt" else weights


def _tiny_weights() -> bytes:
    import numpy as np

    from caffe2keras.caffe.writer import write_caffemodel

    rng = np.random.default_rng(0)
    blobs = [
        ("conv", "Convolution", [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
        ("fc", "InnerProduct", [rng.standard_normal((5, 144)), rng.standard_normal(5)]),
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tiny.caffemodel"
        write_caffemodel(path, [(n, t, [b.astype(np.float32) for b in bs]) for n, t, bs in blobs])
        return path.read_bytes()


def seeds() -> list[tuple[str, bytes, bytes]]:
    """(name, prototxt, caffemodel) of the nets mutated."""
    if _SEEDS:
        return _SEEDS
    found = [("tiny", TINY_NET.encode(), _tiny_weights())]
    trained = SHARED / "caffe" / "trained"
    for name, prototxt, weights in (
        ("lenet", "lenet_mnist/lenet.prototxt", "lenet_mnist/lenet_iter_10000.caffemodel"),
        ("cifar10", "cifar10_quick/cifar10_quick.prototxt", "cifar10_quick/cifar10_quick_iter_5000.caffemodel"),
    ):
        if (trained / prototxt).is_file() and (trained / weights).is_file():
            found.append((name, (trained / prototxt).read_bytes(), (trained / weights).read_bytes()))
    _SEEDS.extend(found)
    return found


@functools.cache
def hdf5_of(caffemodel: bytes) -> bytes:
    """The weights of a caffemodel as Caffe's HDF5 snapshot (``/data/<layer>/<i>``)."""
    import h5py

    from caffe2keras.caffe.weights import read_binary_weights

    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "w.caffemodel"
        source.write_bytes(caffemodel)
        target = Path(folder) / "w.h5"
        with h5py.File(target, "w") as f:
            for name, weights in read_binary_weights(source).items():
                for index, blob in enumerate(weights.blobs):
                    f[f"data/{name}/{index}"] = blob.data
        return target.read_bytes()


# ---------------------------------------------------------------------------------------- strategies


def _strategies():
    from hypothesis import strategies as st

    seed_list = seeds()
    seed_index = st.integers(0, len(seed_list) - 1)
    hdf5_seeds = {name: hdf5_of(weights) for name, _, weights in seed_list}
    keras_archive = keras_seed()  # converted here: Keras inside a strategy would use the random module

    def pick(draw) -> tuple[int, str, bytes, bytes]:
        """A seed: its index, name, prototxt and caffemodel."""
        index = draw(seed_index)
        return (index, *seed_list[index])

    def flips(data: bytes, draw, most: int = 8) -> bytes:
        data = bytearray(data)
        for _ in range(draw(st.integers(1, most))):
            position = draw(st.integers(0, max(0, len(data) - 1)))
            if data:
                data[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)

    @st.composite
    def prototxt_mutation(draw):
        index, name, prototxt, _ = pick(draw)
        weights = SeedFile(index, "weights")
        text = prototxt.decode()
        how = draw(st.sampled_from(["flip", "cut", "splice", "number", "token", "duplicate"]))
        if how == "flip":
            data = flips(prototxt, draw)
        elif how == "cut":
            data = prototxt[: draw(st.integers(0, len(prototxt)))]
        elif how == "splice":
            start = draw(st.integers(0, len(text)))
            data = (text[:start] + draw(st.text(max_size=40)) + text[start:]).encode()
        elif how == "number":
            import re

            numbers = [m.span() for m in re.finditer(r"-?\d+(\.\d+)?", text)]
            start, stop = numbers[draw(st.integers(0, len(numbers) - 1))]
            value = draw(
                st.sampled_from(["0", "-1", "-2147483649", "4294967296", "1e300", "nan", "inf", "65536", "3", "0.5"])
            )
            data = (text[:start] + value + text[stop:]).encode()
        elif how == "token":
            lines = text.splitlines(keepends=True)
            index = draw(st.integers(0, len(lines) - 1))
            lines[index] = draw(
                st.sampled_from(
                    [
                        "",
                        'top: ""\n',
                        'bottom: "nowhere"\n',
                        "layer {\n",
                        "}\n",
                        'type: "PriorBox"\n',
                        "kernel_size: 0\n",
                        "stride: 0\n",
                        "num_output: 0\n",
                        "group: 7\n",
                        "input_dim: 0\n",
                        "pad: -5\n",
                        "axis: 9\n",
                    ]
                )
            )
            data = "".join(lines).encode()
        else:
            lines = text.splitlines(keepends=True)
            start = draw(st.integers(0, len(lines) - 1))
            stop = draw(st.integers(start, min(len(lines), start + 30)))
            data = "".join(lines[:stop] + lines[start:stop] + lines[stop:]).encode()
        return Case(f"prototxt-{how}", {"prototxt": data, "weights": weights}, notes={"seed": name})

    @st.composite
    def prototxt_canonical(draw):
        """A valid net, and its canonical twin: protobuf's own serialization of it."""
        from google.protobuf import text_format

        from caffe2keras.caffe.prototxt import parse_net_text

        index, name, prototxt, _ = pick(draw)
        weights = SeedFile(index, "weights")
        text = prototxt.decode()
        canonical = text_format.MessageToString(parse_net_text(text)).encode()
        how = draw(st.sampled_from(["as-is", "whitespace", "comments"]))
        rng = draw(st.randoms(use_true_random=False))  # one draw for many choices: examples stay small
        if how == "whitespace":
            text = "".join(piece + rng.choice((" ", "\t", "\n ")) * rng.randint(1, 2000) for piece in text.split(" "))
        elif how == "comments":
            comment = draw(st.text(max_size=30)).replace("\n", " ").replace("\r", " ")
            lines = text.splitlines(keepends=True)
            text = "".join(f"{line.rstrip()}{' ' * rng.randint(0, 9)}# {comment}\n" for line in lines)
        return Case(
            f"canonical-{how}",
            {"prototxt": text.encode(), "weights": weights},
            twin={"prototxt": canonical, "weights": weights},
            notes={"seed": name},
        )

    @st.composite
    def caffemodel_mutation(draw):
        index, name, _, weights = pick(draw)
        prototxt = SeedFile(index, "prototxt")
        how = draw(st.sampled_from(["flip", "cut", "splice"]))
        if how == "cut":
            cut = weights[: draw(st.integers(0, len(weights) - 1))]
            return Case(
                "caffemodel-cut", {"prototxt": prototxt, "weights": cut}, truncated_from=SeedFile(index, "weights")
            )
        if how == "flip":
            data = flips(weights, draw, most=16)
        else:
            start = draw(st.integers(0, len(weights)))
            data = weights[:start] + draw(st.binary(max_size=64)) + weights[start:]
        return Case(f"caffemodel-{how}", {"prototxt": prototxt, "weights": data}, notes={"seed": name})

    @st.composite
    def hdf5_mutation(draw):
        index, name, _, _ = pick(draw)
        prototxt = SeedFile(index, "prototxt")
        h5 = hdf5_seeds[name]
        how = draw(st.sampled_from(["flip", "cut", "crafted"]))
        if how == "cut":
            cut = h5[: draw(st.integers(0, len(h5) - 1))]
            whole = SeedFile(index, "hdf5")
            return Case("hdf5-cut", {"prototxt": prototxt, "weights": cut}, ".caffemodel.h5", truncated_from=whole)
        if how == "flip":
            data = flips(h5, draw, most=16)
        else:
            data = draw(crafted_hdf5())
            prototxt = TINY_NET.encode()
        return Case(f"hdf5-{how}", {"prototxt": prototxt, "weights": data}, ".caffemodel.h5", notes={"seed": name})

    @st.composite
    def crafted_hdf5(draw):
        import h5py
        import numpy as np

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "w.h5"
            with h5py.File(path, "w") as f:
                for layer in draw(st.lists(st.sampled_from(["conv", "fc", "other", "a/b"]), max_size=3, unique=True)):
                    for index in range(draw(st.integers(0, 3))):
                        shape = tuple(draw(st.lists(st.integers(0, 70), max_size=4)))
                        dtype = draw(st.sampled_from(["f4", "f8", "i4", "u1", "f2"]))
                        options = {}
                        if shape and all(shape) and draw(st.booleans()):
                            options = {
                                "chunks": tuple(max(1, d // 2) for d in shape),
                                "compression": draw(st.sampled_from(["gzip", "lzf", None])),
                                "shuffle": draw(st.booleans()),
                                "fletcher32": draw(st.booleans()),
                            }
                        key = f"data/{layer}/{index}"
                        if draw(st.integers(0, 9)) == 0:
                            f[key] = np.array(["x", "yz"], dtype=h5py.string_dtype())
                        else:
                            fill = draw(st.integers(0, 100)) if draw(st.booleans()) else None
                            if fill is not None and math.prod(shape) > FILLED_VALUES_AT_MOST:
                                fill = None  # declared, not written: as big to read, and quick to draw
                            with contextlib.suppress(ValueError, TypeError):  # combinations h5py refuses
                                f.create_dataset(key, shape=shape, dtype=dtype, **options)
                                if fill is not None:
                                    f[key][...] = fill
            return path.read_bytes()

    @st.composite
    def keras_mutation(draw):
        import json as json_module

        with zipfile.ZipFile(io.BytesIO(keras_archive)) as source:
            config = json_module.loads(source.read("config.json"))
            members = {item.filename: source.read(item) for item in source.infolist()}
        layers = config["config"]["layers"]
        own = [layer for layer in layers if layer.get("module", "").startswith("caffe2keras")] or layers
        target = own[draw(st.integers(0, len(own) - 1))]["config"]
        keys = [k for k in target if k not in ("name", "dtype", "trainable")]
        key = draw(st.sampled_from(keys))
        target[key] = draw(
            st.one_of(
                st.sampled_from([0, -1, 1 << 31, [1 << 31, 1 << 31], [0.0], [-1.0], None, "x", [], float("nan")]),
                st.lists(st.integers(-3, 1 << 33), max_size=6),
                st.builds(lambda n: list(range(1, n)), st.sampled_from([10, 10_000, 1_000_000])),
            )
        )
        members["config.json"] = json_module.dumps(config).encode()
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as target_zip:
            for member, data in members.items():
                target_zip.writestr(member, data)
        return Case("keras-config", {"keras": buffer.getvalue()}, notes={"layer": key})

    return {
        "prototxt": st.one_of(prototxt_mutation(), prototxt_canonical()),
        "caffemodel": caffemodel_mutation(),
        "hdf5": hdf5_mutation(),
        "keras": keras_mutation(),
    }


def strategies(chosen) -> dict:
    """The strategy of each model-file family in ``chosen``, by family name."""
    if not set(chosen) & {"prototxt", "caffemodel", "hdf5", "keras"}:
        return {}  # the seeds take seconds to make
    return {name: strategy for name, strategy in _strategies().items() if name in chosen}


_KERAS_SEED: list[bytes] = []


def keras_seed() -> bytes:
    """A saved model holding several of the project's layers (PriorBox, Normalize, LRN...)."""
    if not _KERAS_SEED:
        import caffe2keras

        text = TINY_NET.replace(
            'layer { name: "fc"',
            'layer { name: "lrn" type: "LRN" bottom: "pool" top: "lrn" }\n'
            'layer { name: "norm" type: "Normalize" bottom: "pool" top: "norm" }\n'
            'layer { name: "prior" type: "PriorBox" bottom: "pool" bottom: "data" top: "prior" '
            "prior_box_param { min_size: 4 max_size: 8 aspect_ratio: 2 } }\n"
            'layer { name: "fc"',
        )
        with tempfile.TemporaryDirectory() as folder:
            prototxt = Path(folder) / "net.prototxt"
            prototxt.write_text(text)
            path = Path(folder) / "seed.keras"
            caffe2keras.save_model(caffe2keras.convert(prototxt), path)
            _KERAS_SEED.append(path.read_bytes())
    return _KERAS_SEED[0]


def _convert(folder: Path, files: dict[str, bytes], suffix: str) -> tuple[int, str, Path]:
    import keras

    from caffe2keras.cli import main

    keras.backend.clear_session()  # Keras numbers unnamed layers per session: twins must start alike
    prototxt = folder / "net.prototxt"
    prototxt.write_bytes(_bytes(files["prototxt"]))
    argv = ["convert", str(prototxt)]
    if "weights" in files:
        weights = folder / f"net{suffix}"
        weights.write_bytes(_bytes(files["weights"]))
        argv.append(str(weights))
    output = folder / "model.keras"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = main([*argv, "-q", "-o", str(output)])
    return status, stderr.getvalue(), output


def _model_content(path: Path) -> tuple[bytes, list]:
    import h5py
    import numpy as np

    with zipfile.ZipFile(path) as archive:
        config = _numbered_shared_objects(archive.read("config.json").decode())
        with archive.open("model.weights.h5") as member, h5py.File(io.BytesIO(member.read()), "r") as f:
            arrays = []
            f.visititems(lambda name, obj: arrays.append((name, np.asarray(obj))) if hasattr(obj, "shape") else None)
    return config, arrays


def _numbered_shared_objects(config: str) -> str:
    """Keras tags shared objects with their id(): number them in order of appearance instead."""
    import re

    numbers: dict[str, int] = {}
    return re.sub(
        r'"shared_object_id": (\d+)', lambda m: f'"shared_object_id": {numbers.setdefault(m[1], len(numbers))}', config
    )


def _same_model(a: Path, b: Path) -> bool:
    import numpy as np

    config_a, arrays_a = _model_content(a)
    config_b, arrays_b = _model_content(b)
    return (
        config_a == config_b
        and [n for n, _ in arrays_a] == [n for n, _ in arrays_b]
        and all(np.array_equal(x, y) for (_, x), (_, y) in zip(arrays_a, arrays_b))
    )


def run_model_case(case: Case) -> tuple[str, str]:
    """The outcome of one case and a detail (the message, or what went wrong)."""
    with tempfile.TemporaryDirectory(prefix="c2k-fuzz-") as name:
        folder = Path(name)
        if case.kind == "keras-config":
            return _load_keras(folder, case)
        inputs = {"net.prototxt", f"net{case.weights_suffix}"}
        status, stderr, output = _convert(folder, case.files, case.weights_suffix)
        left = sorted(p.name for p in folder.iterdir() if p.name not in inputs | {"model.keras"})
        if left:
            return "leftovers", ", ".join(left)
        if "internal error" in stderr or "please report" in stderr:
            return "internal", stderr.strip()[-400:]
        if "Traceback" in stderr:
            return "traceback", stderr.strip()[-400:]
        if status != 0:
            if output.exists() or not stderr.startswith("caffe2keras: error: ") or status not in (1, 2):
                return "property", f"status {status}, output left: {output.exists()}: {stderr[:300]}"
            return "refused", stderr.strip().splitlines()[0][:300]
        if not output.exists():
            return "property", "exit 0 without an output file"
        reference = case.twin
        if case.truncated_from is not None:
            reference = {**case.files, "weights": case.truncated_from}
        if reference is not None:
            twin_folder = folder / "twin"
            twin_folder.mkdir()
            twin_status, twin_err, twin_output = _convert(twin_folder, reference, case.weights_suffix)
            if twin_status != 0:
                return "property", f"the canonical form does not convert: {twin_err[:300]}"
            if not _same_model(output, twin_output):
                return "property", "converts to a different model than its canonical form"
        return "converted", ""


def _load_keras(folder: Path, case: Case) -> tuple[str, str]:
    import keras

    path = folder / "model.keras"
    path.write_bytes(case.files["keras"])
    try:
        keras.saving.load_model(path, safe_mode=True)
    except Exception as exc:  # Keras' own errors are the clean refusal here
        return "load-refused", f"{type(exc).__name__}: {str(exc)[-200:]}"
    return "loaded", ""
