"""Read a ``solver.prototxt`` into what training needs, refusing by name what is not implemented."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from caffe2keras.caffe.prototxt import read_net, read_solver
from caffe2keras.caffe.schema import enum_name
from caffe2keras.caffe.upgrade import upgrade_net
from caffe2keras.errors import SolverError
from caffe2keras.layers.solver import LR_POLICIES, SOLVER_TYPES

# Caffe's SolverRegistry names, and the deprecated solver_type enum's.
SOLVER_TYPE_NAMES = {name.upper(): name for name in SOLVER_TYPES}
# Fields that only matter for what caffe2keras does not do: refused when set to anything but their default.
NOT_IMPLEMENTED = {
    "test_net": "the test net is the TEST phase of the solver's net; separate test nets are not run",
    "test_net_param": "the test net is the TEST phase of the solver's net; separate test nets are not run",
    "test_state": "the test net runs in the net's own TEST state",
    "test_compute_loss": "the test net reports its outputs, losses included, without a total",
    "snapshot_diff": "snapshots hold the weights, not their gradients",
    "snapshot_format": "snapshots are .keras files; --save-caffemodel writes the final weights as a binary .caffemodel",
    "debug_info": "Caffe's per-blob debug log has no counterpart",
    "weights": "give the initial weights with weights= (CLI: --weights)",
}


@dataclass
class Solver:
    """A solver's settings, checked. ``net`` is the train net (a NetParameter)."""

    path: str
    net: object
    net_source: str
    solver_type: str
    base_lr: float
    lr_policy: str
    gamma: float
    power: float
    stepsize: int
    stepvalue: tuple[int, ...]
    max_iter: int
    momentum: float
    momentum2: float
    delta: float
    rms_decay: float
    weight_decay: float
    regularization_type: str
    clip_gradients: float
    iter_size: int
    random_seed: int | None
    display: int
    average_loss: int
    snapshot: int
    snapshot_prefix: str | None
    snapshot_after_train: bool
    test_iter: int = 0
    test_interval: int = 0
    test_initialization: bool = True
    train_state: dict = field(default_factory=dict)


def _error(path, message: str, name: str, value) -> SolverError:
    return SolverError(path, message, name, value)


def read_solver_file(path: str | os.PathLike) -> Solver:
    """Read and check a solver; its train net is read too, from a path relative to the solver's
    folder when it is relative (Caffe resolves it against the working directory, which the CLI
    and the golden runs make the solver's folder)."""
    param = read_solver(path)
    path = str(path)
    for name, reason in NOT_IMPLEMENTED.items():
        if _is_set(param, name):
            raise _error(
                path,
                f"the solver sets {name}, which caffe2keras does not implement: {reason}.",
                name,
                _value(param, name),
            )
    net, net_source = _train_net(param, path)
    solver_type = _solver_type(param, path)
    policy = param.lr_policy
    if not param.HasField("lr_policy"):
        raise _error(
            path, f"the solver names no lr_policy; Caffe needs one of {', '.join(LR_POLICIES)}.", "lr_policy", ""
        )
    if policy not in LR_POLICIES:
        raise _error(path, f"unknown lr_policy; caffe2keras implements {', '.join(LR_POLICIES)}.", "lr_policy", policy)
    if policy == "step" and param.stepsize <= 0:
        raise _error(path, "the step policy needs a stepsize > 0, as Caffe checks.", "stepsize", param.stepsize)
    if policy == "poly" and param.max_iter <= 0:
        raise _error(path, "the poly policy needs max_iter > 0.", "max_iter", param.max_iter)
    if param.regularization_type not in ("L2", "L1"):
        raise _error(
            path, "Caffe knows the L2 and L1 regularization types.", "regularization_type", param.regularization_type
        )
    if param.iter_size < 1:
        raise _error(path, "iter_size must be at least 1.", "iter_size", param.iter_size)
    if solver_type == "AdaGrad" and param.momentum != 0:
        raise _error(path, "AdaGrad takes no momentum (Caffe checks it is 0).", "momentum", param.momentum)
    if solver_type == "RMSProp" and param.momentum != 0:
        raise _error(
            path,
            "RMSProp takes no momentum (Caffe checks it is 0); its decay is rms_decay.",
            "momentum",
            param.momentum,
        )
    if param.average_loss < 1:
        raise _error(path, "average_loss must be at least 1.", "average_loss", param.average_loss)
    test_iter = _test_iterations(param, path)
    state = param.train_state
    return Solver(
        path=path,
        net=net,
        net_source=net_source,
        solver_type=solver_type,
        base_lr=param.base_lr,
        lr_policy=policy,
        gamma=param.gamma,
        power=param.power,
        stepsize=param.stepsize,
        stepvalue=tuple(param.stepvalue),
        max_iter=param.max_iter,
        momentum=param.momentum,
        momentum2=param.momentum2,
        delta=param.delta,
        rms_decay=param.rms_decay,
        weight_decay=param.weight_decay,
        regularization_type=param.regularization_type,
        clip_gradients=param.clip_gradients,
        iter_size=param.iter_size,
        random_seed=param.random_seed if param.random_seed >= 0 else None,
        display=param.display,
        average_loss=param.average_loss,
        snapshot=param.snapshot,
        snapshot_prefix=_snapshot_prefix(path, param.snapshot_prefix),
        snapshot_after_train=param.snapshot_after_train,
        train_state={"level": state.level, "stages": list(state.stage)} if param.HasField("train_state") else {},
        test_iter=test_iter,
        test_interval=param.test_interval if test_iter else 0,
        test_initialization=param.test_initialization,
    )


