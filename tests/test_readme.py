"""The README's commands are the ones CI and users run, and the predictions walkthrough runs as written."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared import REPO


def bash_blocks():
    return re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_ci_runs_the_readme_test_command():
    test_command = bash_blocks()[1].strip()
    assert test_command.splitlines()[-1] in (REPO / ".ci" / "run").read_text().splitlines()


def test_first_command_installs_and_converts_the_shipped_example():
    install = bash_blocks()[0].strip()
    assert install.startswith("pip install -e")
    assert "caffe2keras convert examples/" in install


WALKTHROUGH_NET = """
name: "TinyCaffeNet"
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 10 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc7" type: "InnerProduct" bottom: "conv1" top: "fc7" inner_product_param { num_output: 8 } }
layer { name: "relu7" type: "ReLU" bottom: "fc7" top: "fc7" }
layer { name: "drop7" type: "Dropout" bottom: "fc7" top: "fc7" dropout_param { dropout_ratio: 0.5 } }
layer { name: "fc8" type: "InnerProduct" bottom: "fc7" top: "fc8" inner_product_param { num_output: 4 } }
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""


def walkthrough_blocks():
    page = (REPO / "docs" / "guide" / "predict.md").read_text()
    section = page[: page.index("\n## ")]
    return re.findall(r"```bash\n(.*?)```", section, re.S)[0], re.findall(r"```python\n(.*?)```", section, re.S)[0]


@pytest.mark.slow
def test_walkthrough_runs_on_a_small_net_of_caffenets_shape(tmp_path, monkeypatch, capsys):
    """The guide's convert, predict and fine-tune steps, verbatim, on a tiny CaffeNet look-alike."""
    import shlex

    import cv2
    import numpy as np

    from caffe2keras.caffe.writer import blob_bytes, write_caffemodel
    from caffe2keras.cli import main
    from caffe2keras.synthetic import synthetic_weights

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    Path("deploy.prototxt").write_text(WALKTHROUGH_NET)
    write_caffemodel("bvlc_reference_caffenet.caffemodel", synthetic_weights("deploy.prototxt"))
    mean = rng.uniform(0, 255, (1, 3, 16, 16)).astype(np.float32)  # centre-cropped to 12x12
    Path("ilsvrc_2012_mean.binaryproto").write_bytes(blob_bytes(mean, legacy=True))
    labels = ["n01 tench", "n02 goldfish", "n03 great white shark", "n04 tiger shark"]
    Path("synset_words.txt").write_text("\n".join(labels) + "\n")
    cv2.imwrite("cat.jpg", rng.integers(0, 256, (30, 20, 3), dtype=np.uint8))

    commands, code = walkthrough_blocks()
    for line in commands.strip().splitlines():
        argv = shlex.split(line)
        assert argv[0] == "caffe2keras"
        assert main(argv[1:]) == 0, line
    printed = capsys.readouterr().out
    assert "cat.jpg" in printed and "probability" in printed and any(label in printed for label in labels)

    namespace = {
        "x_train": rng.integers(0, 256, (6, 12, 12, 3)).astype(np.float32),
        "y_train": rng.integers(0, 5, 6),
    }
    exec(compile(code, "docs/guide/predict.md", "exec"), namespace)
    model, base = namespace["model"], namespace["base"]
    assert tuple(model.output.shape) == (None, 5)
    assert not base.trainable_weights and model.get_layer("new_head").trainable_weights


def test_the_weights_example_prints_its_usage():
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_weights.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: make_weights.py")
