"""Shared by the benchmarks: the models on disk, child processes measured one by one, medians."""

from __future__ import annotations

import argparse
import compileall
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DEFAULT_DIR = Path(os.environ.get("CAFFE2KERAS_BENCH_DIR", "/tmp/caffe2keras-bench"))
sys.path.insert(0, str(REPO / "src"))  # this checkout's caffe2keras, here as in the measured children


def parse_arguments(doc: str) -> argparse.Namespace:
    """The options every benchmark of one net takes."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="alternated runs (medians are reported)")
    parser.add_argument("--net", default="vgg16", choices=("vgg16", "resnet50"))
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the model files are written")
    return parser.parse_args()


def child_env() -> dict:
    """The environment of measured children: this checkout's sources first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), str(REPO), env.get("PYTHONPATH")) if p)
    env.setdefault("KERAS_BACKEND", "jax")
    return env


def compile_sources() -> None:
    """Write this checkout's bytecode, as ``pip install`` does for an installed package.

    Otherwise, where ``PYTHONDONTWRITEBYTECODE`` is set (or the tree is read-only),
    every measured process would compile the package's sources again (about 0.15 s).
    """
    compileall.compile_dir(REPO / "src" / "caffe2keras", quiet=1)


def ensure_model(name: str, directory: Path = DEFAULT_DIR) -> tuple[Path, Path]:
    """``<name>.prototxt`` and ``<name>.caffemodel`` (deterministic weights, seed 0), written once."""
    directory.mkdir(parents=True, exist_ok=True)
    prototxt, weights = directory / f"{name}.prototxt", directory / f"{name}.caffemodel"
    if not prototxt.exists():
        code = "import sys; from bench.nets import NETS; open(sys.argv[2], 'w').write(NETS[sys.argv[1]]())"
        subprocess.run([sys.executable, "-c", code, name, f"{prototxt}.partial"], check=True, env=child_env())
        os.replace(f"{prototxt}.partial", prototxt)
    ensure_weights(prototxt, weights)
    return prototxt, weights


def ensure_weights(prototxt: Path, weights: Path) -> None:
    """``weights``: the net's deterministic synthetic weights (seed 0), written once, whole or not at all."""
    if weights.exists():
        return
    code = (
        "import sys; from caffe2keras.synthetic import synthetic_weights; "
        "from caffe2keras.caffe.writer import write_caffemodel; "
        "write_caffemodel(sys.argv[2], synthetic_weights(sys.argv[1], seed=0))"
    )
    subprocess.run([sys.executable, "-c", code, str(prototxt), f"{weights}.partial"], check=True, env=child_env())
    os.replace(f"{weights}.partial", weights)


@dataclass
class Run:
    wall_s: float
    peak_rss_mb: float
    cpu_s: float
    output: str  # what the command printed


def measure(command: list[str]) -> Run:
    """Run ``command``; its wall time, its own peak RSS (not its siblings') and CPU time."""
    with tempfile.TemporaryFile() as output, tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=child_env(), stdout=output, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{errors.read().decode()}")
        output.seek(0)
        return Run(wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, output.read().decode())


def median(runs: list[Run], field: str) -> float:
    return statistics.median(getattr(r, field) for r in runs)


def spread(runs: list[Run], field: str) -> str:
    values = [getattr(r, field) for r in runs]
    return f"{min(values):.2f}-{max(values):.2f}"


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load average {load:.1f} at start"
    )


# OpenCV 4's Caffe importer, the anchor every conversion bench runs beside caffe2keras.
OPENCV_READ = "import cv2, sys; cv2.dnn.readNetFromCaffe(sys.argv[1], sys.argv[2])"


def convert_command(prototxt, weights, output) -> list[str]:
    """``caffe2keras convert`` of the net to ``output`` (its format by extension), quietly."""
    return [sys.executable, "-m", "caffe2keras", "convert", str(prototxt), str(weights), "-o", str(output), "--quiet"]


def opencv_read_command(prototxt, weights) -> list[str]:
    return [sys.executable, "-c", OPENCV_READ, str(prototxt), str(weights)]
