"""Caffe's solvers as Keras objects: :class:`CaffeLearningRate` and :class:`CaffeSolver`.

Both follow ``sgd_solver.cpp`` and its siblings step by step; see docs/training.md. A Keras
step is one forward and backward pass; with ``iter_size`` k, Caffe's iteration is the Keras
step // k, and the optimizer accumulates k gradients (Keras' ``gradient_accumulation_steps``).
"""

from __future__ import annotations

import numpy as np
from keras import ops, optimizers, saving

from caffe2keras.layers.common import PACKAGE

LR_POLICIES = ("fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid")
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")
REGULARIZATIONS = ("L2", "L1")
# Policies of base_lr * gamma^k, which Caffe computes in double (C++'s pow(float, int)) and rounds
# to float: their rates for k up to this many come from a table computed so, exactly.
MULTIPLICATIVE_POLICIES = ("step", "exp", "multistep")
EXACT_POWERS = 1 << 20


@saving.register_keras_serializable(package=PACKAGE)
class CaffeLearningRate(optimizers.schedules.LearningRateSchedule):
    """``SGDSolver::GetLearningRate`` for every ``lr_policy``, at Caffe's iteration ``step // iter_size``.

    fixed: ``base_lr``; step: ``base_lr * gamma^floor(iter / stepsize)``; exp: ``base_lr * gamma^iter``;
    inv: ``base_lr * (1 + gamma * iter)^-power``; multistep: ``base_lr * gamma^(stepvalues <= iter)``;
    poly: ``base_lr * (1 - iter / max_iter)^power``; sigmoid: ``base_lr / (1 + exp(-gamma * (iter - stepsize)))``.

    step, exp and multistep are exact to Caffe's float rate (computed in double, then rounded)
    for exponents up to the solver's (``max_iter``, at most 2^20); beyond, float32 arithmetic
    can put them 1 ulp off.
    """

    def __init__(
        self,
        base_lr,
        lr_policy="fixed",
        gamma=0.0,
        power=0.0,
        stepsize=0,
        stepvalue=(),
        max_iter=0,
        iter_size=1,
    ):
        if lr_policy not in LR_POLICIES:
            raise ValueError(f"lr_policy must be one of {LR_POLICIES}. Received: lr_policy={lr_policy!r}")
        self.base_lr = float(base_lr)
        self.lr_policy = lr_policy
        self.gamma = float(gamma)
        self.power = float(power)
        self.stepsize = int(stepsize)
        self.stepvalue = tuple(int(v) for v in stepvalue)
        self.max_iter = int(max_iter)
        self.iter_size = int(iter_size)
        if lr_policy == "step" and self.stepsize <= 0:
            raise ValueError(f"the step policy needs stepsize > 0. Received: stepsize={stepsize}")
        if lr_policy == "poly" and self.max_iter <= 0:
            raise ValueError(f"the poly policy needs max_iter > 0. Received: max_iter={max_iter}")
        self._powers = self._exact_powers() if lr_policy in MULTIPLICATIVE_POLICIES else None

    def _exact_powers(self) -> np.ndarray:
        """``float32(base_lr * gamma^k)`` computed in double, for every exponent k the solver reaches."""
        largest = {
            "step": self.max_iter // max(self.stepsize, 1),
            "exp": self.max_iter,
            "multistep": len(self.stepvalue),
        }[self.lr_policy]
        exponents = np.arange(min(largest, EXACT_POWERS) + 1, dtype=np.float64)
        with np.errstate(over="ignore", under="ignore"):
            return (self.base_lr * np.power(np.float64(self.gamma), exponents)).astype(np.float32)

    def __call__(self, step):
        it = ops.cast(ops.floor_divide(ops.cast(step, "int32"), self.iter_size), "float32")
        base, gamma = self.base_lr, self.gamma
        policy = self.lr_policy
        if policy == "fixed":
            rate = ops.ones_like(it) * base
        elif policy == "step":
            rate = self._multiplied(ops.floor(it / self.stepsize))
        elif policy == "exp":
            rate = self._multiplied(it)
        elif policy == "inv":
            rate = base * ops.power(1.0 + gamma * it, -self.power)
        elif policy == "multistep":
            passed = sum(ops.cast(it >= v, "float32") for v in self.stepvalue) if self.stepvalue else 0.0
            rate = self._multiplied(ops.zeros_like(it) + passed)
        elif policy == "poly":
            rate = base * ops.power(1.0 - it / self.max_iter, self.power)
        else:
            # Caffe's order, base * (1 / ...): base / (...) rounds differently in float32, and that
            # last bit of the rate is enough to flip an Accuracy 27 LeNet iterations later.
            rate = base * (1.0 / (1.0 + ops.exp(-gamma * (it - self.stepsize))))
        return ops.cast(rate, "float32")

    def _multiplied(self, exponent):
        """``base_lr * gamma^exponent``: from the exact table where it reaches, else in float32."""
        last = self._powers.shape[0] - 1
        index = ops.cast(ops.minimum(exponent, last), "int32")
        exact = ops.take(ops.convert_to_tensor(self._powers), index)
        return ops.where(exponent <= last, exact, self.base_lr * ops.power(self.gamma, exponent))

    def get_config(self):
        return {
            "base_lr": self.base_lr,
            "lr_policy": self.lr_policy,
            "gamma": self.gamma,
            "power": self.power,
            "stepsize": self.stepsize,
            "stepvalue": self.stepvalue,
            "max_iter": self.max_iter,
            "iter_size": self.iter_size,
        }


