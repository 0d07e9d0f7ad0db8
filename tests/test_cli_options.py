"""How the command line reads its options: where flags may go, what shapes it accepts."""

from __future__ import annotations

import pytest

from caffe2keras.cli import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["--debug", "convert", "net.prototxt", "-o", "m.keras"],
        ["convert", "net.prototxt", "-o", "m.keras", "--debug"],
        ["zoo", "download", "mtcnn_pnet", "--debug"],
    ],
)
def test_debug_is_accepted_before_and_after_the_command(argv):
    assert build_parser().parse_args(argv).debug is True


def test_debug_after_the_command_shows_the_traceback(tmp_path):
    from caffe2keras.errors import Caffe2KerasError

    with pytest.raises(Caffe2KerasError):
        main(["convert", str(tmp_path / "missing.prototxt"), "-o", str(tmp_path / "m.keras"), "--debug"])


def test_without_debug_the_flag_is_off():
    assert build_parser().parse_args(["convert", "net.prototxt", "-o", "m.keras"]).debug is False
