"""Reading solvers and data layers for training: what is taken, what is refused, in what order data comes."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from caffe2keras.caffe import parse_net_text
from caffe2keras.cli import main
from caffe2keras.errors import SolverError, UnsupportedParameterError
from caffe2keras.training.data import CaffeBatches, data_layer_batches
from caffe2keras.training.solver import read_solver_file
from tests.shared import REPO

NET = """
name: "tiny"
layer { name: "data" type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "list.txt" batch_size: 4 } }
layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" inner_product_param { num_output: 3 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }
"""
SOLVER = 'net: "net.prototxt"\nbase_lr: 0.1\nlr_policy: "fixed"\nmax_iter: 2\n'


@pytest.fixture
def case(tmp_path):
    (tmp_path / "net.prototxt").write_text(NET)
    for index, rows in enumerate((5, 3)):
        with h5py.File(tmp_path / f"d{index}.h5", "w") as f:
            f["data"] = np.arange(rows * 2, dtype=np.float32).reshape(rows, 2) + 100 * index
            f["label"] = np.zeros(rows, np.float32)
    (tmp_path / "list.txt").write_text("d0.h5\nd1.h5\n")
    return tmp_path


def write_solver(folder, extra: str = "") -> str:
    path = folder / "solver.prototxt"
    path.write_text(SOLVER + extra)
    return str(path)


def test_the_net_path_is_found_beside_the_solver_from_another_directory(case, monkeypatch, tmp_path_factory):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    solver = read_solver_file(write_solver(case, 'type: "Adam"\nmomentum: 0.9\n'))
    assert solver.solver_type == "Adam" and solver.net.name == "tiny"


def test_the_deprecated_solver_type_enum(case):
    assert read_solver_file(write_solver(case, "solver_type: NESTEROV\n")).solver_type == "Nesterov"


@pytest.mark.parametrize(
    "extra, field",
    [
        ('test_net: "other.prototxt"\ntest_iter: 100\ntest_interval: 500\n', "test_net"),
        ("test_iter: 10\ntest_iter: 10\ntest_interval: 500\n", "test_iter"),
        ("test_interval: 500\n", "test_iter"),
        ('type: "SGDX"\n', "type"),
        ('regularization_type: "L3"\n', "regularization_type"),
        ("debug_info: true\n", "debug_info"),
        ("snapshot_format: HDF5\n", "snapshot_format"),
        ('type: "AdaGrad"\nmomentum: 0.9\n', "momentum"),
    ],
)
def test_refused_by_name(case, extra, field):
    with pytest.raises(SolverError, match=f"Received: {field}="):
        read_solver_file(write_solver(case, extra))


def test_an_unknown_lr_policy_is_refused(case):
    path = case / "solver.prototxt"
    path.write_text(SOLVER.replace('"fixed"', '"cosine"'))
    with pytest.raises(SolverError, match="Received: lr_policy='cosine'"):
        read_solver_file(path)


def test_batches_read_rows_in_order_across_files_and_wrap(case, monkeypatch):
    monkeypatch.chdir(case)
    layer = parse_net_text(NET).layer[0]
    batches = data_layer_batches(layer, str(case), steps=3, layout=None, seed=None)
    firsts = [batches[f][0]["data"][:, 0].tolist() for f in range(3)]
    assert firsts == [[0, 2, 4, 6], [8, 100, 102, 104], [0, 2, 4, 6]]  # 8 rows: batch 1 spans both files
    assert len(batches) == 3


def test_other_data_layers_are_refused_by_name():
    layer = parse_net_text('layer { name: "d" type: "WindowData" top: "data" top: "label" }').layer[0]
    with pytest.raises(UnsupportedParameterError, match="Received: type='WindowData'"):
        data_layer_batches(layer, ".", steps=1, layout=None, seed=None)


IMAGE_DATA = """
layer { name: "images" type: "ImageData" top: "data" top: "label"
        image_data_param { source: "images.txt" batch_size: 2 new_height: 4 new_width: 6 }
        transform_param { mean_value: 10 mean_value: 20 mean_value: 30 scale: 0.5 %s } }
