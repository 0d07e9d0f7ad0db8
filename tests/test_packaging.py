"""What ships: the wheel holds the package without its tests."""

import subprocess
import sys
import zipfile

from tests.shared import REPO


def test_the_wheel_ships_no_test_modules(tmp_path):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("caffe2keras-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "caffe2keras/layers/pooling.py" in names
    assert "caffe2keras/caffe/caffe.proto" in names
    assert [n for n in names if n.endswith(("_test.py", "conftest.py"))] == []
