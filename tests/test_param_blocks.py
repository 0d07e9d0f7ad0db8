"""A converted model keeps its net's ``param { lr_mult decay_mult }``: frozen layers are
``trainable=False``, other multipliers go with the model (and its ``.keras`` file) to
:class:`~caffe2keras.layers.CaffeSolver`, as the training path gives them."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import caffe2keras
from caffe2keras.cli import main
from caffe2keras.layers import CaffeSolver
from tests.nets import layer, net, write_net
from tests.shared import case_dirs, requires_shared


def _params(*multipliers) -> str:
    return " ".join(f"param {{ lr_mult: {lr} decay_mult: {decay} }}" for lr, decay in multipliers)


IP = "inner_product_param { num_output: 3 }"
INNER_PRODUCTS = (
    layer("InnerProduct", f"{_params((0, 1), (0, 0))} {IP}", tops=("a",), name="frozen")
    + layer("InnerProduct", f"{_params((0, 1), (2, 0))} {IP}", bottoms=("a",), tops=("b",), name="mixed")
    + layer("InnerProduct", IP, bottoms=("b",), tops=("c",), name="plain")
)
NET = net(
    {"data": (2, 4)},
    INNER_PRODUCTS + layer("BatchNorm", _params((0, 0), (0, 0), (0, 0)), bottoms=("c",), tops=("c",), name="bn"),
)
RNG = np.random.default_rng(0)
WEIGHTS = [
    *(
        (
            name,
            "InnerProduct",
            [RNG.standard_normal((3, n)).astype(np.float32), RNG.standard_normal(3).astype(np.float32)],
        )
        for name, n in (("frozen", 4), ("mixed", 3), ("plain", 3))
    ),
    ("bn", "BatchNorm", [np.zeros(3, np.float32), np.ones(3, np.float32), np.ones(1, np.float32)]),
]


def test_lr_mult_0_freezes_and_other_multipliers_are_carried_through_the_keras_file(tmp_path):
    prototxt, weights = write_net(tmp_path, NET, WEIGHTS)
    model = caffe2keras.convert(prototxt, weights)
    assert not model.get_layer("frozen").trainable
    # BatchNorm's lr_mult 0 is Caffe's rule for statistics: Keras' layer stays in training mode.
    assert model.get_layer("mixed").trainable and model.get_layer("bn").trainable
    expected = {"mixed/kernel": (0.0, 1.0), "mixed/bias": (2.0, 0.0)}
    assert caffe2keras.parameter_multipliers(model) == expected
    path = tmp_path / "model.keras"
    caffe2keras.save_model(model, path)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    assert not reloaded.get_layer("frozen").trainable
    assert caffe2keras.parameter_multipliers(path) == expected
    with pytest.raises(caffe2keras.ModelFileError, match="Received: path="):
        caffe2keras.parameter_multipliers(prototxt)


def test_caffe_solver_applies_the_carried_multipliers(tmp_path):
    prototxt, weights = write_net(tmp_path, net({"data": (2, 4)}, INNER_PRODUCTS), WEIGHTS[:3])
    x, y = RNG.standard_normal((2, 4)).astype(np.float32), RNG.standard_normal((2, 3)).astype(np.float32)

    def step(multipliers):
        model = caffe2keras.convert(prototxt, weights)
        before = {v.path: np.array(v.numpy()) for v in model.weights}
        solver = CaffeSolver(0.1, multipliers=multipliers(model))
        model.compile(optimizer=solver, loss="mean_squared_error")
        model.train_on_batch(x, y)
        return {v.path: np.array(v.numpy()) - before[v.path] for v in model.weights}

    carried = step(caffe2keras.parameter_multipliers)
    plain = step(lambda model: {})
    assert not np.any(carried["frozen/kernel"]) and not np.any(carried["mixed/kernel"])
    np.testing.assert_allclose(carried["mixed/bias"], 2 * plain["mixed/bias"], rtol=1e-6)
    assert np.any(plain["mixed/kernel"])
    np.testing.assert_array_equal(carried["plain/kernel"], plain["plain/kernel"])


@pytest.mark.slow
def test_the_convert_summary_names_frozen_layers_and_multipliers(tmp_path, capsys):
    prototxt, weights = write_net(tmp_path, NET, WEIGHTS)
    assert main(["convert", str(prototxt), str(weights), "-o", str(tmp_path / "m.keras")]) == 0
    out = capsys.readouterr().out
    assert "frozen (lr_mult 0, trainable=False): frozen\n" in out
    assert "0/1 on mixed/kernel; 2/0 on mixed/bias" in out


@pytest.mark.slow
@requires_shared
@pytest.mark.parametrize("case_id", ["lenet_param_mults", "finetune"])
def test_convert_and_train_read_the_same_multipliers(case_id):
    from caffe2keras.training import from_solver

    case = next(p.values[0] for p in case_dirs("train") if p.id == case_id)
    training = from_solver(case / "solver.prototxt", max_iter=0)
    shapes = {name: (1, *shape[1:]) for name, shape in training.dataset.caffe_shapes().items() if name == "data"}
    model = caffe2keras.convert(case / "train.prototxt", input_shapes=shapes)
    trained_frozen = {v.path for v in training.model.weights if not v.trainable}
    converted_frozen = {v.path for v in model.weights if v.path.split("/")[0] in _frozen_layers(model)}
    assert trained_frozen == converted_frozen
    assert caffe2keras.parameter_multipliers(model) == {
        path: multipliers for path, multipliers in training.net.multipliers().items() if path not in trained_frozen
    }


def _frozen_layers(model) -> set[str]:
    return {layer.name for layer in model.layers if layer.weights and not layer.trainable}


def test_a_keras_batch_normalization_gets_lr_mult_0_instead_of_trainable_false(tmp_path):
    # PSPNet's BN is Keras' BatchNormalization: trainable=False would switch it to its moving statistics.
    text = net({"data": (1, 2, 3, 3)}, layer("BN", _params(*[(0, 0)] * 4) + " bn_param { }", tops=("data",), name="bn"))
    prototxt, _ = write_net(tmp_path, text)
    model = caffe2keras.convert(prototxt)
    assert model.get_layer("bn").trainable
    multipliers = caffe2keras.parameter_multipliers(model)
    assert multipliers["bn/gamma"] == multipliers["bn/beta"] == (0.0, 0.0)


def test_a_long_list_of_multipliers_is_counted_not_spelled_out():
    """A Zoo net's dozens of biases at lr_mult 2 make one short line, not thousands of characters."""
    from caffe2keras.cli.common import some_of

    biases = [f"conv{i}/bias" for i in range(57)]
    assert some_of(biases, "variables") == "57 variables (conv0/bias, conv1/bias, conv2/bias, ...)"
    assert some_of(biases[:4], "variables") == "conv0/bias, conv1/bias, conv2/bias, conv3/bias"
