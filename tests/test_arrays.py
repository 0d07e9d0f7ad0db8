"""owned_copy: the one copy of each weight, whatever view a converter makes of a blob."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from caffe2keras.arrays import ALIGNMENT, SLAB_BYTES, is_owned, owned_copy, release_pages


def random_views(seed: int, count: int):
    rng = np.random.default_rng(seed)
    for _ in range(count):
        ndim = int(rng.integers(0, 5))
        array = rng.standard_normal(tuple(int(n) for n in rng.integers(0, 7, ndim)))
        view = array.transpose(rng.permutation(ndim))
        if ndim and view.shape[0] > 1 and rng.random() < 0.3:
            view = view[::-2]
        yield view


@pytest.mark.parametrize("seed", range(3))
def test_owned_copy_equals_any_view(seed):
    for view in random_views(seed, 300):
        copy = owned_copy(view)
        assert copy.shape == view.shape and copy.dtype == np.float32
        assert np.array_equal(copy, view.astype(np.float32))
        assert copy.flags.c_contiguous and copy.flags.writeable and is_owned(copy)
        assert copy.size == 0 or copy.ctypes.data % ALIGNMENT == 0


def test_large_transposing_copies_cross_tiles_and_slabs():
    # Conv kernel (O, I, kh, kw) -> (kh, kw, I, O) and an FC row permutation, over several slabs.
    kernel = np.random.default_rng(0).standard_normal((300, 70, 3, 3), dtype=np.float32)
    assert np.array_equal(owned_copy(kernel.transpose(2, 3, 1, 0)), kernel.transpose(2, 3, 1, 0))
    weight = np.random.default_rng(1).standard_normal((1500, 128 * 7 * 7), dtype=np.float32)
    assert weight.nbytes > 2 * SLAB_BYTES
    view = weight.reshape(1500, 128, 7, 7).transpose(2, 3, 1, 0)
    assert np.array_equal(owned_copy(view), view)


def test_reshaped_owned_copies_stay_owned_and_others_are_not():
    copy = owned_copy(np.ones((4, 6)))
    assert is_owned(copy.reshape(24))
    assert not is_owned(copy.T) and not is_owned(np.ones((4, 6), np.float32))


def test_release_pages_keeps_values_of_mapped_arrays(tmp_path):
    array = np.random.default_rng(3).standard_normal(5 * mmap.PAGESIZE, dtype=np.float32)
    path = tmp_path / "data.bin"
    path.write_bytes(b"\0" * 12 + array.tobytes())
    with open(path, "rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = np.frombuffer(mapped, np.uint8)[12:].view(np.float32)
    assert np.array_equal(owned_copy(view[::-1]), array[::-1])
    release_pages(view)
    assert np.array_equal(view, array)


def test_release_pages_leaves_writable_memory_alone():
    big = owned_copy(np.arange(4 * mmap.PAGESIZE, dtype=np.float32))  # anonymous mapped memory
    release_pages(big)
    release_pages(np.ones(3))
    assert np.array_equal(big, np.arange(4 * mmap.PAGESIZE, dtype=np.float32))
    assert np.array_equal(owned_copy(big[::-1]), np.arange(4 * mmap.PAGESIZE, dtype=np.float32)[::-1])
    assert np.array_equal(big, np.arange(4 * mmap.PAGESIZE, dtype=np.float32))
