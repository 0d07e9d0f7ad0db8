"""Copies of weight arrays that cost no more memory than their result.

Converted weights start as views of the Caffe blobs (transposed, reshaped),
and those are often views of a memory-mapped ``.caffemodel``. :func:`owned_copy`
turns such a view into the array a Keras variable adopts: C-contiguous and
aligned so that JAX on the CPU takes it without copying it again, written tile
by tile (a transposing copy is cache-bound otherwise), and releasing the
mapped source pages it has read as it goes, so that copying a 400 MB blob does
not keep 400 MB of file pages resident beside the copy.
"""

from __future__ import annotations

import itertools
import math
import mmap
import os
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# XLA's CPU client adopts host buffers with this alignment instead of copying them.
ALIGNMENT = 64
# Tiles of a transposing copy stay within the L2 cache; slabs bound the mapped pages resident at once.
TILE_BYTES = 256 << 10
SLAB_BYTES = 16 << 20
MAPPED_BYTES = 1 << 20  # buffers from this size on are anonymous memory maps
MAX_THREADS = 4

_owned_buffers: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def owned_copy(array: np.ndarray, dtype=np.float32) -> np.ndarray:
    """A C-contiguous, aligned copy of ``array`` in ``dtype``, which nothing else references."""
    array = np.asarray(array)
    out = _aligned_empty(array.shape, np.dtype(dtype))
    if out.size == 0 or out.ndim == 0:
        out[...] = array
        return out
    # Walk the source's memory front to back: its axes from the outermost (largest stride) inwards.
    order = sorted(range(array.ndim), key=lambda axis: -abs(array.strides[axis]))
    outer = order[0]
    rows = array.shape[outer]
    slab = max(1, min(rows, SLAB_BYTES // max(1, array.nbytes // max(1, rows))))

    def copy_slab(start: int) -> None:
        index = (slice(None),) * outer + (slice(start, start + slab),)
        _copy_tiled(out[index].transpose(order), array[index].transpose(order))
        release_pages(array[index])

    starts = range(0, rows, slab)
    workers = min(len(starts), os.cpu_count() or 1, MAX_THREADS)
    if workers > 1:  # numpy copies without the GIL: slabs go in parallel
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(copy_slab, starts))
    else:
        for start in starts:
            copy_slab(start)
    return out


def is_owned(array: np.ndarray) -> bool:
    """Whether ``array`` is (a C-contiguous, aligned view of) the result of :func:`owned_copy`,
    which may be handed to a backend without a copy."""
    root = array
    while isinstance(root.base, np.ndarray):
        root = root.base
    return (
        _owned_buffers.get(id(root)) is root
        and array.flags.c_contiguous
        and (array.size == 0 or array.ctypes.data % ALIGNMENT == 0)
    )


def _aligned_empty(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes >= MAPPED_BYTES and hasattr(mmap, "MAP_PRIVATE"):
        # Page-aligned private memory of its own. numpy asks the kernel for huge pages for big
        # arrays, and on a busy machine the compaction that takes costs more than the copy.
        raw = np.frombuffer(mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE), np.uint8)
    else:
        raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    _owned_buffers[id(raw)] = raw
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _copy_tiled(dest: np.ndarray, src: np.ndarray) -> None:
    """``dest[...] = src`` where ``src`` has its axes in its memory order: in cache-sized tiles
    when ``dest``'s innermost axis is another one (a transposing copy)."""
    src, dest = _merge_axes(src, dest)
    ndim = src.ndim
    dest_inner = min(range(ndim), key=lambda axis: abs(dest.strides[axis]))
    if ndim < 2 or dest_inner == ndim - 1:
        np.copyto(dest, src, casting="unsafe")
        return
    budget = TILE_BYTES // src.itemsize
    blocks = [1] * ndim
    side = max(8, math.isqrt(budget) // 2)
    for axis in (ndim - 1, dest_inner):
        blocks[axis] = min(src.shape[axis], side)
    for axis in reversed(range(ndim)):
        if axis not in (ndim - 1, dest_inner):
            blocks[axis] = max(1, min(src.shape[axis], budget // math.prod(blocks)))
    for corner in itertools.product(*(range(0, n, b) for n, b in zip(src.shape, blocks))):
        index = tuple(slice(c, c + b) for c, b in zip(corner, blocks))
        np.copyto(dest[index], src[index], casting="unsafe")


def _merge_axes(src: np.ndarray, dest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Join neighbouring axes that are contiguous with each other in both arrays (fewer, longer axes)."""
    if src.ndim < 2:
        return src, dest
    shape, src_strides, dest_strides = [src.shape[0]], [src.strides[0]], [dest.strides[0]]
    for size, s_stride, d_stride in zip(src.shape[1:], src.strides[1:], dest.strides[1:]):
        if src_strides[-1] == s_stride * size and dest_strides[-1] == d_stride * size:
            shape[-1] *= size
            src_strides[-1], dest_strides[-1] = s_stride, d_stride
        else:
            shape.append(size)
            src_strides.append(s_stride)
            dest_strides.append(d_stride)
    as_strided = np.lib.stride_tricks.as_strided
    return as_strided(src, shape, src_strides, writeable=False), as_strided(dest, shape, dest_strides)


def release_pages(view: np.ndarray) -> None:
    """Drop this process's resident pages under ``view`` if it lies in a read-only memory map.

    The pages stay in the page cache and are read back on the next access, so
    this changes memory use, never values. Other arrays are left alone.
    """
    root = view
    while isinstance(root.base, np.ndarray):
        root = root.base
    exported = root.base
    # Only a read-only map: dropping pages of writable (anonymous or copy-on-write) memory loses them.
    if not (isinstance(exported, memoryview) and exported.readonly and isinstance(exported.obj, mmap.mmap)):
        return
    if exported.obj.closed or view.size == 0 or not hasattr(mmap, "MADV_DONTNEED"):
        return
    extents = [(n - 1) * s for n, s in zip(view.shape, view.strides)]
    low = view.ctypes.data + sum(e for e in extents if e < 0) - root.ctypes.data
    high = view.ctypes.data + sum(e for e in extents if e > 0) + view.itemsize - root.ctypes.data
    first = -(-low // mmap.PAGESIZE) * mmap.PAGESIZE
    last = high // mmap.PAGESIZE * mmap.PAGESIZE
    if last > first:
        exported.obj.madvise(mmap.MADV_DONTNEED, first, last - first)
