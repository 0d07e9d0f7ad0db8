"""Hostile and broken inputs (issue 13): each gives one clear error or a correct result, in bounded
memory and time, and leaves nothing behind."""

from __future__ import annotations

import errno
import json
import os
import signal
import struct
import time
import zipfile
import zlib
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras import (
    ArgumentError,
    LayerError,
    ModelFileError,
    NetError,
    ShapeError,
    VerifyError,
    WeightsError,
)
from caffe2keras.api import load_graph
from caffe2keras.caffe import read_weights
from caffe2keras.caffe.limits import MAX_PROTOTXT_BYTES
from caffe2keras.cli import main
from caffe2keras.recursion import recursion_room
from tests.nets import layer, net, write_net

INPUT = {"data": (1, 3, 8, 8)}
CONV = layer("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", name="conv", tops=("conv",))
CONV_WEIGHTS = [("conv", "Convolution", [np.ones((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)])]


def _leftovers(folder: Path, keep=()) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# ------------------------------------------------------------------ whole-net validation


def test_a_layer_without_top_is_refused_with_its_name(tmp_path):
    text = net(INPUT, CONV + layer("ReLU", bottoms=("conv",), tops=(), name="relu1"))
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(LayerError, match=r"Layer 'relu1' \(ReLU\): the layer has no top") as caught:
        caffe2keras.convert(prototxt)
    assert caught.value.field == "top"


@pytest.mark.parametrize("layer_type", ["Convolution", "ReLU", "Concat", "Split", "Softmax"])
def test_a_layer_without_bottom_is_refused_with_its_name(tmp_path, layer_type):
    """Found by the long fuzzing run: a token mutation that dropped a bottom was an IndexError."""
    text = net(INPUT, CONV + layer(layer_type, bottoms=(), tops=("lost",), name="lost"))
    prototxt, _ = write_net(tmp_path, text)
    with pytest.raises(LayerError, match=rf"Layer 'lost' \({layer_type}\): the layer has no bottom") as caught:
        caffe2keras.convert(prototxt)
    assert caught.value.field == "bottom"


def test_a_topless_conv_with_zero_geometry_is_refused(tmp_path):
    bad = layer("Convolution", "convolution_param { num_output: 0 kernel_size: 0 stride: 0 }", tops=(), name="bad")
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV + bad))
    with pytest.raises(LayerError, match="'bad'.*no top"):
        caffe2keras.convert(prototxt)


def test_a_layer_no_output_needs_is_still_checked(tmp_path):
    bad = layer("Convolution", "convolution_param { num_output: 0 kernel_size: 3 }", name="bad", tops=("side",))
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV + bad))
    with pytest.raises(ShapeError, match="'bad'.*num_output must be positive"):
        caffe2keras.convert(prototxt, outputs=["conv"])


def test_weights_of_a_layer_no_output_needs_are_still_checked(tmp_path):
    side = layer("Convolution", "convolution_param { num_output: 2 kernel_size: 1 }", name="side", tops=("side",))
    wrong = [*CONV_WEIGHTS, ("side", "Convolution", [np.ones((5, 3, 1, 1), np.float32), np.zeros(2, np.float32)])]
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV + side), wrong)
    with pytest.raises(WeightsError, match="'side'"):
        caffe2keras.convert(prototxt, weights, outputs=["conv"])


@pytest.mark.parametrize("ratio", ["0", "-2"])
def test_prior_box_aspect_ratio_must_be_positive(tmp_path, ratio):
    prior = layer(
        "PriorBox",
        f"prior_box_param {{ min_size: 4 aspect_ratio: {ratio} }}",
        bottoms=("conv", "data"),
        tops=("priors",),
        name="priors",
    )
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV + prior))
    with pytest.raises(ShapeError, match="aspect ratios must be positive") as caught:
        caffe2keras.convert(prototxt)
    assert caught.value.field == "prior_box_param.aspect_ratio"


