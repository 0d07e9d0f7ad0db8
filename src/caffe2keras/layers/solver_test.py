import math

import keras
import numpy as np
import pytest

from caffe2keras.layers.solver import CaffeLearningRate, CaffeSolver

BASE = 0.01


def caffe_rate(policy, it, gamma=0.9, power=0.75, stepsize=4, stepvalue=(3, 7), max_iter=20):
    """sgd_solver.cpp's GetLearningRate in float64."""
    return {
        "fixed": BASE,
        "step": BASE * gamma ** (it // stepsize),
        "exp": BASE * gamma**it,
        "inv": BASE * (1 + gamma * it) ** -power,
        "multistep": BASE * gamma ** sum(it >= v for v in stepvalue),
        "poly": BASE * (1 - it / max_iter) ** power,
        "sigmoid": BASE / (1 + math.exp(-gamma * (it - stepsize))),
    }[policy]


@pytest.mark.parametrize("policy", ["fixed", "step", "exp", "inv", "multistep", "poly", "sigmoid"])
def test_every_lr_policy(policy):
    schedule = CaffeLearningRate(BASE, policy, gamma=0.9, power=0.75, stepsize=4, stepvalue=(3, 7), max_iter=20)
    for it in range(20):
        assert float(schedule(it)) == pytest.approx(caffe_rate(policy, it), rel=1e-6)


def test_the_sigmoid_rate_rounds_as_caffes_float_arithmetic():
    # GetLearningRate in float: base * (1 / (1 + exp(-gamma * (iter - stepsize)))); real Caffe's
    # lrs for these settings (golden lenet_lr_sigmoid) are these bits, and base / (1 + ...)
    # differs from them in the last bit at 7 of the 30 iterations.
    f32 = np.float32
    base, gamma, stepsize = f32(0.01), f32(0.2), f32(15)
    schedule = CaffeLearningRate(base, "sigmoid", gamma=gamma, stepsize=15)
    for it in range(30):
        exp = f32(math.exp(-gamma * (f32(it) - stepsize)))
        assert np.float32(schedule(it)) == base * (f32(1) / (f32(1) + exp))


@pytest.mark.parametrize("policy", ["exp", "step", "multistep"])
def test_multiplicative_rates_round_as_caffes_double_pow(policy):
    # Caffe: (float) (base_lr * pow(gamma, k)) in double. In float32, exp is 1 ulp off at 7 of
    # golden lenet_lr_exp's 30 iterations; the exponents up to max_iter come from an exact table.
    base, gamma = np.float32(0.01), np.float32(0.99)
    schedule = CaffeLearningRate(base, policy, gamma=gamma, stepsize=1, stepvalue=range(1, 40), max_iter=40)
    exponents = [min(it, 39) if policy == "multistep" else it for it in range(50)]
    rates = [np.float32(schedule(it)) for it in range(50)]
    exact = [np.float32(np.float64(base) * np.float64(gamma) ** k) for k in exponents]
    assert rates[:41] == exact[:41]
    assert rates[41:] == pytest.approx(exact[41:], rel=1e-6)  # past the solver's max_iter: float32


def test_the_rate_counts_caffe_iterations_of_iter_size_steps():
    schedule = CaffeLearningRate(BASE, "exp", gamma=0.5, iter_size=3)
    assert [float(schedule(step)) for step in (0, 2, 3, 5, 6)] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025])


