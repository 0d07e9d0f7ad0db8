"""Running one command case: its files laid out, the CLI run in-process, and its properties checked.

A case's folder holds ``in/`` (its inputs, which must come out unchanged) and ``out/`` (where it
may write, the zoo cache included); the command runs with the folder as its working directory.
Both Python's and the C libraries' stderr (OpenCV, libjpeg, HDF5 write to the file descriptor)
are captured. Every case keeps these properties:

* exit 0, or a refusal: exit 1 or 2 with exactly one ``caffe2keras: error:`` line, after nothing
  but ``caffe2keras: warning:`` lines (``verify`` may also exit 1 with its report: ``diverged``;
  argparse refuses a malformed option value with its usage and one ``caffe2keras CMD: error:``
  line, exit 2: ``usage``);
* no traceback, no internal error, no "out of memory" (the worker has 2 GiB of address space);
* nothing written outside ``out/`` (for the zoo: outside its cache), no input changed, no
  temporary output (``.c2k-*``) left in ``out/`` after a refusal;

and those its notes name: ``must_refuse`` (a wrong success otherwise), ``must_succeed``,
``message`` (a text the refusal must hold), ``json_finite`` (stdout is JSON whose numbers are
finite), ``plain_stdout`` (no control character but newline and tab: no terminal injection).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tools.fuzzing.harness import SEEDS_ENV, SHARED, Case

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
USAGE_ERROR = re.compile(r"^caffe2keras( [a-z]+)*: error: ")
PARTIAL = re.compile(r"^\.c2k-")  # an atomic output's temporary (a download's .partial is kept to resume)

FCN_NET = """name: "fcn"
input: "data"
input_shape { dim: 1 dim: 3 dim: 20 dim: 20 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" convolution_param { num_output: 5 kernel_size: 3 } }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE global_pooling: true } }
layer { name: "prob" type: "Softmax" bottom: "pool2" top: "prob" }
"""
# The smallest side each free-size net takes, worked out by hand from Caffe's size rules:
# fcn: conv1 (3, stride 2) then pool1 (3, stride 2, ceil) must leave conv2's 3 pixels: 13.
# P-Net: conv1 3 -> pool 2/2 (ceil) -> conv2 3 -> conv3 3 ends at 1 pixel from 11.
# SqueezeNet 1.1: conv1 3/2 -> pool1, pool3, pool5 (3/2, ceil): pool5 is empty below 17.
FREE_NETS = {"fcn": 13, "pnet": 11, "squeezenet": 17}
PNET = SHARED / "caffe" / "trained" / "mtcnn"
SQUEEZENET = SHARED / "caffe" / "models" / "squeezenet_v1.1" / "deploy.prototxt"
FREE = "data=1,3,?,?"


@dataclass(frozen=True)
class Seed:
    """A seed file by name (see :func:`seed_bytes`), made once per worker, not pickled per case."""

    name: str


def available_free_nets() -> list[str]:
    return ["fcn"] + (["pnet", "squeezenet"] if (PNET / "det1.prototxt").is_file() and SQUEEZENET.is_file() else [])


@functools.cache
def seed_bytes(name: str) -> bytes:
    """``tiny.prototxt``, ``tiny.caffemodel``, ``tiny.keras``, ``fcn.*``, ``pnet.*``, ``squeezenet.keras``;
    made once per run when the workers share a folder (``$C2K_FUZZ_SEEDS``): converting
    SqueezeNet alone takes seconds."""
    folder = os.environ.get(SEEDS_ENV)
    if not folder:
        return _made_seed(name)
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        return path.read_bytes()
    data = _made_seed(name)
    temporary = path.with_name(f".{name}.{os.getpid()}")
    temporary.write_bytes(data)
    os.replace(temporary, path)  # whole or absent for a worker reading it at the same time
    return data


def _made_seed(name: str) -> bytes:
    from tools.fuzzing.model_files import TINY_NET, _tiny_weights

    if name == "tiny.prototxt":
        return TINY_NET.encode()
    if name == "tiny.caffemodel":
        return _tiny_weights()
    if name == "fcn.prototxt":
        return FCN_NET.encode()
    if name == "fcn.caffemodel":
        return _fcn_weights()
    if name == "pnet.prototxt":
        return (PNET / "det1.prototxt").read_bytes()
    if name == "pnet.caffemodel":
        return (PNET / "det1.caffemodel").read_bytes()
    return _converted(name)


def _fcn_weights() -> bytes:
    import numpy as np

    from caffe2keras.caffe.writer import write_caffemodel

    rng = np.random.default_rng(1)
    layers = [
        ("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)]),
        ("conv2", "Convolution", [rng.standard_normal((5, 4, 3, 3)), rng.standard_normal(5)]),
    ]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fcn.caffemodel"
        write_caffemodel(path, [(n, t, [b.astype(np.float32) for b in bs]) for n, t, bs in layers])
        return path.read_bytes()


def _converted(name: str) -> bytes:
    import caffe2keras

    net = name.removesuffix(".keras")
    free = {"data": (1, 3, None, None)}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        files = {"prototxt": folder / "net.prototxt", "weights": folder / "net.caffemodel"}
        if net == "squeezenet":
            files["prototxt"].write_bytes(SQUEEZENET.read_bytes())
            model = caffe2keras.convert(files["prototxt"], input_shapes=free)
        else:
            files["prototxt"].write_bytes(seed_bytes(f"{net}.prototxt"))
            files["weights"].write_bytes(seed_bytes(f"{net}.caffemodel"))
            shapes = None if net == "tiny" else free
            outputs = ["prob1"] if net == "pnet" else None
            model = caffe2keras.convert(files["prototxt"], files["weights"], input_shapes=shapes, outputs=outputs)
        path = folder / "model.keras"
        caffe2keras.save_model(model, path)
        return path.read_bytes()


# ---------------------------------------------------------------------------------------- running


@functools.cache
def _cases_root() -> str:
    """A folder of this worker's own for its cases: what appears beside a case is the case's doing."""
    return tempfile.mkdtemp(prefix="c2k-fuzz-cases-")


def run_command_case(case: Case) -> tuple[str, str]:
    import gc
    import sys

    if "keras" in sys.modules:  # each case starts as a fresh process would, not with the last one's models
        sys.modules["keras"].backend.clear_session()
    gc.collect()
    # What outlives the last case's collection stays (modules, caches): frozen, it is not scanned
    # again by each later collection, which would otherwise cost most of a refusal's time.
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="case-", dir=_cases_root()) as name:
        folder = Path(name).resolve()
        (folder / "in").mkdir()
        (folder / "out" / "cache").mkdir(parents=True)
        places = {"{server}": _server_url(case), "{folder}": str(folder)}

        def placed(text: str) -> str:
            for mark, value in places.items():
                text = text.replace(mark, value)
            return text

        for path, data in case.files.items():
            target = folder / path
            target.parent.mkdir(parents=True, exist_ok=True)
            data = seed_bytes(data.name) if isinstance(data, Seed) else data
            target.write_bytes(placed(data.decode()).encode() if path.endswith(".json") else data)
        inputs = _digests(folder / "in")
        siblings = set(folder.parent.iterdir())
        argv = [placed(part) for part in case.argv]
        status, stdout, stderr = _run(folder, argv, {key: placed(value) for key, value in case.env.items()})
        escaped = sorted(str(p) for p in set(folder.parent.iterdir()) - siblings)
        outside = sorted(str(p.relative_to(folder)) for p in folder.iterdir() if p.name not in ("in", "out"))
        if escaped or outside:
            return "property", f"wrote outside out/: {', '.join(escaped + outside)[:300]}"
        if _digests(folder / "in") != inputs:
            return "property", "an input file changed"
        if "within" in case.notes:
            within = folder / case.notes["within"]
            stray = [p for p in (folder / "out").rglob("*") if p.is_file() and within not in p.parents]
            if stray:
                return "property", f"wrote outside {case.notes['within']}: {', '.join(map(str, stray))[:300]}"
        return check(case, status, stdout, stderr, folder / "out")


def _server_url(case: Case) -> str:
    if not any(path.endswith(".json") for path in case.files):
        return ""
    from tools.fuzzing import server

    server.FILES.update({name: seed_bytes(name) for name in ("tiny.prototxt", "tiny.caffemodel")})
    return server.url()


def _digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def _run(folder: Path, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """The CLI in-process, in ``folder``, with Python's and the C libraries' output captured."""
    from caffe2keras.cli import main

    environment = {
        "CAFFE2KERAS_ZOO_CACHE": str(folder / "out" / "cache"),
        "XDG_CACHE_HOME": str(folder / "out" / "cache"),
        **env,
    }
    saved_env = {key: os.environ.get(key) for key in environment}
    saved_cwd = os.getcwd()
    stdout, stderr = io.StringIO(), io.StringIO()
    with tempfile.TemporaryFile() as native:
        saved_fd = os.dup(2)
        try:
            os.environ.update(environment)
            os.chdir(folder)
            os.dup2(native.fileno(), 2)
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
                try:
                    status = main(argv)
                except SystemExit as exc:  # argparse's refusal of the command line itself
                    status = exc.code if isinstance(exc.code, int) else 1
        finally:
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
            os.chdir(saved_cwd)
            for key, value in saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        native.seek(0)
        foreign = native.read(1 << 16).decode(errors="replace")
    return status, stdout.getvalue(), foreign + stderr.getvalue()


def check(case: Case, status: int, stdout: str, stderr: str, out: Path) -> tuple[str, str]:
    """The outcome of a command by the properties above."""
    notes = case.notes
    tail = stderr.strip()[-400:]
    if "internal error" in stderr or "please report" in stderr:
        return "internal", tail
    if "Traceback" in stderr:
        return "traceback", tail
    if "out of memory" in stderr:
        return "over-memory", tail
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("caffe2keras: error: ")]
    if status == 0:
        if errors:
            return "property", f"exit 0 with an error line: {lines[errors[0]][:300]}"
        if notes.get("must_refuse"):
            return "property", f"wrong success: {notes.get('why', case.kind)}"
        if notes.get("json_finite") and not _finite_json(stdout):
            return "property", f"the output is not JSON of finite numbers: {stdout[:200]!r}"
        if notes.get("plain_stdout") and CONTROL.search(stdout):
            return "property", f"control characters reach the terminal: {CONTROL.search(stdout)[0]!r}"
        return "ran", ""
    if status == 1 and case.argv[0] == "verify" and not errors:
        return "diverged" if not notes.get("must_succeed") else "property", "verify reported a difference"
    if status == 2 and lines and lines[0].startswith("usage: ") and USAGE_ERROR.match(lines[-1]):
        return "usage", lines[-1][:300]  # argparse's refusal of the command line, before any file is read
    if (
        status not in (1, 2)
        or len(errors) != 1
        or any(not line.startswith("caffe2keras: warning: ") for line in lines[: errors[0]])
    ):
        return "property", f"not one clean error line (status {status}): {tail[:300]}"
    partial = sorted(p.name for p in out.rglob("*") if PARTIAL.search(p.name))
    if partial:
        return "leftovers", ", ".join(partial)
    message = lines[errors[0]]
    if notes.get("must_succeed"):
        return "property", f"refused a good input: {message[:300]}"
    if notes.get("message") and notes["message"] not in stderr:
        return "property", f"refused without saying {notes['message']!r}: {message[:300]}"
    return "refused", message[:300]


def _finite_json(text: str) -> bool:
    try:
        data = json.loads(text, parse_constant=lambda name: float("nan"))
    except ValueError:
        return False

    def numbers(value):
        if isinstance(value, dict):
            return [n for v in value.values() for n in numbers(v)]
        if isinstance(value, list):
            return [n for v in value for n in numbers(v)]
        return [value] if isinstance(value, (int, float)) and not isinstance(value, bool) else []

    return all(math.isfinite(n) for n in numbers(data))