def test_empty_outputs_get_an_accurate_message(tmp_path, capsys):
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    with pytest.raises(NetError, match="outputs names no blob"):
        caffe2keras.convert(prototxt, outputs=[])
    assert main(["convert", str(prototxt), "--outputs", "", "-o", str(tmp_path / "m.keras")]) == 1
    assert "outputs names no blob" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arguments",
    [
        {"prototxt": 3},
        {"weights": 4.5},
        {"input_shapes": [1, 3, 8, 8]},
        {"input_shapes": {"data": "1,3,8,8"}},
        {"outputs": "conv"},
        {"data_format": "NHWC"},
    ],
)
def test_wrong_argument_types_raise_the_package_error(tmp_path, arguments):
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    call = {"prototxt": prototxt, **arguments}
    with pytest.raises(ArgumentError) as caught:
        caffe2keras.convert(call.pop("prototxt"), **call)
    assert "Received:" in str(caught.value)
    assert isinstance(caught.value, (TypeError, ValueError))


def test_a_huge_input_shape_is_refused_as_caffe_does(tmp_path):
    prototxt, _ = write_net(tmp_path, net({"data": (1, 1 << 31, 1 << 31, 1)}, CONV))
    with pytest.raises(ShapeError, match="at most 2,147,483,647 values"):
        caffe2keras.convert(prototxt)


# ------------------------------------------------------------------ files that never end, or never open


@pytest.mark.parametrize("role", ["prototxt", "weights"])
def test_devices_and_fifos_are_refused_without_reading(tmp_path, role):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for special in ("/dev/zero", fifo):
        files = (special, weights) if role == "prototxt" else (prototxt, special)
        with pytest.raises(ModelFileError, match="not a regular file"):
            caffe2keras.convert(*files)


def test_an_oversized_prototxt_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.prototxt"
    with open(path, "wb") as f:
        f.truncate(MAX_PROTOTXT_BYTES + 1)  # sparse: nothing is written
    with pytest.raises(ModelFileError, match="at most 67,108,864"):
        caffe2keras.convert(path)


def test_whitespace_and_comments_parse_in_bounded_memory(tmp_path):
    import resource

    text = net(INPUT, CONV)
    padded = text.replace("layer {", "layer {" + " " * 20_000_000 + "# a comment { with 'quotes'\n", 1)
    prototxt, _ = write_net(tmp_path, padded)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    graph = load_graph(prototxt)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [op.name for op in graph.ops] == ["conv"]
    assert grown_mib < 400  # protobuf alone: 3.4 GB


@pytest.mark.parametrize(
    "text",
    [
        'name: "' + "a" * 30_000_000 + '"',  # protobuf alone: 3.8 GB
        'name: "a"' + ' "bb"' * 5_000_000,  # adjacent strings, which protobuf joins: 31 s
        "name: " + "1" * 30_000_000,
        'name: "' + 'a\\"' * 10_000_000 + '"',  # escapes, each a step of the tokenizer
    ],
    ids=["long-string", "many-strings", "long-number", "many-escapes"],
)
def test_long_tokens_are_refused_in_bounded_memory(tmp_path, text):
    import resource

    path = tmp_path / "net.prototxt"
    path.write_text(text)
    del text
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ModelFileError) as caught:
        caffe2keras.convert(path)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 400
    assert len(str(caught.value)) < 500


def test_parse_errors_point_at_the_original_line(tmp_path):
    prototxt, _ = write_net(tmp_path, 'name: "x"\n\n# comment\n\n   layer {\n     bogus_field: 1\n   }\n')
    with pytest.raises(ModelFileError, match=r"line 6, column 6: .*bogus_field"):
        caffe2keras.convert(prototxt)


# ------------------------------------------------------------------ caffemodel shapes


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _caffemodel_with_dims(path: Path, dims: list[int], values: int = 0) -> None:
    shape = _field(1, b"".join(_varint(d) for d in dims))  # BlobShape.dim, packed
    blob = _field(7, shape) + _field(5, struct.pack(f"<{values}f", *([1.0] * values)))  # shape, data
    layer_bytes = _field(1, b"odd") + _field(2, b"Convolution") + _field(7, blob)  # name, type, blobs
    path.write_bytes(_field(100, layer_bytes))  # NetParameter.layer


