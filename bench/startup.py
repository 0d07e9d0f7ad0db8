"""Start-up time of the command line and of ``import caffe2keras``, beside Python's own.

    python bench/startup.py [--runs 21]

Each run starts a fresh process per command, the commands alternated so that all see the
same machine load: ``python -c pass`` (the interpreter alone, the floor), ``python -c "import
caffe2keras"`` (lazy: no Keras, no backend), ``caffe2keras --help`` and ``caffe2keras
--version`` (the console script), ``python -c "import keras"`` (what the lazy imports
avoid) and ``python -c "import caffe2keras, keras"`` (Keras with caffe2keras' layers registered
by the import hook: what ``import caffe2keras`` then ``keras.saving.load_model`` costs before
loading). The package's bytecode is written first, as an install does, and one unmeasured run
of each warms the caches. Reports the median wall time, its range, and the median CPU time;
the target for ``caffe2keras --help`` is under 0.3 s.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from common import compile_sources, machine, measure, median

TARGET_S = 0.3


def console_script() -> list[str]:
    """The installed ``caffe2keras`` script beside this interpreter, else ``python -m caffe2keras``."""
    script = Path(sys.executable).parent / "caffe2keras"
    if script.exists():
        return [str(script)]
    found = shutil.which("caffe2keras")
    return [found] if found else [sys.executable, "-m", "caffe2keras"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="alternated runs (medians are reported)")
    args = parser.parse_args()
    cli = console_script()
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        'python -c "import caffe2keras"': [sys.executable, "-c", "import caffe2keras"],
        "caffe2keras --help": [*cli, "--help"],
        "caffe2keras --version": [*cli, "--version"],
        'python -c "import keras"': [sys.executable, "-c", "import keras"],
        'python -c "import caffe2keras, keras"': [sys.executable, "-c", "import caffe2keras, keras"],
    }
    compile_sources()
    for command in commands.values():
        measure(command)
    runs = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, command in commands.items():
            runs[name].append(measure(command))
    print(f"{machine()}; {args.runs} alternated runs per command")
    print("| command | wall (median, range) | CPU (median) |\n|---|---|---|")
    for name, measured in runs.items():
        walls = [r.wall_s for r in measured]
        print(
            f"| `{name}` | {median(measured, 'wall_s'):.3f} s ({min(walls):.3f}-{max(walls):.3f}) "
            f"| {median(measured, 'cpu_s'):.3f} s |"
        )
    help_s = median(runs["caffe2keras --help"], "wall_s")
    verdict = "meets" if help_s < TARGET_S else "misses"
    print(f"caffe2keras --help: {help_s:.3f} s median, {verdict} the {TARGET_S} s target")


if __name__ == "__main__":
    main()
