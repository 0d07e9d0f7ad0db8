"""``caffe2keras train``: run a Caffe solver in Keras, as ``caffe train --solver`` does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from caffe2keras.cli.common import (
    UsageError,
    add_progress_options,
    atomic_output,
    refuse_overwriting_inputs,
    wants_progress,
)


def register(commands) -> None:
    parser = commands.add_parser(
        "train",
        help="train a net with its Caffe solver (solver.prototxt), in Keras",
        description="Build the solver's TRAIN net in Keras and run Caffe's update rule on it, iteration by "
        "iteration: the same learning-rate policy, per-parameter lr_mult/decay_mult, weight decay, "
        "clipping and iter_size. Prints Caffe's display of the loss every `display` iterations, writes "
        ".keras snapshots every `snapshot` iterations, and can resume from one.",
    )
    parser.add_argument("solver", help="the solver (solver.prototxt); its net path is read as Caffe reads it")
    parser.add_argument(
        "--weights",
        metavar="CAFFEMODEL",
        help="initial weights, copied by layer name (others start from their fillers)",
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        metavar="N",
        help="the iteration to stop at, as the solver's max_iter, which it replaces (a run resumed from "
        "--snapshot at iteration S makes N - S iterations)",
    )
    parser.add_argument("--snapshot", metavar="FILE.keras", help="resume from a .keras snapshot this command wrote")
    parser.add_argument(
        "--losses", metavar="OUT.npz", help="write every net output of every iteration (float32, one array a blob)"
    )
    parser.add_argument(
        "--save-caffemodel", metavar="OUT.caffemodel", help="write the trained weights as a Caffe .caffemodel"
    )
    parser.add_argument("-o", "--output", metavar="OUT.keras", help="write the trained model as a .keras file")
    add_progress_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    from caffe2keras.training import from_solver
    from caffe2keras.training.run import SmoothedLoss, resume
    from caffe2keras.training.run import run as run_iterations

    if args.max_iter is not None and args.max_iter < 0:
        raise UsageError(f"--max-iter must be at least 0. Received: --max-iter {args.max_iter}")
    outputs = [p for p in (args.losses, args.save_caffemodel, args.output) if p]
    for path in outputs:
        refuse_overwriting_inputs(path, (args.solver, args.weights, args.snapshot))
    _check_suffix(args.output, ".keras", "-o")
    training = from_solver(args.solver, args.weights, max_iter=args.max_iter)
    if training.net.filled and not args.quiet:
        from caffe2keras.builder import filled_report

        print(filled_report(training.net.filled))
    if args.snapshot:
        resume(training, args.snapshot)
    solver = training.solver
    display = _Display(training, quiet=args.quiet)
    snapshots = _Snapshots(training, quiet=args.quiet)
    progress = wants_progress(args)
    smoothed = SmoothedLoss(solver.average_loss)

    def on_iteration(iteration, values, total):
        loss = smoothed.add(total)
        display.show(iteration, values, loss)
        snapshots.maybe_write(iteration + 1)
        if training.test_net is not None and (iteration + 1) % solver.test_interval == 0:
            display.test(iteration + 1)
        advance(detail=f"loss = {loss:.6g}")

    from caffe2keras.progress import Progress

    if training.test_net is not None and solver.test_initialization and not args.snapshot:
        display.test(0)
    with Progress(progress) as bars, bars.phase("training", training.iterations) as advance:
        log = run_iterations(training, on_iteration)
    if solver.snapshot_after_train and solver.snapshot_prefix and log.total_loss:
        snapshots.write(training.iterations)
    if args.losses:
        _write_losses(args.losses, log)
    if args.save_caffemodel:
        _write_caffemodel(args.save_caffemodel, training)
    if args.output:
        from caffe2keras.cli.common import save_atomically

        save_atomically(training.model, args.output)
    if not args.quiet:
        print(f"Optimization done: {len(log.total_loss)} iterations.")
    return 0


def _check_suffix(path, suffix: str, option: str) -> None:
    if path and Path(path).suffix != suffix:
        raise UsageError(f"{option} takes a {suffix} file. Received: {option} {path}")


class _Display:
    """Caffe's log every ``display`` iterations: the smoothed loss, each output, the rate."""

    def __init__(self, training, quiet: bool):
        self.every = 0 if quiet else training.solver.display
        self.quiet = quiet
        self.training = training
        self.weights = training.model.loss_weights_by_output
        self.names = dict(zip((r.name for r in training.net.graph.outputs), training.model.output_names))

    def show(self, iteration: int, values: dict[str, float], loss: float) -> None:
        if not self.every or iteration % self.every:
            return
        lines = [f"Iteration {iteration}, loss = {loss:.6g}", *self._outputs("Train", values, self.weights, self.names)]
        rate = self.training.learning_rate(iteration)
        lines.append(f"Iteration {iteration}, lr = {rate:.6g}")
        print("\n".join(lines), file=sys.stdout, flush=True)

    def test(self, iteration: int) -> None:
        """Caffe's TestAll: the test net's outputs, each the mean over test_iter batches."""
        test_net = self.training.test_net
        values = test_net.evaluate(self.training.model)
        if self.quiet:
            return
        names = dict(zip(test_net.blobs, test_net.model.output_names))
        lines = [f"Iteration {iteration}, Testing net (#0)"]
        lines += self._outputs("Test", values, test_net.model.loss_weights_by_output, names)
        print("\n".join(lines), flush=True)

    @staticmethod
    def _outputs(kind: str, values: dict[str, float], weights, names) -> list[str]:
        lines = []
        for index, (blob, value) in enumerate(values.items()):
            weight = weights.get(names[blob], 0.0)
            note = f" (* {weight:g} = {weight * value:.6g} loss)" if weight else ""
            lines.append(f"    {kind} net output #{index}: {blob} = {value:.6g}{note}")
        return lines


class _Snapshots:
    """``<snapshot_prefix>_iter_<N>.keras`` every ``snapshot`` iterations, as Caffe names its own."""

    def __init__(self, training, quiet: bool):
        from caffe2keras.errors import SolverError

        self.training, self.quiet = training, quiet
        solver = training.solver
        self.every = solver.snapshot if solver.snapshot_prefix else 0
        folder = os.path.dirname(solver.snapshot_prefix or "") or "."
        if solver.snapshot_prefix and (self.every or solver.snapshot_after_train) and not os.path.isdir(folder):
            # Caffe finds out at its first snapshot, hours in: say so before training.
            raise SolverError(
                solver.path,
                f"snapshot_prefix names a folder that does not exist ({folder}, from the working directory).",
                "snapshot_prefix",
                solver.snapshot_prefix,
            )

    def maybe_write(self, completed: int) -> None:
        if self.every and completed % self.every == 0 and completed < self.training.iterations:
            self.write(completed)

    def write(self, completed: int) -> None:
        from caffe2keras.saving import save_model

        path = f"{self.training.solver.snapshot_prefix}_iter_{completed}.keras"
        model = self.training.model
        if hasattr(model, "jax_state_sync"):  # during fit, JAX holds the variables' values apart
            model.jax_state_sync()
        with atomic_output(path, ".keras") as tmp:
            save_model(model, tmp)
        if not self.quiet:
            print(f"Snapshotting to {path}", flush=True)


def _write_losses(path: str, log) -> None:
    import numpy as np

    with atomic_output(path, ".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **log.arrays())


def _write_caffemodel(path: str, training) -> None:
    from caffe2keras.caffe.writer import write_caffemodel

    layers = training.net.caffe_layers()
    with atomic_output(path, ".caffemodel") as tmp:
        write_caffemodel(tmp, layers)
