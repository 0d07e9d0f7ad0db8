"""Where ``keras.saving.load_model`` spends its time on JAX, for MTCNN-sized nets, beside TensorFlow.

    python bench/loading.py [--runs 3]

Each net (MTCNN det1-det4 from ../shared, converted with their preprocessing) is loaded in fresh
processes, alternated: on JAX without a compilation cache (what a first ``load_model`` costs),
on JAX with a warm persistent cache (what the CLI's later commands cost: it keeps JAX's cache in
caffe2keras' cache directory), and on TensorFlow when installed. Each child also loads the file a
second time in the same process, where every XLA program is compiled already: the difference
between the first and second loads is the initializers' compilation (Keras's ``build`` runs each
weight's initializer, and JAX compiles one program per shape), the second load is the rest of
Keras's deserialization. Reports medians of the children's own timings, in seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

from common import REPO, child_env, compile_sources, machine

NETS = ("det1", "det2", "det3", "det4")
MTCNN = REPO.parent / "shared" / "caffe" / "trained" / "mtcnn"

CHILD = """
import json, sys, time
import caffe2keras, keras
t = time.perf_counter(); keras.saving.load_model(sys.argv[1]); first = time.perf_counter() - t
t = time.perf_counter(); keras.saving.load_model(sys.argv[1]); second = time.perf_counter() - t
print(json.dumps({"first": first, "second": second}))
"""


def convert(net: str, directory: Path) -> Path:
    path = directory / f"{net}.keras"
    if not path.exists():
        flags = ["--mean", "127.5", "--scale", "0.0078125", "--channel-order", "rgb", "-q"]
        command = [sys.executable, "-m", "caffe2keras", "convert", str(MTCNN / f"{net}.prototxt")]
        subprocess.run(
            [*command, str(MTCNN / f"{net}.caffemodel"), "-o", str(path), *flags], check=True, env=child_env()
        )
    return path


def load(path: Path, env_extra: dict) -> dict:
    env = child_env() | env_extra
    done = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="alternated runs (medians are reported)")
    args = parser.parse_args()
    compile_sources()
    work = Path(tempfile.mkdtemp(prefix="caffe2keras-loading-"))
    cache = {"JAX_COMPILATION_CACHE_DIR": str(work / "jax-cache"), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    cache["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    modes = {
        "JAX, no cache": {"KERAS_BACKEND": "jax"},
        "JAX, warm cache": {"KERAS_BACKEND": "jax", **cache},
    }
    if find_spec("tensorflow") is not None:
        modes["TensorFlow"] = {"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    paths = {net: convert(net, work) for net in NETS}
    for path in paths.values():
        load(path, modes["JAX, warm cache"])  # fills the cache, and warms the file caches
    results = {(net, mode): [] for net in NETS for mode in modes}
    for _ in range(args.runs):
        for net, path in paths.items():
            for mode, env in modes.items():
                results[net, mode].append(load(path, env))
    print(f"{machine()}; {args.runs} alternated runs; load_model's first and second load in one process")
    print("| net | " + " | ".join(modes) + " | JAX: initializers' compilation | JAX: the rest (2nd load) |")
    print("|---|" + "---|" * (len(modes) + 2))
    for net in NETS:
        first = {m: statistics.median(r["first"] for r in results[net, m]) for m in modes}
        cold = results[net, "JAX, no cache"]
        rest = statistics.median(r["second"] for r in cold)
        compiling = statistics.median(r["first"] - r["second"] for r in cold)
        cells = " | ".join(f"{first[m]:.2f} s" for m in modes)
        print(f"| {net} | {cells} | {compiling:.2f} s | {rest:.2f} s |")


if __name__ == "__main__":
    main()
