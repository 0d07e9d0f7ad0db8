"""Training throughput: ``caffe2keras train``'s model against a hand-written Keras model.

For LeNet (examples/lenet) and CIFAR-10 quick, the same number of iterations of SGD with momentum
and weight decay runs on the model ``caffe2keras.training.from_solver`` builds and on the same
architecture written by hand with Keras layers and ``keras.optimizers.SGD``, alternated run by
run in one process, after one compiling run each. Reports images/s (medians) and the ratio.

    python bench/train.py [--runs 5] [--iterations 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "src"))

import caffe2keras  # noqa: E402

caffe2keras.use_default_backend()

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

LENET = (BENCH.parent / "examples" / "lenet" / "lenet_train.prototxt").read_text()
CIFAR10_QUICK = """
name: "CIFAR10_quick"
layer { name: "cifar" type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "train_list.txt" batch_size: 100 } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 32 pad: 2 kernel_size: 5 weight_filler { type: "gaussian" std: 0.0001 } } }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "relu1" type: "ReLU" bottom: "pool1" top: "pool1" }
layer { name: "conv2" type: "Convolution" bottom: "pool1" top: "conv2" param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 32 pad: 2 kernel_size: 5 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "relu2" type: "ReLU" bottom: "conv2" top: "conv2" }
layer { name: "pool2" type: "Pooling" bottom: "conv2" top: "pool2" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "conv3" type: "Convolution" bottom: "pool2" top: "conv3" param { lr_mult: 1 } param { lr_mult: 2 }
        convolution_param { num_output: 64 pad: 2 kernel_size: 5 weight_filler { type: "gaussian" std: 0.01 } } }
layer { name: "relu3" type: "ReLU" bottom: "conv3" top: "conv3" }
layer { name: "pool3" type: "Pooling" bottom: "conv3" top: "pool3" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "ip1" type: "InnerProduct" bottom: "pool3" top: "ip1" param { lr_mult: 1 } param { lr_mult: 2 }
        inner_product_param { num_output: 64 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "ip2" type: "InnerProduct" bottom: "ip1" top: "ip2" param { lr_mult: 1 } param { lr_mult: 2 }
        inner_product_param { num_output: 10 weight_filler { type: "gaussian" std: 0.1 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip2" bottom: "label" top: "loss" }
"""
SOLVER = 'net: "net.prototxt"\nbase_lr: 0.001\nmomentum: 0.9\nweight_decay: 0.004\nlr_policy: "fixed"\nmax_iter: {iterations}\n'


def lenet_by_hand() -> keras.Model:
    x = keras.Input((28, 28, 1))
    y = keras.layers.Conv2D(20, 5)(x)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.Conv2D(50, 5)(y)
    y = keras.layers.MaxPooling2D(2)(y)
    y = keras.layers.Dense(500, activation="relu")(keras.layers.Flatten()(y))
    return keras.Model(x, keras.layers.Dense(10)(y))


def cifar10_quick_by_hand() -> keras.Model:
    x = keras.Input((32, 32, 3))
    y = keras.layers.Conv2D(32, 5, padding="same")(x)
    y = keras.layers.ReLU()(keras.layers.MaxPooling2D(3, 2, padding="same")(y))
    y = keras.layers.Conv2D(32, 5, padding="same", activation="relu")(y)
    y = keras.layers.AveragePooling2D(3, 2, padding="same")(y)
    y = keras.layers.Conv2D(64, 5, padding="same", activation="relu")(y)
    y = keras.layers.AveragePooling2D(3, 2, padding="same")(y)
    y = keras.layers.Dense(64)(keras.layers.Flatten()(y))
    return keras.Model(x, keras.layers.Dense(10)(y))


NETS = {
    "lenet": (LENET, (1, 28, 28), 64, lenet_by_hand),
    "cifar10_quick": (CIFAR10_QUICK, (3, 32, 32), 100, cifar10_quick_by_hand),
}


def write_case(folder: Path, text: str, shape, batch: int, iterations: int) -> Path:
    rng = np.random.default_rng(0)
    with h5py.File(folder / "data.h5", "w") as f:
        f["data"] = rng.random((batch * 4, *shape), dtype=np.float32)
        f["label"] = rng.integers(0, 10, batch * 4).astype(np.float32)
    (folder / "train_list.txt").write_text("data.h5\n")
    (folder / "net.prototxt").write_text(
        text.replace('source: "train_list.txt"', f'source: "{folder / "train_list.txt"}"')
    )
    (folder / "solver.prototxt").write_text(SOLVER.format(iterations=iterations))
    return folder / "solver.prototxt"


def converted_run(solver: Path, iterations: int):
    from caffe2keras.training import from_solver

    training = from_solver(solver, max_iter=iterations)

    def run() -> None:
        training.model.fit(training.dataset, steps_per_epoch=training.steps, shuffle=False, verbose=0)

    return run


def hand_written_run(build, shape, batch: int, iterations: int):
    model = build()
    model.compile(
        optimizer=keras.optimizers.SGD(0.001, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(0)
    x = rng.random((batch * iterations, *shape[1:], shape[0]), dtype=np.float32)
    y = rng.integers(0, 10, batch * iterations).astype(np.float32)

    def run() -> None:
        model.fit(x, y, batch_size=batch, epochs=1, shuffle=False, verbose=0)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="alternated runs (medians are reported)")
    parser.add_argument("--iterations", type=int, default=50, help="training iterations per run")
    args = parser.parse_args()
    print(f"backend {keras.backend.backend()}, {args.iterations} iterations a run, {args.runs} runs alternated")
    for name, (text, shape, batch, build) in NETS.items():
        with tempfile.TemporaryDirectory() as tmp:
            solver = write_case(Path(tmp), text, shape, batch, args.iterations)
            runs = {"caffe2keras": converted_run(solver, args.iterations)}
            runs["hand-written Keras"] = hand_written_run(build, shape, batch, args.iterations)
            for run in runs.values():
                run()  # compiles the training step
            times: dict[str, list[float]] = {label: [] for label in runs}
            for _ in range(args.runs):
                for label, run in runs.items():
                    start = time.perf_counter()
                    run()
                    times[label].append(time.perf_counter() - start)
        images = batch * args.iterations
        rates = {label: images / statistics.median(values) for label, values in times.items()}
        print(f"{name} (batch {batch}):")
        for label, rate in rates.items():
            print(f"  {label:20s} {rate:10.0f} images/s")
        print(f"  ratio caffe2keras / hand-written: {rates['caffe2keras'] / rates['hand-written Keras']:.2f}")


if __name__ == "__main__":
    main()