def _test_iterations(param, path: str) -> int:
    """``test_iter`` of the one test net (the TEST phase of ``net``/``net_param``), or 0 for none."""
    if not param.test_iter:
        if param.test_interval:
            raise _error(path, "test_interval needs test_iter, as Caffe checks.", "test_iter", [])
        return 0
    if len(param.test_iter) != 1 or not (param.HasField("net") or param.HasField("net_param")):
        raise _error(
            path,
            "caffe2keras runs one test net, the TEST phase of the solver's net (net or net_param).",
            "test_iter",
            list(param.test_iter),
        )
    if param.test_iter[0] < 1:
        raise _error(path, "test_iter must be at least 1.", "test_iter", list(param.test_iter))
    return param.test_iter[0] if param.test_interval > 0 else 0


def _is_repeated(param, name: str) -> bool:
    return param.DESCRIPTOR.fields_by_name[name].is_repeated


def _is_set(param, name: str) -> bool:
    if _is_repeated(param, name):
        return len(getattr(param, name)) > 0
    return param.HasField(name) and getattr(param, name) != param.DESCRIPTOR.fields_by_name[name].default_value


def _value(param, name: str):
    value = getattr(param, name)
    return list(value) if _is_repeated(param, name) else value


def _relative(solver_path: str, target: str) -> str:
    return target if os.path.isabs(target) else str(Path(solver_path).parent / target)


def _snapshot_prefix(solver_path: str, prefix: str) -> str | None:
    """Where snapshots go, as Caffe writes them: relative to the working directory (an output
    the solver names, like ``snapshot_prefix: "examples/mnist/lenet"`` run from Caffe's root),
    a folder getting the solver's name, as Caffe's upgrade of the field does. None without a
    prefix: caffe2keras then writes no snapshots (Caffe would name them after the solver file,
    beside it)."""
    if not prefix:
        return None
    if prefix.endswith(("/", os.sep)) or os.path.isdir(prefix):
        return os.path.join(prefix, Path(solver_path).stem)
    return prefix


def _train_net(param, path: str):
    """The train net: exactly one of net, net_param, train_net, train_net_param, as Caffe requires."""
    given = [name for name in ("net", "net_param", "train_net", "train_net_param") if param.HasField(name)]
    if len(given) != 1:
        raise _error(
            path,
            "a solver names its train net in exactly one of net, net_param, train_net, train_net_param.",
            "train net fields",
            given,
        )
    name = given[0]
    if name.endswith("_param"):
        return upgrade_net(getattr(param, name), path), f"{path} ({name})"
    net_path = _relative(path, getattr(param, name))
    return read_net(net_path), net_path


def _solver_type(param, path: str) -> str:
    if param.HasField("type"):
        if param.type not in SOLVER_TYPES:
            raise _error(
                path, f"unknown solver type; caffe2keras implements {', '.join(SOLVER_TYPES)}.", "type", param.type
            )
        return param.type
    return SOLVER_TYPE_NAMES[enum_name(param, "solver_type")]