@pytest.mark.parametrize(
    ("dims", "message"),
    [
        ([1 << 32, 1 << 32], "at most 2,147,483,647"),  # the int64 product wraps to 0
        ([1 << 62, 4, 1], "at most 2,147,483,647"),
        ([1] * 65, "more than 32 axes"),
        ([-1, 0], "negative"),
    ],
)
def test_blob_dims_that_wrap_or_overflow_are_refused(tmp_path, dims, message):
    path = tmp_path / "odd.caffemodel"
    _caffemodel_with_dims(path, dims)
    with pytest.raises(ModelFileError, match=message):
        read_weights(path)
    # A layer the net lacks is not read, as Caffe copies only the net's layers.
    prototxt, _ = write_net(tmp_path, net(INPUT, layer("ReLU", name="relu", tops=("out",))))
    assert caffe2keras.convert(prototxt, path).output_names == ["out"]


def test_a_caffemodel_of_millions_of_tiny_layers_is_refused_quickly(tmp_path):
    path = tmp_path / "many.caffemodel"
    path.write_bytes(_field(100, b"") * 5_000_000)  # 15 MB: once 1.2 GB and 33 s
    started = time.monotonic()
    with pytest.raises(ModelFileError, match="more than 100,000 layers"):
        read_weights(path)
    assert time.monotonic() - started < 10


# ------------------------------------------------------------------ HDF5


def _h5(path: Path, build) -> Path:
    with h5py.File(path, "w") as f:
        build(f.create_group("data"))
    return path


def _conv_h5(group) -> None:
    group["conv/0"] = np.ones((4, 3, 3, 3), np.float32)
    group["conv/1"] = np.zeros(4, np.float32)


def test_hdf5_reads_only_the_nets_layers_and_their_declared_sizes_first(tmp_path):
    def bomb(group):
        _conv_h5(group)
        # 1 GiB of zeros, declared, in chunks never written: reading it would allocate it all.
        group.create_dataset("unused/0", shape=(1 << 28,), dtype="f4", chunks=(1 << 20,), compression="gzip")

    path = _h5(tmp_path / "w.caffemodel.h5", bomb)
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    weights = read_weights(path, {"conv"})
    assert sorted(weights) == ["conv"]
    model = caffe2keras.convert(prototxt, path)
    np.testing.assert_array_equal(model.get_layer("conv").get_weights()[0], np.ones((3, 3, 3, 4)))


def test_hdf5_blob_shape_is_checked_before_its_values_are_read(tmp_path):
    def wrong(group):
        group.create_dataset("conv/0", shape=(1 << 28,), dtype="f4", chunks=(1 << 20,), compression="gzip")
        group["conv/1"] = np.zeros(4, np.float32)

    path = _h5(tmp_path / "w.caffemodel.h5", wrong)
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    with pytest.raises(WeightsError, match=r"weight blob 0 has shape \(268435456,\)"):
        caffe2keras.convert(prototxt, path)


def test_a_gzip_chunk_inflating_past_its_size_is_refused(tmp_path):
    def bomb(group):
        _conv_h5(group)
        del group["conv/1"]
        dataset = group.create_dataset("conv/1", shape=(4,), dtype="f4", chunks=(4,), compression="gzip")
        dataset.id.write_direct_chunk((0,), zlib.compress(bytes(64 << 20)))  # 64 MiB for a 16-byte chunk

    path = _h5(tmp_path / "w.caffemodel.h5", bomb)
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    with pytest.raises(ModelFileError, match="inflates past its declared 16 bytes"):
        caffe2keras.convert(prototxt, path)


def test_gzip_and_shuffle_compressed_hdf5_reads_exactly(tmp_path):
    values = np.arange(4 * 3 * 3 * 3, dtype=np.float32).reshape(4, 3, 3, 3)

    def compressed(group):
        group.create_dataset("conv/0", data=values, chunks=(2, 3, 2, 2), compression="gzip", shuffle=True)
        group.create_dataset("conv/1", data=np.arange(4, dtype=np.float32), chunks=(3,), fletcher32=True)

    path = _h5(tmp_path / "w.caffemodel.h5", compressed)
    blobs = read_weights(path)["conv"].blobs
    np.testing.assert_array_equal(blobs[0].data, values)
    np.testing.assert_array_equal(blobs[1].data, np.arange(4))


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda g: g.create_dataset("conv/0", data=np.array(["a", "bc"], dtype=object)), id="vlen-str"),
        pytest.param(
            lambda g: g.create_dataset("conv/0", shape=(4,), dtype="f4", external=[("/dev/zero", 0, 16)]), id="external"
        ),
        pytest.param(lambda g: g.__setitem__("conv", h5py.ExternalLink("/etc/passwd", "/x")), id="external-link"),
        pytest.param(lambda g: g.create_dataset("conv/0", data=np.zeros(4), compression="lzf"), id="lzf"),
        pytest.param(lambda g: g.create_dataset("conv/00", data=np.zeros(4)), id="index-00"),
    ],
)
def test_hostile_hdf5_datasets_are_refused(tmp_path, build):
    path = _h5(tmp_path / "w.caffemodel.h5", build)
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    with pytest.raises((ModelFileError, WeightsError)):
        caffe2keras.convert(prototxt, path)


