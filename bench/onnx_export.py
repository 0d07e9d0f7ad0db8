"""ONNX straight from Caffe: ``caffe2keras convert -o NET.onnx`` against OpenCV 4's ``readNetFromCaffe``.

    python bench/onnx_export.py [--runs 3] [--nets vgg16,resnet50,googlenet,mobilenet_ssd] [--dir DIR]

The Zoo prototxts of ../shared; the weights are the golden cases' (../shared/tools/caffe_weights.py),
or for MobileNet-SSD, which has no golden case, the synthetic ones (seed 0). Each run starts a fresh
process per tool, the two alternated so that both see the same load; one unmeasured run of each
warms the page cache. The writer neither imports Keras nor TensorFlow: the row holds for a venv
with only ``caffe2keras[onnx]``. Reports medians of wall time and peak RSS, their ratios to
OpenCV's, and the peak RSS over the caffemodel's size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from common import (
    DEFAULT_DIR,
    REPO,
    compile_sources,
    convert_command,
    ensure_weights,
    machine,
    measure,
    median,
    opencv_read_command,
)

SHARED = Path(os.environ.get("CAFFE2KERAS_SHARED", REPO.parent / "shared"))
# net -> (Zoo model folder, golden case whose weights it takes, or None for synthetic weights)
NETS = {
    "vgg16": ("vgg16", "vgg16"),
    "resnet50": ("resnet50", "resnet50"),
    "googlenet": ("bvlc_googlenet", "bvlc_googlenet"),
    "mobilenet_ssd": ("mobilenet_ssd", None),
}


def model_files(net: str, directory: Path) -> tuple[Path, Path]:
    folder, case = NETS[net]
    prototxt = SHARED / "caffe" / "models" / folder / "deploy.prototxt"
    weights = directory / f"{net}.caffemodel"
    if case is None:
        ensure_weights(prototxt, weights)
    elif not weights.exists():
        tool = SHARED / "tools" / "caffe_weights.py"
        subprocess.run(
            [sys.executable, str(tool), str(SHARED / "golden" / "zoo" / case), f"{weights}.partial"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        os.replace(f"{weights}.partial", weights)
    return prototxt, weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="alternated runs (medians are reported)")
    parser.add_argument("--nets", default=",".join(NETS), help=f"comma-separated, of {', '.join(NETS)}")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where the weights are written")
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    compile_sources()
    print(f"{machine()}; medians of {args.runs} alternated runs")
    print(
        f"{'net':<14}{'caffemodel MB':>14}{'ONNX s':>9}{'OpenCV s':>10}{'time x':>8}"
        f"{'ONNX MB':>9}{'OpenCV MB':>11}{'RSS / caffemodel':>18}"
    )
    for net in args.nets.split(","):
        prototxt, weights = model_files(net, args.dir)
        output = args.dir / f"{net}.onnx"
        commands = {
            "onnx": convert_command(prototxt, weights, output),
            "opencv": opencv_read_command(prototxt, weights),
        }
        for command in commands.values():
            measure(command)
        runs = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, command in commands.items():
                runs[name].append(measure(command))
        size = weights.stat().st_size / 2**20
        ours, theirs = runs["onnx"], runs["opencv"]
        print(
            f"{net:<14}{size:14.0f}{median(ours, 'wall_s'):9.2f}{median(theirs, 'wall_s'):10.2f}"
            f"{median(ours, 'wall_s') / median(theirs, 'wall_s'):8.2f}"
            f"{median(ours, 'cpu_s') / median(theirs, 'cpu_s'):7.2f}{median(ours, 'peak_rss_mb'):9.0f}"
            f"{median(theirs, 'peak_rss_mb'):11.0f}{median(ours, 'peak_rss_mb') / size:18.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