@saving.register_keras_serializable(package=PACKAGE)
class CaffeSolver(optimizers.Optimizer):
    """Caffe's ``ApplyUpdate``: per-parameter rates and decays, weight decay in the gradient, and
    the update of SGD, Nesterov, AdaGrad, RMSProp, AdaDelta or Adam as Caffe writes it.

    For each variable, with ``rate`` the schedule's, ``lr_mult``/``decay_mult`` its multipliers
    (``multipliers[variable.path]``, default 1 and 1) and g the gradient (averaged over
    ``iter_size`` passes): ``g += weight_decay * decay_mult * w`` (L2) or ``* sign(w)`` (L1), then
    the solver's history update with ``local_rate = rate * lr_mult`` and ``w -= update``.
    ``clip_gradients`` >= 0 scales all gradients together down to that global L2 norm, Caffe's
    ClipGradients (applied to the accumulated sum: the mean is clipped at ``clip / iter_size``).

    Args:
        learning_rate: a float or a schedule (:class:`CaffeLearningRate`).
        solver_type: one of ``SOLVER_TYPES``.
        momentum: SGD's and Nesterov's momentum, AdaDelta's decay, Adam's beta1.
        momentum2: Adam's beta2.
        delta: the AdaGrad, RMSProp, AdaDelta and Adam epsilon.
        rms_decay: RMSProp's decay.
        weight_decay, regularization_type: Caffe's ``weight_decay`` and ``"L2"`` or ``"L1"``.
        multipliers: ``{variable.path: (lr_mult, decay_mult)}``.
        clip_gradients: Caffe's threshold, or -1 for none.
        iter_size: passes accumulated into one update.
    """

    def __init__(
        self,
        learning_rate=0.01,
        solver_type="SGD",
        momentum=0.0,
        momentum2=0.999,
        delta=1e-8,
        rms_decay=0.99,
        weight_decay=0.0,
        regularization_type="L2",
        multipliers=None,
        clip_gradients=-1.0,
        iter_size=1,
        name="caffe_solver",
        **kwargs,
    ):
        if solver_type not in SOLVER_TYPES:
            raise ValueError(f"solver_type must be one of {SOLVER_TYPES}. Received: solver_type={solver_type!r}")
        if regularization_type not in REGULARIZATIONS:
            raise ValueError(
                f"regularization_type must be one of {REGULARIZATIONS}. Received: regularization_type={regularization_type!r}"
            )
        iter_size = int(iter_size)
        for key in ("global_clipnorm", "gradient_accumulation_steps", "weight_decay"):
            kwargs.pop(key, None)  # derived from Caffe's own fields (a reloaded config holds them)
        clip = float(clip_gradients)
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            global_clipnorm=clip / iter_size if clip >= 0 else None,
            gradient_accumulation_steps=iter_size if iter_size > 1 else None,
            **kwargs,
        )
        self.solver_type = solver_type
        self.momentum = float(momentum)
        self.momentum2 = float(momentum2)
        self.delta = float(delta)
        self.rms_decay = float(rms_decay)
        self.caffe_weight_decay = float(weight_decay)
        self.regularization_type = regularization_type
        self.multipliers = {str(k): (float(v[0]), float(v[1])) for k, v in (multipliers or {}).items()}
        self.clip_gradients = clip
        self.iter_size = iter_size

    @property
    def schedule(self):
        """The learning-rate schedule (or the constant rate) the optimizer was made with."""
        return self._learning_rate

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # By the variable's index: update_step gets a backend variable, which on TensorFlow has no
        # Keras path to look the multipliers up by.
        self.variable_multipliers = [self.multipliers.get(v.path, (1.0, 1.0)) for v in var_list]
        slots = {"AdaDelta": 2, "Adam": 2}.get(self.solver_type, 1)
        self.histories = [self.add_optimizer_variables(var_list, f"history{i}") for i in range(slots)]

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        lr_mult, decay_mult = self.variable_multipliers[index]
        g = ops.cast(gradient, variable.dtype)
        decay = self.caffe_weight_decay * decay_mult
        if decay:
            g = g + decay * (variable if self.regularization_type == "L2" else ops.sign(variable))
        rate = ops.cast(learning_rate, variable.dtype) * lr_mult
        h = self.histories[0][index]
        m = self.momentum
        kind = self.solver_type
        if kind in ("SGD", "Nesterov"):
            # momentum * history, read before the assignment: Nesterov steps back by it. On TensorFlow
            # convert_to_tensor(h) gave the variable itself, which then read the new value.
            carried = m * h
            updated = carried + rate * g
            self.assign(h, updated)
            step = updated if kind == "SGD" else (1.0 + m) * updated - carried
        elif kind == "AdaGrad":
            self.assign(h, h + ops.square(g))
            step = rate * g / (ops.sqrt(h) + self.delta)
        elif kind == "RMSProp":
            self.assign(h, self.rms_decay * h + (1.0 - self.rms_decay) * ops.square(g))
            step = rate * g / (ops.sqrt(h) + self.delta)
        elif kind == "AdaDelta":
            h2 = self.histories[1][index]
            self.assign(h, m * h + (1.0 - m) * ops.square(g))
            d = g * ops.sqrt((h2 + self.delta) / (h + self.delta))
            self.assign(h2, m * h2 + (1.0 - m) * ops.square(d))
            step = rate * d
        else:
            v = self.histories[1][index]
            t = ops.cast(self.iterations + 1, variable.dtype)
            self.assign(h, m * h + (1.0 - m) * g)
            self.assign(v, self.momentum2 * v + (1.0 - self.momentum2) * ops.square(g))
            correction = ops.sqrt(1.0 - ops.power(self.momentum2, t)) / (1.0 - ops.power(m, t))
            step = rate * correction * h / (ops.sqrt(v) + self.delta)
        self.assign_sub(variable, step)

    def get_config(self):
        config = super().get_config()
        config.update(
            solver_type=self.solver_type,
            momentum=self.momentum,
            momentum2=self.momentum2,
            delta=self.delta,
            rms_decay=self.rms_decay,
            weight_decay=self.caffe_weight_decay,
            regularization_type=self.regularization_type,
            multipliers={k: list(v) for k, v in self.multipliers.items()},
            clip_gradients=self.clip_gradients,
            iter_size=self.iter_size,
        )
        return config
