"""Whole-process conversion of a VGG16-sized model: ``caffe2keras convert`` against OpenCV's importer.

    python bench/convert.py [--runs 5] [--net vgg16] [--dir DIR]

Each run starts a fresh process for each tool, alternating them so that both see
the same machine load: ``caffe2keras convert NET.prototxt NET.caffemodel -o
NET.keras`` (read, build the Keras model, save it) and ``cv2.dnn.readNetFromCaffe``
of the same files (read and build OpenCV's net). The package's bytecode is written first
(as an installed package has it) and one unmeasured run of each warms the
page cache. Reports medians of wall time and peak RSS, their ratios,
and the spread of each.
"""

from __future__ import annotations

from common import (
    compile_sources,
    convert_command,
    ensure_model,
    machine,
    measure,
    median,
    opencv_read_command,
    parse_arguments,
    spread,
)


def main() -> None:
    args = parse_arguments(__doc__)
    prototxt, weights = ensure_model(args.net, args.dir)
    output = args.dir / f"{args.net}.keras"
    commands = {
        "caffe2keras convert": convert_command(prototxt, weights, output),
        "OpenCV readNetFromCaffe": opencv_read_command(prototxt, weights),
    }
    compile_sources()
    for command in commands.values():
        measure(command)  # warm the page cache and the import caches
    runs = {name: [] for name in commands}
    for index in range(args.runs):
        for name, command in commands.items():
            runs[name].append(measure(command))
            last = runs[name][-1]
            print(
                f"run {index + 1}: {name:<24} {last.wall_s:6.2f} s  {last.peak_rss_mb:7.0f} MB  "
                f"(CPU {last.cpu_s:.2f} s)",
                flush=True,
            )
    size_mb = weights.stat().st_size / 2**20
    print(f"\n{args.net}: {size_mb:.0f} MB caffemodel; {machine()}; medians of {args.runs} alternated runs")
    print(f"{'':26}{'wall s':>8}{'(spread)':>13}{'peak RSS MB':>13}{'(spread)':>15}{'CPU s':>8}")
    for name, measured in runs.items():
        print(
            f"{name:<26}{median(measured, 'wall_s'):8.2f}{spread(measured, 'wall_s'):>13}"
            f"{median(measured, 'peak_rss_mb'):13.0f}{spread(measured, 'peak_rss_mb'):>15}"
            f"{median(measured, 'cpu_s'):8.2f}"
        )
    ours, theirs = runs.values()
    print(
        f"ratio caffe2keras / OpenCV: wall {median(ours, 'wall_s') / median(theirs, 'wall_s'):.2f}x, "
        f"peak RSS {median(ours, 'peak_rss_mb') / median(theirs, 'peak_rss_mb'):.2f}x, "
        f"CPU {median(ours, 'cpu_s') / median(theirs, 'cpu_s'):.2f}x"
    )
    ratios = [a.wall_s / b.wall_s for a, b in zip(ours, theirs)]
    print(f"per-run wall ratios: {', '.join(f'{r:.2f}' for r in ratios)}")


if __name__ == "__main__":
    main()
