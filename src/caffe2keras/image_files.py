"""Image files read safely: the declared size checked before decoding, truncated files refused.

OpenCV decodes what it can: a JPEG cut short comes back with its missing rows grey, and a PNG
that declares 30000x30000 pixels is allocated in full before a byte of it is read. So each file
is checked before OpenCV sees it:

* PNG: the signature, every chunk's length and CRC, a closed zlib stream in the IDAT chunks that
  inflates to the bytes IHDR's size implies, and the IEND chunk; the size is IHDR's.
* JPEG: the segments up to the end-of-image marker, the size is the frame header's (SOFn).
* BMP and the Netpbm formats (PGM, PPM): the size in their headers.
* Other formats OpenCV reads (TIFF, WebP...) are held to the same pixel limit by OpenCV itself.

The limit is :data:`DEFAULT_MAX_PIXELS` (width x height); the ``CAFFE2KERAS_MAX_IMAGE_PIXELS``
environment variable raises or lowers it.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import re
import struct
import tempfile
import warnings
import zlib
from collections.abc import Iterator

import numpy as np

from caffe2keras.console import printable
from caffe2keras.errors import ConversionWarning, ModelFileError

DEFAULT_MAX_PIXELS = 1 << 26  # 8192 x 8192: 192 MB decoded, 768 MB as the float32 a model takes
MAX_PIXELS_VARIABLE = "CAFFE2KERAS_MAX_IMAGE_PIXELS"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ZLIB_CHUNK = 1 << 20
# JPEG's frame headers: SOF0-SOF15 but DHT (C4), JPG (C8) and DAC (CC).
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM carry no length
NETPBM_HEADER = re.compile(rb"P([1-6])(?:\s+|#[^\n]*\n)+(\d+)(?:\s+|#[^\n]*\n)+(\d+)")


def max_pixels() -> int:
    """The pixel limit: :data:`DEFAULT_MAX_PIXELS`, or the environment's."""
    value = os.environ.get(MAX_PIXELS_VARIABLE)
    if value is None:
        return DEFAULT_MAX_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ModelFileError(
            MAX_PIXELS_VARIABLE,
            f"the pixel limit must be a whole number >= 1. Received: {MAX_PIXELS_VARIABLE}={value!r}",
        )
    return int(value)


def decode_image(path: str | os.PathLike, flags: int) -> np.ndarray:
    """The image in ``path`` decoded by OpenCV (``cv2.imdecode(..., flags)``), after the checks above."""
    import cv2

    # OpenCV logs its decoders' failures on stderr; the error raised below says it once.
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is not None:
        logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    limit = max_pixels()
    # OpenCV's own limit, for the formats read here without a check of ours; read on first use.
    os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(limit))
    if not os.path.isfile(path):
        raise ModelFileError(path, "is a directory, not an image file." if os.path.isdir(path) else "no such file.")
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ModelFileError(path, "the file is empty; it is not an image.")
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                size = declared_size(data, path)
                if size is not None:
                    check_pixels(path, *size, limit)
                with _decoder_messages() as said:
                    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except OSError as exc:
        raise ModelFileError(path, f"cannot read the file: {exc.strerror or exc}.") from None
    except cv2.error as exc:  # an allocation or a decoder failure inside OpenCV
        raise ModelFileError(path, f"OpenCV cannot decode it: {str(exc).strip().splitlines()[-1]}.") from None
    if image is None:
        raise ModelFileError(path, "OpenCV cannot read it as an image" + (f" ({said[0]})." if said else "."))
    if said:
        warnings.warn(f"{path}: the image is damaged: {said[0]}", ConversionWarning, stacklevel=2)
    return image


@contextlib.contextmanager
def _decoder_messages() -> Iterator[list[str]]:
    """The lines the C decoders (libjpeg: "Corrupt JPEG data...") print on stderr while the block
    runs, kept from the terminal so that the caller says them once, as our error or warning."""
    said: list[str] = []
    with tempfile.TemporaryFile() as captured:  # a file, not a pipe: a full pipe would stall the decoder
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read(1 << 12).decode(errors="replace")
            said.extend(printable(line.strip()) for line in text.splitlines() if line.strip())


def check_pixels(path, width: int, height: int, limit: int) -> None:
    if width < 1 or height < 1:
        raise ModelFileError(path, f"the image declares no pixels. Received: size={width}x{height}")
    if width * height > limit:
        raise ModelFileError(
            path,
            f"the image declares {width}x{height} = {width * height:,} pixels, more than the limit of {limit:,} "
            f"(set {MAX_PIXELS_VARIABLE} to raise it). Received: size={width}x{height}",
        )


