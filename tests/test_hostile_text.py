"""Text from files on the terminal and in labels (issue 22): never raw escape sequences, never read
as rich markup, and a labels file in one format: one label per line, no control characters."""

from __future__ import annotations

import numpy as np
import pytest

import caffe2keras
from caffe2keras import ModelFileError
from caffe2keras.cli import main
from caffe2keras.console import console_text, printable
from caffe2keras.labels import MAX_LABELS_BYTES, read_labels
from tests.test_predict import LABELS, write_image

ESC = "\x1b"


def test_printable_escapes_what_a_terminal_would_act_on():
    assert printable("red\x1b[31m\x07\u202eok\tx\ny") == "red\\x1b[31m\\x07\\u202eok\tx\ny"
    assert console_text("[/x] [bold]") == "\\[/x] \\[bold]"


@pytest.mark.parametrize("separator", ["\x0c", "\x0b", "\x1c", "\x85", "\u2028", "\r"])
def test_a_labels_line_with_odd_whitespace_is_refused_by_line(tmp_path, separator):
    path = tmp_path / "labels.txt"
    path.write_text(f"a\nb{separator}c\nd\n", encoding="utf-8", newline="")
    with pytest.raises(ModelFileError, match=r"line 2 holds the control character .*one label per line"):
        read_labels(path)


def test_labels_lines_end_in_newline_or_crlf(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("\ufeffa b\r\nc\td\r\n\r\n".encode())
    assert read_labels(path) == ["a b", "c\td"]


def test_an_ansi_label_is_refused(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text(f"a\n{ESC}[2J{ESC}[31mowned\n")
    with pytest.raises(ModelFileError, match=r"line 2 holds the control character \\x1b"):
        read_labels(path)


def test_a_labels_file_past_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "labels.txt"
    with open(path, "wb") as file:
        file.truncate(MAX_LABELS_BYTES + 1)
    with pytest.raises(ModelFileError, match="may have at most"):
        read_labels(path)


@pytest.fixture
def labelled_model(tmp_path):
    """The tiny predict net, carrying labels with escape sequences and markup (as a hostile .keras could)."""
    from caffe2keras.caffe.writer import write_caffemodel
    from tests.test_predict import BIAS, TRAIN_VAL, WEIGHT

    prototxt = tmp_path / "tiny.prototxt"
    prototxt.write_text(TRAIN_VAL)
    weights = tmp_path / "tiny.caffemodel"
    write_caffemodel(weights, [("fc", "InnerProduct", [WEIGHT, BIAS])])
    labels = [f"{ESC}]0;owned{ESC}\\{ESC}[31mred", "[/x]", "[bold]b", *LABELS[3:]]
    model = caffe2keras.convert(prototxt, weights, preprocessing={"scale": 1.0}, labels=labels)
    path = tmp_path / "m.keras"
    caffe2keras.save_model(model, path)
    return path


def test_predict_prints_hostile_labels_and_file_names_escaped(labelled_model, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # one table row per line
    image = write_image(tmp_path / "[bold]evil.png", np.zeros((6, 5, 3), np.uint8))
    assert main(["predict", str(labelled_model), image, "--top", "4"]) == 0
    out = capsys.readouterr().out
    assert ESC not in out
    assert "\\x1b[31mred" in out and "[/x]" in out and "[bold]b" in out and "[bold]evil.png" in out


def test_errors_naming_hostile_files_are_one_printable_line(tmp_path, capsys):
    name = tmp_path / f"[/x]{ESC}[2J.prototxt"
    assert main(["inspect", str(name)]) == 1
    err = capsys.readouterr().err
    assert ESC not in err and "[/x]\\x1b[2J.prototxt: no such file" in err
