"""Inference where Caffe models are deployed: OpenCV dnn, the exported ONNX in onnxruntime, and Keras.

    python bench/deploy.py [--nets vgg16,resnet50,googlenet,mobilenet_ssd] [--batches 1,8]
                           [--runs 3] [--calls 5] [--threads N] [--dir DIR]

For each net and batch size, three runtimes run the same Caffe model (synthetic weights, seed 0)
on the same random batch, each in its own process:

- ``opencv``: ``cv2.dnn.readNetFromCaffe`` on the prototxt and caffemodel, the runtime Caffe users
  deploy with;
- ``onnx``: the model converted with ``--data-format channels_first`` and exported to ONNX
  (``caffe2keras convert ... -o model.onnx``), in onnxruntime's CPU provider;
- ``keras``: the converted model (channels_last) on Keras' JAX backend, ``predict_on_batch``
  (jit-compiled).

Every process warms up with one call, then times ``--calls`` calls and reports their median. The
three processes are alternated ``--runs`` times; the table gives the medians over runs of the time
per batch and of the process's peak RSS, and each runtime's time as a ratio to OpenCV's.
All use ``--threads`` threads (default: every CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_DIR, REPO, child_env, ensure_model, ensure_weights, machine, measure

SHARED = Path(os.environ.get("CAFFE2KERAS_SHARED", REPO.parent / "shared"))
SHARED_NETS = {
    "googlenet": SHARED / "caffe" / "models" / "bvlc_googlenet" / "deploy.prototxt",
    "mobilenet_ssd": SHARED / "caffe" / "models" / "mobilenet_ssd" / "deploy.prototxt",
}
RUNTIMES = ("opencv", "onnx", "keras")


def model_files(net: str, directory: Path) -> tuple[Path, Path, Path]:
    """(prototxt, caffemodel, exported .onnx), written once."""
    if net in SHARED_NETS:
        prototxt, weights = SHARED_NETS[net], directory / f"{net}.caffemodel"
        ensure_weights(prototxt, weights)
    else:
        prototxt, weights = ensure_model(net, directory)
    exported = directory / f"{net}.onnx"
    if not exported.exists():
        command = [sys.executable, "-m", "caffe2keras", "convert", str(prototxt), str(weights)]
        command += ["-o", str(exported), "--data-format", "channels_first", "-q"]
        subprocess.run(command, check=True, env=child_env())
    return prototxt, weights, exported


def child(runtime: str, prototxt: str, weights: str, exported: str, batch: int, threads: int, calls: int) -> None:
    """Load one runtime, warm it up, print the median seconds per call as JSON."""
    import numpy as np

    if runtime == "opencv":
        import cv2

        cv2.setNumThreads(threads)
        net = cv2.dnn.readNetFromCaffe(prototxt, weights)
        shape = _input_shape(prototxt, batch)

        def forward(x):
            net.setInput(x)
            return net.forward()

    elif runtime == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(exported, options, providers=["CPUExecutionProvider"])
        shape = (batch, *session.get_inputs()[0].shape[1:])
        name = session.get_inputs()[0].name

        def forward(x):
            return session.run(None, {name: x})

    else:
        os.environ["XLA_FLAGS"] = f"--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads={threads}"
        import caffe2keras

        model = caffe2keras.convert(prototxt, weights)
        shape = (batch, *model.inputs[0].shape[1:])

        def forward(x):
            return np.asarray(model.predict_on_batch(x))

    x = np.random.default_rng(0).uniform(-1, 1, shape).astype(np.float32)
    forward(x)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        forward(x)
        times.append(time.perf_counter() - start)
    print(json.dumps(statistics.median(times)))


def _input_shape(prototxt: str, batch: int) -> tuple[int, ...]:
    # The Caffe side only: the OpenCV process must not load Keras, whose memory it would report.
    from caffe2keras.caffe import read_net
    from caffe2keras.graph import build_graph

    graph = build_graph(read_net(prototxt))
    (blob,) = graph.inputs
    return (batch, *graph.shapes[blob][1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", default="vgg16,resnet50,googlenet,mobilenet_ssd")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--runs", type=int, default=3, help="alternated runs of each runtime's process")
    parser.add_argument("--calls", type=int, default=5, help="timed calls in each process")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--child", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        runtime, prototxt, weights, exported, batch, threads, calls = args.child
        child(runtime, prototxt, weights, exported, int(batch), int(threads), int(calls))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    print(f"{machine()}; {args.threads} threads; medians of {args.runs} alternated runs of {args.calls} calls")
    print("| net | batch | " + " | ".join(f"{r} ms (× OpenCV) | {r} peak RSS MB" for r in RUNTIMES) + " |")
    print("|---|---:|" + "---:|---:|" * len(RUNTIMES))
    for net in args.nets.split(","):
        try:
            files = [str(p) for p in model_files(net, args.dir)]
        except subprocess.CalledProcessError as exc:  # the export's own message went to stderr
            print(f"| {net} | | export failed (exit status {exc.returncode}) |", flush=True)
            continue
        for batch in (int(b) for b in args.batches.split(",")):
            times, memory = {r: [] for r in RUNTIMES}, {r: [] for r in RUNTIMES}
            for _ in range(args.runs):
                for runtime in RUNTIMES:
                    options = [runtime, *files, str(batch), str(args.threads), str(args.calls)]
                    run = measure([sys.executable, __file__, "--child", *options])
                    times[runtime].append(json.loads(run.output))
                    memory[runtime].append(run.peak_rss_mb)
            anchor = statistics.median(times["opencv"])
            cells = []
            for runtime in RUNTIMES:
                seconds = statistics.median(times[runtime])
                cells += [f"{seconds * 1e3:.1f} ({seconds / anchor:.2f}×)", f"{statistics.median(memory[runtime]):.0f}"]
            print(f"| {net} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
