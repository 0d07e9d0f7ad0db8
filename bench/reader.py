"""The weights reader alone, page cache warm: how fast it delivers every blob, at what memory cost.

    python bench/reader.py [--runs 5] [--net vgg16] [--dir DIR]

Each run is a fresh process that imports the reader only (``caffe2keras.caffe``,
not Keras) and reads every blob of the caffemodel, in three ways, alternated:

* ``read``: the fast path (memory map + wire scan), every value of every blob
  read once (a max over each view): what the reader delivers, read-only;
* ``copy``: the same, each blob copied into a float32 array of its own, all kept,
  as conversion does;
* ``plain``: protobuf parses the whole file, then ``np.array`` of each blob's floats.

Reports throughput (file size / time), peak RSS and its ratio to the file size, medians.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

from common import REPO, child_env, ensure_model, machine, parse_arguments

CHILD = r"""
import json, resource, sys, time, types
# The reader needs no Keras: load caffe2keras' subpackages without the package's __init__.
package = types.ModuleType("caffe2keras")
package.__path__ = [sys.argv[3]]
sys.modules["caffe2keras"] = package
from caffe2keras.arrays import owned_copy
from caffe2keras.caffe.schema import schema
from caffe2keras.caffe.weights import read_binary_weights
schema()  # compiled once per process whichever path reads; not part of reading
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
weights = read_binary_weights(sys.argv[1], fast=sys.argv[2] != "plain")
blobs = [blob.data for layer in weights.values() for blob in layer.blobs]
if sys.argv[2] == "read":
    kept = [float(data.max()) for data in blobs if data.size]
else:
    kept = [owned_copy(data) for data in blobs]
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "baseline_mb": baseline / 1024,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_child(weights, path_kind: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", CHILD, str(weights), path_kind, str(REPO / "src" / "caffe2keras")],
        env=child_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output)


def main() -> None:
    args = parse_arguments(__doc__)
    _, weights = ensure_model(args.net, args.dir)
    size = weights.stat().st_size
    run_child(weights, "read")  # warm the page cache
    runs = {"read": [], "copy": [], "plain": []}
    for index in range(args.runs):
        for kind in runs:
            result = run_child(weights, kind)
            runs[kind].append(result)
            print(
                f"run {index + 1}: {kind:<5} {result['seconds']:6.3f} s  {size / result['seconds'] / 1e9:5.2f} GB/s  "
                f"peak RSS {result['peak_mb']:6.0f} MB (baseline {result['baseline_mb']:.0f} MB)",
                flush=True,
            )
    print(f"\n{args.net}: {size / 2**20:.0f} MB caffemodel; {machine()}; medians of {args.runs} alternated runs")
    for kind, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        peak = statistics.median(r["peak_mb"] for r in results)
        baseline = statistics.median(r["baseline_mb"] for r in results)
        print(
            f"{kind:<6} {seconds:6.3f} s  {size / seconds / 1e9:5.2f} GB/s  peak RSS {peak:5.0f} MB = "
            f"{peak * 2**20 / size:.2f}x the file ({(peak - baseline) * 2**20 / size:.2f}x over the "
            f"{baseline:.0f} MB of Python, numpy and protobuf)"
        )


if __name__ == "__main__":
    main()