def caffe_updates(kind, w, grads, rate=0.1, momentum=0.9, momentum2=0.999, delta=1e-8, rms_decay=0.98, decay=0.01):
    """Caffe's ApplyUpdate for one parameter, in float64, over several iterations."""
    w = w.astype(np.float64).copy()
    h = np.zeros_like(w)
    h2 = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + decay * w
        if kind == "SGD":
            h = momentum * h + rate * g
            u = h
        elif kind == "Nesterov":
            previous = h
            h = momentum * h + rate * g
            u = (1 + momentum) * h - momentum * previous
        elif kind == "AdaGrad":
            h = h + g * g
            u = rate * g / (np.sqrt(h) + delta)
        elif kind == "RMSProp":
            h = rms_decay * h + (1 - rms_decay) * g * g
            u = rate * g / (np.sqrt(h) + delta)
        elif kind == "AdaDelta":
            h = momentum * h + (1 - momentum) * g * g
            d = g * np.sqrt((h2 + delta) / (h + delta))
            h2 = momentum * h2 + (1 - momentum) * d * d
            u = rate * d
        else:
            h = momentum * h + (1 - momentum) * g
            h2 = momentum2 * h2 + (1 - momentum2) * g * g
            u = rate * math.sqrt(1 - momentum2**t) / (1 - momentum**t) * h / (np.sqrt(h2) + delta)
        w = w - u
    return w


@pytest.mark.parametrize("kind", ["SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam"])
def test_each_solver_type_updates_as_caffe(kind):
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(5,)).astype(np.float32)
    grads = [rng.normal(size=(5,)).astype(np.float32) for _ in range(4)]
    momentum = 0.0 if kind in ("AdaGrad", "RMSProp") else 0.9
    variable = keras.Variable(w0, name="w")
    optimizer = CaffeSolver(
        0.05,
        solver_type=kind,
        momentum=momentum,
        rms_decay=0.98,
        weight_decay=0.01,
        multipliers={variable.path: (2.0, 1.0)},
    )
    for g in grads:
        optimizer.apply([keras.ops.convert_to_tensor(g)], [variable])
    expected = caffe_updates(kind, w0, grads, rate=0.1, momentum=momentum)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=2e-5, atol=1e-6)


def test_l1_decay_and_decay_mult():
    variable = keras.Variable(np.array([2.0, -3.0, 0.0], np.float32), name="w")
    optimizer = CaffeSolver(1.0, weight_decay=0.5, regularization_type="L1", multipliers={variable.path: (1.0, 2.0)})
    optimizer.apply([keras.ops.zeros((3,))], [variable])
    np.testing.assert_allclose(variable.numpy(), [1.0, -2.0, 0.0])  # sign(0) = 0


def test_clip_gradients_scales_all_gradients_by_their_global_norm():
    a, b = keras.Variable(np.zeros(2, np.float32), name="a"), keras.Variable(np.zeros(1, np.float32), name="b")
    optimizer = CaffeSolver(1.0, clip_gradients=1.0)
    optimizer.apply([keras.ops.convert_to_tensor([3.0, 0.0]), keras.ops.convert_to_tensor([4.0])], [a, b])
    np.testing.assert_allclose(np.concatenate([a.numpy(), b.numpy()]), [-0.6, 0.0, -0.8], rtol=1e-6)


def test_iter_size_averages_then_updates_once():
    variable = keras.Variable(np.zeros(1, np.float32), name="w")
    optimizer = CaffeSolver(1.0, iter_size=2)
    optimizer.apply([keras.ops.convert_to_tensor([1.0])], [variable])
    assert variable.numpy()[0] == 0.0
    optimizer.apply([keras.ops.convert_to_tensor([3.0])], [variable])
    assert variable.numpy()[0] == pytest.approx(-2.0)
    assert int(keras.ops.convert_to_numpy(optimizer.iterations)) == 1


def test_config_round_trip():
    schedule = CaffeLearningRate(0.1, "multistep", gamma=0.5, stepvalue=(2, 5), iter_size=2)
    optimizer = CaffeSolver(
        schedule,
        solver_type="Adam",
        momentum=0.9,
        weight_decay=0.001,
        regularization_type="L1",
        multipliers={"conv1/bias": (2.0, 0.0)},
        clip_gradients=5.0,
        iter_size=2,
    )
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert type(restored) is CaffeSolver
    assert restored.get_config() == optimizer.get_config()
    assert restored.schedule.get_config() == schedule.get_config()
