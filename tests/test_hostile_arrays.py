""".npy/.npz inputs, reference blobs and mean files (issue 22): pickles, strings, zip bombs, FIFOs and
devices are refused by their declared sizes and types, before their data is read."""

from __future__ import annotations

import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

import caffe2keras
from caffe2keras import ModelFileError, VerifyError
from caffe2keras.numpy_files import MAX_ARRAY_FILE_BYTES, read_npy, read_npz
from tests.cli_process import assert_one_error, run_cli
from tests.nets import layer, net, write_net

INPUT = {"data": (1, 3, 8, 8)}
CONV = layer("Convolution", "convolution_param { num_output: 4 kernel_size: 3 }", name="conv", tops=("conv",))
CONV_WEIGHTS = [("conv", "Convolution", [np.ones((4, 3, 3, 3), np.float32), np.zeros(4, np.float32)])]


def _npz_with_member(path, name: str, payload: bytes, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        archive.writestr(name, payload)
    return path


def _declare_member_size(path, size: int) -> None:
    """Rewrite the uncompressed size the central directory declares for the (only) member."""
    data = bytearray(path.read_bytes())
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)
    path.write_bytes(bytes(data))


def test_a_raw_pickle_member_is_refused_without_unpickling(tmp_path):
    path = _npz_with_member(tmp_path / "blobs.npz", "data.npy", pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="array 'data' is not a .npy array"):
        read_npz(path)


@pytest.mark.parametrize(
    "array", [np.array(["ab"]), np.array([1 + 2j]), np.zeros(2, dtype=[("a", "f4")]), np.array([b"x"])]
)
def test_arrays_of_anything_but_numbers_are_refused(tmp_path, array):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(ModelFileError, match="arrays must hold plain numbers"):
        read_npy(tmp_path / "x.npy")


def test_a_declared_bomb_is_refused_before_decompressing(tmp_path):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, x=np.zeros(1000, np.float32))
    _declare_member_size(path, 0xFFFFFFF0)
    with pytest.raises(ModelFileError, match="decompressed; an .npz may hold at most"):
        read_npz(path)


def test_a_header_with_a_bracket_left_open_is_refused(tmp_path):
    """numpy reads a version 1 header through Python's tokenizer, which raises TokenError, not
    SyntaxError, on a bracket left open (found by the fuzz run: a bit flip in the padding)."""
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 3, 12), }          ("
    header += b" " * (118 - len(header)) + b"\n"
    path = tmp_path / "x.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + bytes(288))
    with pytest.raises(ModelFileError, match="not a .npy array"):
        read_npy(path)


def test_a_header_declaring_more_than_the_member_holds_is_refused(tmp_path):
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000, 100), }"
    header += b" " * (118 - len(header)) + b"\n"
    payload = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64
    path = _npz_with_member(tmp_path / "bomb.npz", "x.npy", payload)
    with pytest.raises(ModelFileError, match="truncated or corrupt"):
        read_npz(path)


def test_a_member_decompressing_past_its_declared_size_stops_there(tmp_path):
    path = tmp_path / "liar.npz"
    np.savez_compressed(path, x=np.zeros(1 << 20, np.float32))
    _declare_member_size(path, 200)
    with pytest.raises(ModelFileError):
        read_npz(path)


def test_arrays_round_trip(tmp_path):
    arrays = {"a": np.arange(24, dtype=">i2").reshape(2, 3, 4), "b": np.asfortranarray(np.eye(3)), "c": np.ones(0)}
    np.savez_compressed(tmp_path / "x.npz", **arrays)
    got = read_npz(tmp_path / "x.npz")
    assert all(np.array_equal(got[name], value) and got[name].dtype == value.dtype for name, value in arrays.items())
    assert got["a"].flags.writeable


def test_an_oversized_npy_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.npy"
    with open(path, "wb") as file:
        file.truncate(MAX_ARRAY_FILE_BYTES + 1)
    with pytest.raises(ModelFileError, match="may have at most"):
        read_npy(path)


def test_verify_refuses_string_inputs_and_pickled_references(tmp_path):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    np.save(tmp_path / "strings.npy", np.full(INPUT["data"], "1.5"))
    with pytest.raises(VerifyError, match="strings.npy' as a .npy array.*plain numbers"):
        caffe2keras.verify(prototxt, weights, inputs=tmp_path / "strings.npy")
    pickled = _npz_with_member(tmp_path / "blobs.npz", "conv.npy", pickle.dumps(object))
    with pytest.raises(VerifyError, match="cannot read the reference blobs"):
        caffe2keras.verify(prototxt, weights, against=pickled)


def test_fifos_and_devices_are_refused_without_reading(tmp_path):
    from caffe2keras.preprocessing import read_mean_image

    os.mkfifo(tmp_path / "pipe.npz")
    (tmp_path / "zero.binaryproto").symlink_to("/dev/zero")
    for read, path in [(read_npz, "pipe.npz"), (read_npy, "pipe.npz"), (read_mean_image, "zero.binaryproto")]:
        with pytest.raises(ModelFileError, match="not a regular file"):
            read(tmp_path / path)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["against", "input", "mean"])
def test_fifos_and_devices_are_refused_at_once_through_the_cli(tmp_path, role):
    prototxt, weights = write_net(tmp_path, net(INPUT, CONV), CONV_WEIGHTS)
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    device = tmp_path / "mean.binaryproto"
    device.symlink_to("/dev/zero")
    if role == "against":
        argv = ["verify", prototxt, weights, "--against", fifo]
    elif role == "input":
        os.mkfifo(tmp_path / "pipe.npy")
        argv = ["verify", prototxt, weights, "--input", tmp_path / "pipe.npy", "--against", "opencv"]
    else:
        argv = ["convert", prototxt, weights, "--mean", device, "-o", tmp_path / "m.keras"]
    result = run_cli(*argv, timeout=60)
    assert_one_error(result)
    assert not (tmp_path / "m.keras").exists()