"""


def test_image_data_reads_the_list_in_order_and_transforms_as_caffe(tmp_path):
    cv2 = pytest.importorskip("cv2")
    for index in range(3):
        cv2.imwrite(str(tmp_path / f"image {index}.png"), np.full((8, 12, 3), (50 + index, 60, 70), np.uint8))
    (tmp_path / "images.txt").write_text("".join(f"image {index}.png {index + 3}\n" for index in range(3)))
    layer = parse_net_text(IMAGE_DATA % "").layer[0]
    batches = data_layer_batches(layer, str(tmp_path), steps=2, layout=None, seed=1)
    assert batches.caffe_shapes() == {"data": (2, 3, 4, 6), "label": (2,)}
    data = [batches[f][0]["data"] for f in range(2)]
    assert data[0].shape == (2, 4, 6, 3)  # channels_last
    np.testing.assert_allclose(data[0][0, 0, 0], [(50 - 10) / 2, (60 - 20) / 2, (70 - 30) / 2])
    assert [batches[f][0]["label"].tolist() for f in range(2)] == [[3, 4], [5, 3]]  # wraps to the first
    cropped = data_layer_batches(
        parse_net_text(IMAGE_DATA % "crop_size: 3 mirror: true").layer[0], str(tmp_path), 1, None, 1
    )
    assert cropped.caffe_shapes()["data"] == (2, 3, 3, 3)
    assert cropped[0][0]["data"].shape == (2, 3, 3, 3)


def test_cli_errors_name_the_field(case, capsys):
    assert main(["train", write_solver(case, "snapshot_diff: true\n")]) != 0
    assert "snapshot_diff" in capsys.readouterr().err


def test_caffe_batches_is_a_pydataset():
    batches = CaffeBatches({"x": np.arange(6, dtype=np.float32)}, batch_size=4, steps=2)
    assert [batches[i][0]["x"].tolist() for i in range(2)] == [[0, 1, 2, 3], [4, 5, 0, 1]]


def test_data_reads_an_lmdb_of_datums_in_key_order(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    from caffe2keras.caffe import schema

    with lmdb.open(str(tmp_path / "db"), map_size=1 << 20) as env, env.begin(write=True) as txn:
        for index in (2, 0, 1):
            datum = schema().Datum(channels=1, height=2, width=3, label=index, data=bytes([index * 10] * 6))
            txn.put(f"{index:08d}".encode(), datum.SerializeToString())
    text = 'layer { name: "d" type: "Data" top: "data" top: "label" transform_param { scale: 0.5 } '
    layer = parse_net_text(text + 'data_param { source: "db" batch_size: 2 backend: LMDB } }').layer[0]
    batches = data_layer_batches(layer, str(tmp_path), steps=2, layout=None, seed=None)
    assert batches.caffe_shapes() == {"data": (2, 1, 2, 3), "label": (2,)}
    assert [batches[f][0]["label"].tolist() for f in range(2)] == [[0, 1], [2, 0]]
    assert batches[0][0]["data"][1].ravel().tolist() == [5.0] * 6
    leveldb = parse_net_text('layer { name: "d" type: "Data" top: "data" top: "label" data_param { source: "db" } }')
    with pytest.raises(UnsupportedParameterError, match="Received: data_param.backend='LEVELDB'"):
        data_layer_batches(leveldb.layer[0], str(tmp_path), steps=1, layout=None, seed=None)


SIAMESE = """
name: "siamese"
layer { name: "pairs" type: "HDF5Data" top: "pair" top: "sim" hdf5_data_param { source: "list.txt" batch_size: 4 } }
layer { name: "split" type: "Slice" bottom: "pair" top: "a" top: "b" slice_param { slice_dim: 1 } }
layer { name: "ip_a" type: "InnerProduct" bottom: "a" top: "fa" param { name: "w" lr_mult: 1 } param { name: "bias" lr_mult: 2 }
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "ip_b" type: "InnerProduct" bottom: "b" top: "fb" param { name: "w" lr_mult: 1 } param { name: "bias" lr_mult: 2 }
        inner_product_param { num_output: 2 weight_filler { type: "gaussian" std: 0.5 } } }
