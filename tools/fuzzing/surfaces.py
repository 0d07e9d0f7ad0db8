"""The families of hostile inputs beyond the model files, each a hypothesis strategy of command
cases (run and checked by :mod:`tools.fuzzing.commands`):

* ``image``: PNG, JPEG, BMP and PGM/PPM files, valid, truncated, bit-flipped, with forged header
  sizes (bombs by declared size: refused before decoding), or not images at all, to ``predict``;
* ``mean``: mean files (BlobProtos, mutated) and ``--mean``/``--scale`` values, NaN and Inf among
  them, to ``convert``;
* ``array``: ``.npy`` inputs and ``.npz`` references of every dtype, cut or forged, to ``verify``;
* ``labels``: labels files with odd line breaks, control characters, markup and bad UTF-8;
* ``catalog``: Model Zoo catalogs with hostile names, file names, URLs and sizes;
* ``http``: a catalog whose files come from a misbehaving server (:mod:`tools.fuzzing.server`);
* ``weights``: ``weights --into`` models and names that do not fit;
* ``free-size``: free-size nets at every size from 1 to just past their minimum, through
  ``predict`` and ``verify``.
"""

from __future__ import annotations

import io
import json
import struct
import zlib

from tools.fuzzing.commands import FREE, FREE_NETS, Seed, available_free_nets
from tools.fuzzing.harness import Case
from tools.fuzzing.server import MODES

TINY = {"in/tiny.prototxt": Seed("tiny.prototxt"), "in/tiny.caffemodel": Seed("tiny.caffemodel")}
TINY_CLASSES = 5
# Values given as text on a command line, some of them not finite in float32.
NUMBERS = ["0", "1", "104", "-3.5", "1e39", "-1e39", "nan", "inf", "-inf", "NaN", "1e-45", "3.4e38", "", "x"]
NETWORK_WALL_S = 45.0  # a download that hangs waits without using CPU time


def _not_finite(text: str) -> bool:
    import numpy as np

    try:
        with np.errstate(over="ignore"):
            return not np.isfinite(np.float32(float(text)))
    except ValueError:
        return False


def _flips(draw, st, data: bytes, most: int = 8) -> bytes:
    data = bytearray(data)
    for _ in range(draw(st.integers(1, most))):
        if data:
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
    return bytes(data)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def forged_image(form: str, width: int, height: int) -> bytes:
    """A small file whose header declares ``width`` x ``height``."""
    if form == "png":
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        idat = zlib.compress(bytes(4096))
        return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    if form == "jpg":  # a JPEG frame holds sizes up to 65535
        frame = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, min(height, 65535), min(width, 65535), 3) + bytes(9)
        return b"\xff\xd8" + frame + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00" + bytes(64) + b"\xff\xd9"
    if form == "bmp":
        info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
        return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info + bytes(64)
    return f"P6\n{width} {height}\n255\n".encode() + bytes(64)


