"""The README's commands are the ones CI and users run."""

import re
import subprocess
import sys

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


def test_the_weights_example_prints_its_usage():
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "make_weights.py"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: make_weights.py")