def test_bit_flipped_hdf5_files_give_clear_errors(tmp_path):
    good = _h5(tmp_path / "good.caffemodel.h5", _conv_h5).read_bytes()
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV))
    rng = np.random.default_rng(13)
    path = tmp_path / "flipped.caffemodel.h5"
    for _ in range(60):
        data = bytearray(good)
        for position in rng.integers(0, len(data), 4):
            data[position] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(data))
        try:
            caffe2keras.convert(prototxt, path)
        except caffe2keras.Caffe2KerasError:
            pass  # a clean refusal; converting (a flip in unused bytes or in values) is fine too


# ------------------------------------------------------------------ deep nets


@pytest.mark.slow
def test_a_chain_of_2000_layers_converts_saves_and_reloads(tmp_path):
    body = "".join(
        layer("ReLU", bottoms=(f"b{i - 1}" if i else "data",), tops=(f"b{i}",), name=f"r{i}") for i in range(2000)
    )
    prototxt, _ = write_net(tmp_path, net({"data": (1, 2, 2, 2)}, body))
    model = caffe2keras.convert(prototxt)
    caffe2keras.save_model(model, tmp_path / "deep.keras")
    with recursion_room(len(model.layers)):
        reloaded = keras.saving.load_model(tmp_path / "deep.keras", safe_mode=True)
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(np.asarray(reloaded(x)), np.maximum(x, 0))


# ------------------------------------------------------------------ outputs


def test_a_full_disk_is_a_clear_error_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    out = tmp_path / "out"
    out.mkdir()
    real_pwrite = os.pwrite

    def full_after_a_few_bytes(fd, data, offset):
        if offset > 512:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full_after_a_few_bytes)
    assert main(["convert", str(prototxt), str(weights), "-o", str(out / "m.keras")]) == 1
    assert capsys.readouterr().err.strip().endswith("cannot write the file: No space left on device.")
    assert _leftovers(out) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_during_the_save_leave_nothing(tmp_path, capsys, monkeypatch, signum):
    from caffe2keras import saving

    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    out = tmp_path / "out"
    out.mkdir()

    def killed_midway(model, path, **kwargs):
        Path(path).write_bytes(b"half a zip")
        os.kill(os.getpid(), signum)
        raise AssertionError("the signal should have interrupted the save")

    monkeypatch.setattr(saving, "save_model", killed_midway)
    previous = signal.signal(signum, signal.SIG_DFL)  # as in a terminal (CI may run under nohup)
    try:
        assert main(["convert", str(prototxt), str(weights), "-o", str(out / "m.keras")]) == 128 + signum
        assert signal.getsignal(signum) is signal.SIG_DFL  # the CLI's handler is gone again
    finally:
        signal.signal(signum, previous)
    assert "terminated by" in capsys.readouterr().err
    assert _leftovers(out) == []


def test_an_ignored_hang_up_stays_ignored(tmp_path, monkeypatch):
    """Under nohup, SIGHUP is ignored: the conversion must go on, not end as terminated."""
    from caffe2keras import saving

    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    real_save = saving.save_model

    def hung_up_midway(model, path, **kwargs):
        os.kill(os.getpid(), signal.SIGHUP)
        real_save(model, path, **kwargs)

    monkeypatch.setattr(saving, "save_model", hung_up_midway)
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        assert main(["convert", str(prototxt), str(weights), "-o", str(tmp_path / "m.keras")]) == 0
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)
    assert (tmp_path / "m.keras").exists()