def strategies(chosen) -> dict:
    from hypothesis import strategies as st

    @st.composite
    def image(draw):
        import cv2
        import numpy as np

        form = draw(st.sampled_from(["png", "jpg", "bmp", "ppm"]))
        how = draw(st.sampled_from(["valid", "truncated", "flip", "forged", "bomb", "garbage"]))
        notes = {"json_finite": True}
        if how in ("forged", "bomb"):
            if how == "bomb":
                bombs = [(30000, 30000), (65535, 65535), (9000, 8000), (1 << 20, 100)]
                # A JPEG frame holds 16 bits a side: 2**20 x 100 would declare 65535 x 100, under the limit.
                width, height = draw(st.sampled_from(bombs[:3] if form == "jpg" else bombs))
                notes.update(must_refuse=True, why="an image bomb is decoded", message="pixels")
            else:
                width, height = draw(st.integers(0, 1 << 16)), draw(st.integers(0, 1 << 16))
            data = forged_image(form, width, height)
        elif how == "garbage":
            data = draw(st.sampled_from([b"", b"not an image", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", bytes(100)]))
            notes.update(must_refuse=True, why="a file that is no image is predicted on")
        else:
            rng = draw(st.randoms(use_true_random=False))
            shape = (rng.randint(1, 40), rng.randint(1, 40), 1 if form != "ppm" and rng.random() < 0.5 else 3)
            pixels = np.frombuffer(rng.randbytes(shape[0] * shape[1] * shape[2]), np.uint8).reshape(shape)
            data = cv2.imencode(f".{form}", pixels)[1].tobytes()
            if how == "valid":
                notes["must_succeed"] = True
            elif how == "truncated":
                data = data[: draw(st.integers(0, len(data) - 1))]
                if form in ("png", "jpg"):
                    notes.update(must_refuse=True, why="a truncated image is predicted on")
            else:
                data = _flips(draw, st, data)
        files = {f"in/x.{form}": data, "in/tiny.keras": Seed("tiny.keras")}
        return Case(f"image-{how}", files, argv=["predict", "in/tiny.keras", f"in/x.{form}", "--json"], notes=notes)

    @st.composite
    def mean(draw):
        from caffe2keras.caffe import schema

        argv = ["convert", "in/tiny.prototxt", "in/tiny.caffemodel", "-o", "out/m.keras", "-q"]
        files, notes = dict(TINY), {}
        how = draw(st.sampled_from(["values", "scale", "file"]))
        if how == "values":
            values = draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=4))
            argv.append(f"--mean={','.join(values)}")  # "=": a value may start with "-"
            if any(_not_finite(v) for v in values):
                notes.update(must_refuse=True, why="a mean that is not finite is accepted")
        elif how == "scale":
            value = draw(st.sampled_from(NUMBERS))
            argv += [f"--scale={value}", "--mean=1,2,3"]
            if _not_finite(value):
                notes.update(must_refuse=True, why="a scale that is not finite is accepted")
        else:
            blob = schema().BlobProto()
            shape = draw(st.sampled_from([[1, 3, 12, 12], [1, 3, 16, 16], [3, 12, 12], [1, 1, 12, 12], [1, 3, 4, 4]]))
            blob.shape.dim.extend(shape)
            count = 1
            for d in shape:
                count *= d
            special = draw(st.sampled_from([None, float("nan"), float("inf"), -float("inf")]))
            values = [float(i % 255) for i in range(count)]
            if special is not None:
                values[draw(st.integers(0, count - 1))] = special
                notes.update(must_refuse=True, why="a mean image with NaN or Inf is accepted")
            blob.data.extend(values)
            data = blob.SerializeToString()
            cut = draw(st.sampled_from(["whole", "cut", "flip"]))
            if cut != "whole":
                notes.pop("must_refuse", None)  # a damaged file may lose the bad value
                data = data[: draw(st.integers(0, len(data)))] if cut == "cut" else _flips(draw, st, data)
            files["in/mean.binaryproto"] = data
            argv += ["--mean", "in/mean.binaryproto"]
        return Case(f"mean-{how}", files, argv=argv, notes=notes)

    @st.composite
    def array(draw):
        import numpy as np

        dtype = draw(
            st.sampled_from(["f4", "f8", "i2", "u1", "?", "c8", "M8[s]", "m8[s]", "U3", "S2", "O", "V12", "rec"])
        )
        shape = draw(st.sampled_from([(1, 3, 12, 12), (3, 12, 12), (1, 3, 12), (2, 3, 12, 12), (1, 3, 0, 12), ()]))
        if dtype == "rec":
            value = np.zeros(shape, dtype=[("a", "f4"), ("b", "i4")])
        elif dtype == "O":
            value = np.empty(shape, dtype=object)
            value[...] = 1.5
        else:
            value = np.zeros(shape, dtype=dtype)
        buffer = io.BytesIO()
        how = draw(st.sampled_from(["npy", "npz"]))
        notes = (
            {} if dtype in ("f4", "f8", "i2", "u1", "?") else {"must_refuse": True, "why": f"a {dtype} input is used"}
        )
        if how == "npy":
            np.save(buffer, value, allow_pickle=True)
            data = buffer.getvalue()
            damage = draw(st.sampled_from(["none", "none", "cut", "flip", "huge"]))
            if damage == "cut":
                data = data[: draw(st.integers(0, len(data) - 1))]
            elif damage == "flip":
                data = _flips(draw, st, data)
            elif damage == "huge":  # a header that declares far more values than the file holds
                data = data.replace(repr(shape).encode(), b"(100000, 3, 1000, 1000)", 1)
            if damage != "none":
                notes = {}
            files, argv = {**TINY, "in/x.npy": data}, ["--input", "in/x.npy"]
        else:
            np.savez(buffer, data=value, prob=np.zeros((1, TINY_CLASSES), "f4"))
            files, argv = {**TINY, "in/ref.npz": buffer.getvalue()}, ["--against", "in/ref.npz"]
        return Case(
            f"array-{how}", files, argv=["verify", "in/tiny.prototxt", "in/tiny.caffemodel", *argv], notes=notes
        )

    @st.composite
    def labels(draw):
        pieces = [
            "red",
            "n01440764 tench, Tinca tinca",
            "\x1b[31mred\x1b[0m",
            "[bold]x[/bold]",
            "[/x]",
            "\f",
            "\v",
            "\x1c",
            "\x85",
            "\u2028",
            "\r",
            "\t",
            "\x00",
            "\x07",
            "é",
            " ",
            "x" * 300,
        ]
        count = draw(st.one_of(st.just(TINY_CLASSES), st.integers(0, 8)))
        label = st.one_of(st.sampled_from(pieces[:2]), st.lists(st.sampled_from(pieces), max_size=3).map("".join))
        lines = draw(st.lists(label, min_size=count, max_size=count))
        text = "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n", "\n\n"]))
        data = text.encode() if draw(st.integers(0, 9)) else text.encode() + b"\xff\xfe"
        counted = text.replace("\r\n", "\n").split("\n")
        while counted and not counted[-1].strip():
            counted.pop()
        notes = {"plain_stdout": True}
        if len(counted) != TINY_CLASSES:
            notes.update(must_refuse=True, why=f"{len(counted)} label lines for {TINY_CLASSES} classes are accepted")
        if draw(st.booleans()):
            argv = [
                "convert",
                "in/tiny.prototxt",
                "in/tiny.caffemodel",
                "--labels",
                "in/labels.txt",
                "-o",
                "out/m.keras",
            ]
            files = {**TINY, "in/labels.txt": data}
        else:
            argv = ["predict", "in/tiny.keras", "in/x.ppm", "--labels", "in/labels.txt"]
            files = {"in/tiny.keras": Seed("tiny.keras"), "in/x.ppm": forged_image("ppm", 4, 4), "in/labels.txt": data}
        return Case(f"labels-{argv[0]}", files, argv=argv, notes=notes)

    def _catalog_entry(name, files):
        return {
            "name": name,
            "task": "classification",
            "summary": "a tiny generated classifier",
            "verified": False,
            "unverified_reason": "fuzzing",
            "files": files,
            "input_shape": [1, 3, 12, 12],
            "input_note": None,
            "preprocessing": {
                "channel_order": "BGR",
                "mean": [1.0, 2.0, 3.0],
                "mean_file": False,
                "scale": 1.0,
                "crop": None,
                "note": None,
            },
            "labels": None,
            "license": {"text": "none", "non_commercial": False},
            "citation": "fuzz",
            "conflicts": [],
            "notes": None,
        }

    def _zoo_case(kind, entry, notes):
        catalog = json.dumps({"version": 1, "nets": [entry]}).encode()
        name = entry["name"] if isinstance(entry.get("name"), str) else "x"
        return Case(
            kind,
            {"in/catalog.json": catalog},
            argv=["zoo", "download", "--allow-unverified", "-q", "--", name],
            notes={**notes, "within": "out/cache"},
            wall_s=NETWORK_WALL_S,
            env={"CAFFE2KERAS_ZOO_CATALOG": "{folder}/in/catalog.json"},
        )

    def _file(base, mode, name, size=None):
        return {"filename": name, "urls": [f"{base}/{mode}/{name}"], "hash": None, "size": size}

    @st.composite
    def catalog(draw):
        hostile = [
            "../escape",
            "../../escape",
            "{folder}/../escape",
            "a/b",
            "..",
            ".",
            "",
            "x" * 300,
            "n\x00ul",
            "é",
            "con",
            "-rf",
            "~",
            "$HOME",
            "tiny",
        ]
        name = draw(st.sampled_from(hostile))
        filename = draw(st.sampled_from(["deploy.prototxt", *hostile]))
        base = "{server}"
        files = {"prototxt": _file(base, "ok", "tiny.prototxt"), "weights": _file(base, "ok", "tiny.caffemodel")}
        files["prototxt"]["filename"] = filename
        entry = _catalog_entry(name, files)
        field = draw(st.sampled_from(["none", "size", "url", "hash", "type"]))
        if field == "size":
            files["weights"]["size"] = draw(st.sampled_from([-1, 0, 1, 1 << 62, "12", 1.5, True]))
        elif field == "url":
            files["weights"]["urls"] = [
                draw(
                    st.sampled_from(
                        [
                            "file:///etc/passwd",
                            "ftp://127.0.0.1/x",
                            "http://127.0.0.1:1/x",
                            "{server}/ok/../../etc/passwd",
                            "",
                            "javascript:x",
                        ]
                    )
                )
            ]
        elif field == "hash":
            files["weights"]["hash"] = draw(st.sampled_from(["sha256:" + "0" * 64, "md5:xyz", "", 7]))
        elif field == "type":
            entry[draw(st.sampled_from(["files", "name", "preprocessing", "input_shape"]))] = draw(
                st.sampled_from([None, [], "x", 1, {"a": 1}])
            )
        return _zoo_case(f"catalog-{field}", entry, {})

    @st.composite
    def http(draw):
        import hashlib

        from tools.fuzzing.commands import seed_bytes

        mode = draw(st.sampled_from(MODES))
        weights = seed_bytes("tiny.caffemodel")
        files = {
            "prototxt": _file("{server}", "ok", "tiny.prototxt"),
            "weights": _file("{server}", mode, "tiny.caffemodel"),
        }
        known = draw(st.sampled_from(["nothing", "size", "hash"]))
        if known == "size":
            files["weights"]["size"] = len(weights)
        elif known == "hash":
            files["weights"]["hash"] = "sha256:" + hashlib.sha256(weights).hexdigest()
        # Without a size or a hash, wrong bytes of the right framing cannot be told from the file.
        detectable = {"other", "long", "endless", "gzip"}
        if mode == "ok":
            notes = {"must_succeed": True}
        elif mode not in detectable or known != "nothing":
            notes = {"must_refuse": True, "why": f"a download of mode {mode} ({known} known) is accepted"}
        else:
            notes = {}
        return _zoo_case(f"http-{mode}", _catalog_entry("tiny", files), notes)

    @st.composite
    def weights(draw):
        into = draw(
            st.sampled_from(
                [
                    "in/fcn.keras",
                    "in/tiny.keras",
                    "in/tiny.prototxt",
                    "in/missing.keras",
                    "keras.applications.__class__",
                    "keras.applications.",
                    "keras.applications.NotThere",
                    "keras.applications.__init__",
                    "keras.applications..MobileNet",
                    "os.system",
                ]
            )
        )
        output = draw(st.sampled_from(["out/w.weights.h5", "out/m.keras", "out/w.h5", "in/tiny.caffemodel"]))
        files = {**TINY, "in/fcn.keras": Seed("fcn.keras"), "in/tiny.keras": Seed("tiny.keras")}
        if draw(st.integers(0, 3)) == 0:
            from tools.fuzzing.commands import seed_bytes

            files["in/tiny.caffemodel"] = _flips(draw, st, seed_bytes("tiny.caffemodel"))
        notes = {"must_refuse": True, "why": "weights fit a model they do not fit"} if into != "in/tiny.keras" else {}
        argv = ["weights", "in/tiny.prototxt", "in/tiny.caffemodel", "--into", into, "-o", output, "-q"]
        return Case("weights-into", files, argv=argv, notes=notes)

    nets = available_free_nets()

    @st.composite
    def free_size(draw):
        import numpy as np

        net = draw(st.sampled_from(nets))
        minimum = FREE_NETS[net]
        # Every size from 1 up, and as often the sizes at and just past the minimum, which must run.
        side = st.one_of(st.integers(1, minimum + 2), st.integers(minimum, minimum + 2))
        height, width = draw(side), draw(side)
        small = min(height, width) < minimum
        notes = {"must_refuse": True, "message": "smaller than"} if small else {"must_succeed": True}
        notes["why"] = f"{net} runs at {height}x{width}, below its minimum {minimum}"
        command = draw(st.sampled_from(["predict", "verify"] if net != "squeezenet" else ["predict"]))
        if command == "predict":
            import cv2

            image = cv2.imencode(".png", np.full((height, width, 3), 128, np.uint8))[1].tobytes()
            files = {"in/x.png": image, "in/m.keras": Seed(f"{net}.keras")}
            return Case(
                f"free-size-{net}-predict",
                files,
                argv=["predict", "in/m.keras", "in/x.png", "--json"],
                notes={**notes, "json_finite": True},
            )
        buffer = io.BytesIO()
        np.save(buffer, np.random.default_rng(height * 100 + width).standard_normal((1, 3, height, width), "f4"))
        files = {
            f"in/{net}.prototxt": Seed(f"{net}.prototxt"),
            f"in/{net}.caffemodel": Seed(f"{net}.caffemodel"),
            "in/x.npy": buffer.getvalue(),
        }
        argv = ["verify", f"in/{net}.prototxt", f"in/{net}.caffemodel", "--input-shape", FREE, "--input", "in/x.npy"]
        return Case(f"free-size-{net}-verify", files, argv=argv, notes=notes)

    every = {
        "image": image(),
        "mean": mean(),
        "array": array(),
        "labels": labels(),
        "catalog": catalog(),
        "http": http(),
        "weights": weights(),
        "free-size": free_size(),
    }
    return {name: strategy for name, strategy in every.items() if name in chosen}
