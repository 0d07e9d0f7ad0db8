"""Where the command line writes (issue 22): never over an input, a link or a folder it did not make,
and never code from the working directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from caffe2keras.cli import main
from tests.cli_process import assert_one_error, run_cli
from tests.nets import layer, net, write_net

TINY = net({"data": (1, 3, 8, 8)}, layer("InnerProduct", "inner_product_param { num_output: 3 }", tops=("fc",)))
# Modules the CLI or its export child import; each writes a marker file if it ever runs.
HOSTILE_MODULES = ("numpy", "keras", "jax", "tensorflow", "tf2onnx", "onnx", "h5py", "rich", "cv2", "json", "google")


@pytest.fixture
def tiny_keras(tmp_path) -> Path:
    prototxt, _ = write_net(tmp_path, TINY)
    output = tmp_path / "tiny.keras"
    assert main(["convert", str(prototxt), "-o", str(output), "-q"]) == 0
    return output


def _hostile_folder(folder: Path, markers: Path) -> Path:
    folder.mkdir()
    markers.mkdir()
    for name in HOSTILE_MODULES:
        (folder / f"{name}.py").write_text(f"open({str(markers / name)!r}, 'w').close()\n")
    return folder


def test_modules_in_the_working_directory_never_run(tmp_path):
    """`python -m` puts the working directory first on the path: the CLI takes it off."""
    markers = tmp_path / "markers"
    cwd = _hostile_folder(tmp_path / "cwd", markers)
    prototxt, _ = write_net(cwd, TINY)
    inspected = run_cli("inspect", prototxt.name, cwd=cwd)
    assert inspected.returncode == 0, inspected.stderr
    assert sorted(p.name for p in markers.iterdir()) == []


@pytest.mark.slow
def test_the_export_child_never_imports_from_the_working_directory(tmp_path, tiny_keras):
    """The export child runs isolated (-I) with an explicit path; tf2onnx is imported only for ONNX."""
    pytest.importorskip("tf2onnx")
    markers = tmp_path / "markers"
    cwd = _hostile_folder(tmp_path / "cwd", markers)
    (cwd / "broken.keras").write_bytes(b"not a zip")
    exported = run_cli("export", "broken.keras", "-o", "out.onnx", cwd=cwd, limit_memory=False)
    assert_one_error(exported, "broken.keras: cannot load the Keras model")
    exported = run_cli("export", tiny_keras, "-o", "out.onnx", "-q", cwd=cwd, limit_memory=False, timeout=300)
    assert exported.returncode == 0, exported.stderr
    assert (cwd / "out.onnx").is_file()
    assert sorted(p.name for p in markers.iterdir()) == []


# ------------------------------------------------------------------ outputs


def test_a_saved_model_over_the_folder_holding_the_input_is_refused(tmp_path, tiny_keras):
    models = tmp_path / "models"
    models.mkdir()
    source = models / "m.keras"
    source.write_bytes(tiny_keras.read_bytes())
    (models / "notes.txt").write_text("mine")
    result = run_cli("export", source, "-o", models, "--format", "saved_model", limit_memory=False)
    assert_one_error(result, "holds the input")
    assert sorted(p.name for p in models.iterdir()) == ["m.keras", "notes.txt"]


def test_a_saved_model_over_a_folder_of_other_files_is_refused(tmp_path, tiny_keras):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    assert main(["export", str(tiny_keras), "-o", str(folder), "--format", "saved_model"]) == 1
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("command", ["export", "convert"])
def test_an_output_naming_its_input_is_refused(tmp_path, tiny_keras, command, capsys):
    before = tiny_keras.read_bytes()
    if command == "export":
        argv = ["export", str(tiny_keras), "-o", str(tiny_keras), "--format", "onnx"]
    else:
        prototxt, _ = write_net(tmp_path, TINY)
        argv = ["convert", str(prototxt), "-o", str(prototxt.with_name("link.keras"))]
        os.symlink(prototxt, prototxt.with_name("link.keras"))
    assert main(argv) in (1, 2)
    assert "caffe2keras: error:" in capsys.readouterr().err
    assert tiny_keras.read_bytes() == before
    assert (tmp_path / "net.prototxt").read_text() == TINY if command == "convert" else True


def test_weights_output_naming_the_architecture_is_refused(tmp_path, tiny_keras, capsys):
    prototxt, _ = write_net(tmp_path, TINY)
    before = tiny_keras.read_bytes()
    assert main(["weights", str(prototxt), str(prototxt), "--into", str(tiny_keras), "-o", str(tiny_keras)]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert tiny_keras.read_bytes() == before


@pytest.mark.parametrize("target_exists", [True, False])
def test_verify_json_through_a_symlink_is_refused_and_the_link_kept(tmp_path, target_exists, capsys):
    prototxt, _ = write_net(tmp_path, TINY)
    target = tmp_path / "elsewhere.json"
    if target_exists:
        target.write_text("{}")
    link = tmp_path / "report.json"
    link.symlink_to(target)
    status = main(["verify", str(prototxt), str(prototxt), "--json", str(link)])
    assert status == 2
    err = capsys.readouterr().err
    assert "is a symbolic link" in err, err
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "{}" if target_exists else not target.exists()


def test_a_keras_output_through_a_symlink_is_refused(tmp_path, capsys):
    prototxt, _ = write_net(tmp_path, TINY)
    link = tmp_path / "m.keras"
    link.symlink_to(tmp_path / "real.keras")
    assert main(["convert", str(prototxt), "-o", str(link)]) == 1
    assert "is a symbolic link" in capsys.readouterr().err
    assert link.is_symlink() and not (tmp_path / "real.keras").exists()


def test_the_api_save_is_atomic_and_refuses_links(tmp_path, tiny_keras, monkeypatch):
    import keras

    import caffe2keras
    from caffe2keras import ModelFileError, saving

    model = keras.saving.load_model(tiny_keras, safe_mode=True)
    link = tmp_path / "link.keras"
    link.symlink_to(tiny_keras)
    with pytest.raises(ModelFileError, match="is a symbolic link"):
        caffe2keras.save_model(model, link)

    def broken(model, path, on_bytes):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(saving, "_save_streaming", broken)
    before = tiny_keras.read_bytes()
    with pytest.raises(ModelFileError, match="No space left"):
        caffe2keras.save_model(model, tiny_keras)
    assert tiny_keras.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".c2k")) == []