layer { name: "loss" type: "ContrastiveLoss" bottom: "fa" bottom: "fb" bottom: "sim" top: "loss"
        contrastive_loss_param { margin: 1.0 } }
"""


@pytest.mark.slow
def test_a_siamese_net_trains_its_shared_weights_as_one_and_writes_both_layers(tmp_path):
    from caffe2keras.training import from_solver
    from caffe2keras.training.run import run

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "pairs.h5", "w") as f:
        f["pair"] = rng.normal(size=(8, 2, 3)).astype(np.float32)
        f["sim"] = rng.integers(0, 2, 8).astype(np.float32)
    (tmp_path / "list.txt").write_text("pairs.h5\n")
    (tmp_path / "net.prototxt").write_text(SIAMESE)
    training = from_solver(write_solver(tmp_path, "momentum: 0.9\n"), max_iter=4)
    before = {name: [b.copy() for b in blobs] for name, _, blobs in training.net.caffe_layers()}
    log = run(training)
    after = {name: blobs for name, _, blobs in training.net.caffe_layers()}
    assert set(after) == {"ip_a", "ip_b"} and len(training.model.trainable_variables) == 2
    for index in range(2):
        np.testing.assert_array_equal(after["ip_a"][index], after["ip_b"][index])
    # The shared bias cancels in fa - fb: only the weights move.
    assert not np.array_equal(after["ip_a"][0], before["ip_a"][0])
    assert len(log.outputs["loss"]) == 4


@pytest.mark.slow
def test_many_layer_types_train_and_their_caffemodel_reads_back_exactly(tmp_path, monkeypatch):
    from caffe2keras.caffe import read_weights
    from caffe2keras.training import from_solver

    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f["data"] = rng.normal(size=(12, 2, 6, 6)).astype(np.float32)
        f["label"] = rng.integers(0, 5, 12).astype(np.float32)
    (tmp_path / "list.txt").write_text("d.h5\n")
    shutil.copy(REPO / "tests" / "data" / "training" / "many_layers.prototxt", tmp_path / "net.prototxt")
    solver = write_solver(tmp_path, "momentum: 0.9\nweight_decay: 0.001\n")
    monkeypatch.chdir(tmp_path)
    assert main(["train", solver, "--save-caffemodel", "out.caffemodel", "-q"]) == 0
    written = read_weights("out.caffemodel")
    reloaded = from_solver(solver, "out.caffemodel", max_iter=0)
    layers = reloaded.net.caffe_layers()
    assert (
        {name for name, _, _ in layers}
        == set(written)
        == {"conv1", "prelu1", "deconv", "bn", "sc", "ip1", "emb", "ip2"}
    )
    for name, _, blobs in layers:
        for blob, stored in zip(blobs, written[name].blobs, strict=True):
            np.testing.assert_array_equal(blob, stored.data.reshape(blob.shape))


def test_memory_data_trains_from_the_arrays_given(tmp_path):
    from caffe2keras.errors import LayerError
    from caffe2keras.training import from_solver

    text = NET.replace(
        'type: "HDF5Data" top: "data" top: "label" hdf5_data_param { source: "list.txt" batch_size: 4 }',
        'type: "MemoryData" top: "data" top: "label" memory_data_param { batch_size: 2 channels: 1 height: 1 width: 2 }',
    )
    (tmp_path / "net.prototxt").write_text(text)
    solver = write_solver(tmp_path)
    data = np.arange(8, dtype=np.float32).reshape(4, 1, 1, 2)
    training = from_solver(solver, memory_data={"data": (data, np.zeros(4))})
    assert training.dataset[1][0]["data"].ravel().tolist() == [4, 5, 6, 7]
    with pytest.raises(LayerError, match="memory_data"):
        from_solver(solver)


def test_a_net_given_as_the_solver_says_so(case):
    from caffe2keras.errors import ModelFileError

    with pytest.raises(ModelFileError, match="This is a net definition"):
        read_solver_file(case / "net.prototxt")


def test_the_test_net_runs_every_test_interval_with_the_trained_weights(case, capsys):
    test_data = (
        'layer { name: "test_data" type: "HDF5Data" top: "data" top: "label" include { phase: TEST }\n'
        '        hdf5_data_param { source: "list.txt" batch_size: 2 } }\n'
    )
    text = NET.replace("batch_size: 4 } }", "batch_size: 4 } include { phase: TRAIN } }\n" + test_data)
    text += 'layer { name: "acc" type: "Accuracy" bottom: "ip" bottom: "label" top: "acc" include { phase: TEST } }\n'
    (case / "net.prototxt").write_text(text)
    solver = write_solver(case, "test_iter: 3\ntest_interval: 2\ndisplay: 1\n")
    assert main(["train", solver]) == 0
    out = capsys.readouterr().out
    assert out.count("Testing net (#0)") == 2  # iteration 0 (test_initialization) and 2 (= max_iter)
    assert "    Test net output #0: acc = " in out and "    Test net output #1: loss = " in out


@pytest.mark.parametrize(
    "text, received",
    [
        (
            'type: "ImageData" image_data_param { source: "x" batch_size: 2 rand_skip: 3 }',
            "image_data_param.rand_skip=3",
        ),
        ('type: "ImageData" image_data_param { source: "x" batch_size: 2 mirror: true }', "image_data_param="),
        ('type: "Data" data_param { source: "db" batch_size: 2 backend: LMDB rand_skip: 1 }', "data_param.rand_skip=1"),
        ('type: "Data" data_param { source: "db" batch_size: 2 backend: LMDB scale: 0.5 }', "data_param="),
    ],
)
def test_loader_fields_training_does_not_compute_are_refused_by_name(text, received):
    from caffe2keras.training import image_data

    layer = parse_net_text(f'layer {{ name: "l" top: "data" top: "label" {text} }}').layer[0]
    check = image_data._check_supported if layer.type == "ImageData" else image_data._check_data_supported
    with pytest.raises(UnsupportedParameterError, match=f"Received: {received}"):
        check(layer)


def test_snapshots_go_where_caffe_writes_them_and_resume(case, monkeypatch, tmp_path_factory, capsys):
    # Caffe reads snapshot_prefix from the working directory, not the solver's folder.
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    (elsewhere / "snaps").mkdir()
    monkeypatch.chdir(elsewhere)
    solver = write_solver(case, 'snapshot: 1\nsnapshot_prefix: "snaps/tiny"\n')
    assert main(["train", solver, "-q"]) == 0
    assert sorted(p.name for p in (elsewhere / "snaps").iterdir()) == ["tiny_iter_1.keras", "tiny_iter_2.keras"]
    assert not list(case.glob("**/*.keras"))
    assert main(["train", solver, "--snapshot", "snaps/tiny_iter_1.keras", "--max-iter", "2"]) == 0
    assert "Optimization done: 1 iterations." in capsys.readouterr().out
    # A folder gets the solver's name, as Caffe's upgrade of the field does.
    assert main(["train", write_solver(case, 'snapshot_prefix: "snaps/"\n'), "-q"]) == 0
    assert (elsewhere / "snaps" / "solver_iter_2.keras").exists()


def test_a_snapshot_folder_that_does_not_exist_is_refused_before_training(case, capsys):
    assert main(["train", write_solver(case, 'snapshot: 1\nsnapshot_prefix: "nowhere/tiny"\n')]) != 0
    err = capsys.readouterr().err
    assert "snapshot_prefix" in err and "Received: snapshot_prefix='nowhere/tiny'" in err


def test_a_layer_error_names_the_net_file(case, capsys):
    net = NET.replace("inner_product_param {", "loss_weight: 1 inner_product_param {")
    (case / "net.prototxt").write_text(net)
    assert main(["train", write_solver(case)]) != 0
    err = capsys.readouterr().err
    assert err.startswith(f"caffe2keras: error: {case / 'net.prototxt'}: Layer 'ip'"), err
