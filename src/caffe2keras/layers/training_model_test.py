import keras
import numpy as np

from caffe2keras.layers import Accuracy, CaffeSolver, CaffeTrainingModel, EuclideanLoss, SoftmaxWithLoss


def small_net():
    data, label = keras.Input((4,), name="data"), keras.Input((), name="label")
    scores = keras.layers.Dense(3, name="fc")(data)
    loss = SoftmaxWithLoss(name="loss")([scores, label])
    aux = EuclideanLoss(loss_weight=0.5, name="aux")([scores, keras.ops.zeros_like(scores)])
    accuracy = Accuracy(name="accuracy")([scores, label])
    return CaffeTrainingModel([data, label], [accuracy, loss, aux])


def test_the_loss_is_the_weighted_sum_of_the_loss_outputs_and_logs_hold_each_output():
    model = small_net()
    assert model.loss_weights_by_output == {"loss": 1.0, "aux": 0.5}
    x = {"data": np.ones((2, 4), np.float32), "label": np.array([0, 1], np.float32)}
    accuracy, loss, aux = model(x)
    assert float(model.compute_loss(x, None, [accuracy, loss, aux])) == np.float32(loss + 0.5 * aux)
    logs = model.compute_metrics(x, None, [accuracy, loss, aux])
    assert set(logs) == {"accuracy", "loss", "aux", "total_loss"}


def test_fit_save_and_reload(tmp_path):
    model = small_net()
    model.compile(optimizer=CaffeSolver(0.1, momentum=0.9, multipliers={"fc/bias": (2.0, 0.0)}))
    rng = np.random.default_rng(0)
    x = {"data": rng.normal(size=(8, 4)).astype(np.float32), "label": rng.integers(0, 3, 8).astype(np.float32)}
    history = model.fit(x, batch_size=4, epochs=2, verbose=0, shuffle=False)
    assert history.history["total_loss"][-1] < history.history["total_loss"][0]
    model.save(tmp_path / "net.keras")
    restored = keras.saving.load_model(tmp_path / "net.keras", safe_mode=True)
    assert type(restored) is CaffeTrainingModel
    assert restored.loss_weights_by_output == model.loss_weights_by_output
    assert restored.optimizer.get_config() == model.optimizer.get_config()
    for a, b in zip(model(x), restored(x)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