def test_output_naming_an_input_is_refused(tmp_path, capsys):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    before = weights.read_bytes()
    alias = tmp_path / "alias.keras"
    alias.symlink_to(weights)
    for output in (weights, tmp_path / "." / weights.name, alias):
        assert main(["convert", str(prototxt), str(weights), "-o", str(output)]) == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert weights.read_bytes() == before


def test_a_legal_246_character_output_name_works(tmp_path, capsys):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    output = tmp_path / ("m" * 240 + ".keras")
    assert main(["convert", str(prototxt), str(weights), "-q", "-o", str(output)]) == 0
    assert keras.saving.load_model(output).output_names == ["conv"]
    assert _leftovers(tmp_path, keep=("net.prototxt", "net.caffemodel")) == [output.name]


# ------------------------------------------------------------------ verify


def test_verify_runs_opencv_on_a_memory_data_net(tmp_path):
    pytest.importorskip("cv2")
    memory = (
        'name: "md"\nlayer { name: "data" type: "MemoryData" top: "data" top: "label" include { phase: TEST }\n'
        "  memory_data_param { batch_size: 1 channels: 3 height: 8 width: 8 } }\n"
    )
    prototxt, weights = write_net(tmp_path, memory + CONV, CONV_WEIGHTS)
    report = caffe2keras.verify(prototxt, weights)
    assert report.ok and report.compared


def test_verify_refuses_an_object_array_npz(tmp_path, capsys):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    npz = tmp_path / "blobs.npz"
    np.savez(npz, data=np.zeros(INPUT["data"], np.float32), conv=np.array([{"a": 1}], dtype=object))
    with pytest.raises(VerifyError, match="array 'conv' holds object values"):
        caffe2keras.verify(prototxt, weights, against=npz)
    assert main(["verify", str(prototxt), str(weights), "--against", str(npz)]) == 2
    assert "internal error" not in capsys.readouterr().err


# ------------------------------------------------------------------ loading a .keras


def _saved_prior_box(tmp_path: Path) -> Path:
    prior = layer("PriorBox", "prior_box_param { min_size: 4 }", bottoms=("conv", "data"), tops=("p",), name="p")
    prototxt, _ = write_net(tmp_path, net(INPUT, CONV + prior))
    path = tmp_path / "prior.keras"
    caffe2keras.save_model(caffe2keras.convert(prototxt), path)
    return path


def _with_config(path: Path, edit) -> Path:
    edited = path.with_name("edited.keras")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(edited, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "config.json":
                config = json.loads(data)
                for layer_config in config["config"]["layers"]:
                    edit(layer_config)
                data = json.dumps(config).encode()
            target.writestr(item, data)
    return edited


@pytest.mark.parametrize(
    "aspect_ratios", [list(range(1, 1_000_001)), [0.0], [-1.0]], ids=["a-million", "zero", "negative"]
)
def test_loading_a_prior_box_config_fails_fast(tmp_path, aspect_ratios):
    def edit(layer_config):
        if layer_config["class_name"] == "PriorBox":
            layer_config["config"]["aspect_ratios"] = aspect_ratios

    edited = _with_config(_saved_prior_box(tmp_path), edit)
    started = time.monotonic()
    with pytest.raises((TypeError, ValueError), match="PriorBox takes at most 1024 positive aspect_ratios"):
        keras.saving.load_model(edited)  # Keras wraps the layer's ValueError in a TypeError
    assert time.monotonic() - started < 30


def test_huge_shapes_in_the_projects_layer_configs_are_refused(tmp_path):
    from caffe2keras.layers import Affine, LearnedTensor, PriorBox

    with pytest.raises(ValueError, match="Received: value_shape="):
        LearnedTensor(value_shape=[1 << 31, 1 << 31])
    with pytest.raises(ValueError, match="Received: param_shape="):
        Affine(param_shape=[1 << 31, 1 << 31])
    prior = PriorBox(min_sizes=[4], aspect_ratios=[2.0])
    with pytest.raises(ValueError, match="Received: input_shape="):
        prior.build([(1, 1 << 20, 1 << 20, 1), (1, 8, 8, 3)])


def test_checked_arguments_of_the_weights_reader(tmp_path):
    with pytest.raises(ArgumentError):
        read_weights(None)
    with pytest.raises(ModelFileError, match="is a directory"):
        read_weights(tmp_path)