def declared_size(data, path) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, BMP or Netpbm file, checked whole; None
    for another format."""
    head = bytes(data[:64])
    if head.startswith(PNG_SIGNATURE):
        return _png_size(data, path)
    if head.startswith(b"\xff\xd8"):
        return _jpeg_size(data, path)
    if head.startswith(b"BM") and len(head) >= 26:
        width, height = struct.unpack_from("<ii", head, 18)
        return width, abs(height)  # a negative height stores the rows top-down
    match = NETPBM_HEADER.match(head)
    if match:
        return int(match[2]), int(match[3])
    return None


def _corrupt(path, what: str) -> ModelFileError:
    return ModelFileError(path, f"the image is truncated or corrupt: {what}.")


def _png_size(data, path) -> tuple[int, int]:
    position, header, stream, inflated = len(PNG_SIGNATURE), None, zlib.decompressobj(), 0
    while True:
        if position + 8 > len(data):
            raise _corrupt(path, "the file ends before its IEND chunk")
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 8 + length + 4
        if end > len(data):
            raise _corrupt(path, f"chunk {kind.decode('latin-1')!r} runs past the end of the file")
        body = data[position + 4 : end - 4]
        if zlib.crc32(body) != struct.unpack_from(">I", data, end - 4)[0]:
            raise _corrupt(path, f"chunk {kind.decode('latin-1')!r} fails its CRC")
        if kind == b"IHDR" and length >= 13:
            header = struct.unpack_from(">IIBBBBB", data, position + 8)
            check_pixels(path, header[0], header[1], max_pixels())
        elif kind == b"IDAT" and header is not None:
            inflated += _inflate(stream, body[4:], path)
        elif kind == b"IEND":
            break
        position = end
    if header is None:
        raise _corrupt(path, "no IHDR chunk before its image data")
    expected = _png_data_size(*header[:4], interlaced=header[6] == 1)
    if not stream.eof or inflated != expected:
        raise _corrupt(path, f"its image data holds {inflated:,} bytes, its header {expected:,}")
    return header[0], header[1]


# PNG's colour types: the samples per pixel of each.
PNG_SAMPLES = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
# Adam7's passes: (first row, first column, row step, column step).
ADAM7 = ((0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1))


def _png_data_size(width: int, height: int, depth: int, colour: int, interlaced: bool) -> int:
    """The bytes the IDAT stream inflates to: each row's filter byte and packed samples, per pass."""
    bits = depth * PNG_SAMPLES.get(colour, 0)

    def rows(w: int, h: int) -> int:
        return 0 if w == 0 or h == 0 else h * (1 + (w * bits + 7) // 8)

    if not interlaced:
        return rows(width, height)
    return sum(
        rows((width - column + step_x - 1) // step_x, (height - row + step_y - 1) // step_y)
        for row, column, step_y, step_x in ADAM7
    )


def _inflate(stream, compressed: bytes, path) -> int:
    """Feed IDAT data through zlib without keeping its output; the bytes it inflated to."""
    try:
        inflated = len(stream.decompress(compressed, ZLIB_CHUNK))
        while stream.unconsumed_tail:
            inflated += len(stream.decompress(stream.unconsumed_tail, ZLIB_CHUNK))
    except zlib.error as exc:
        raise _corrupt(path, f"its image data does not inflate ({exc})") from None
    return inflated


def _jpeg_size(data, path) -> tuple[int, int]:
    position, size = 2, None
    while True:
        marker_at = data.find(b"\xff", position)
        if marker_at < 0 or marker_at + 1 >= len(data):
            raise _corrupt(path, "the file ends before its end-of-image marker")
        marker = data[marker_at + 1]
        if marker in (0xFF, 0x00) or marker in JPEG_STANDALONE:  # fill bytes, stuffed zeros, restarts
            position = marker_at + 1 if marker == 0xFF else marker_at + 2
            continue
        if marker == 0xD9:
            break
        if marker_at + 4 > len(data):
            raise _corrupt(path, "a segment header is cut off")
        length = struct.unpack_from(">H", data, marker_at + 2)[0]
        end = marker_at + 2 + length
        if length < 2 or end > len(data):
            raise _corrupt(path, f"segment 0xFF{marker:02X} runs past the end of the file")
        if marker in JPEG_FRAMES:
            if length < 8:
                raise _corrupt(path, "its frame header is cut off")
            height, width = struct.unpack_from(">HH", data, marker_at + 5)
            size = (width, height)
            check_pixels(path, width, height, max_pixels())
        position = end  # after a scan header (SOS), the entropy-coded data is searched for markers
    if size is None:
        raise _corrupt(path, "no frame header (SOFn)")
    return size
