"""``caffe2keras predict``: the top classes of images, from a converted ``.keras`` model."""

from __future__ import annotations

import json
import sys


def register(commands) -> None:
    parser = commands.add_parser(
        "predict",
        help="print the top classes a converted model gives images",
        description="Read the images (OpenCV), resize them to the model's input, run the model and print "
        "each image's top classes with their probabilities. A model converted with --preprocess is fed "
        "RGB (or gray) pixels of 0-255 and puts them in the net's order itself; one without is fed the file's pixels as "
        "OpenCV decodes them (BGR, or gray). Labels come from --labels, else from the model "
        "(convert --labels), else are the class numbers.",
    )
    parser.add_argument("model", help="a .keras model made by caffe2keras convert")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("--labels", metavar="FILE", help="class labels, one per line (default: the model's own)")
    parser.add_argument("--top", type=positive_int, default=5, metavar="K", help="classes per image (default 5)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run)


def positive_int(value: str) -> int:
    import argparse

    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1. Received: {value!r}")
    return int(value)


def run(args) -> int:
    from caffe2keras.images import image_input, load_model_file, predict_files, warn_if_raw
    from caffe2keras.labels import decode_predictions, read_labels

    model = load_model_file(args.model)
    if len(model.outputs) != 1:
        from caffe2keras.errors import PreprocessingError

        raise PreprocessingError(
            f"predict reads one output of class scores; {args.model} has {len(model.outputs)} "
            f"({', '.join(model.output_names)}): convert it with --outputs BLOB. Received: outputs={len(model.outputs)}"
        )
    spec = image_input(model)
    warn_if_raw(spec, args.model)
    labels = None if args.labels is None else read_labels(args.labels)
    results, distribution = [], True
    # Batch by batch: memory holds one batch of images and scores, however many files are named.
    for scores in predict_files(model, args.images, spec):
        results.extend(decode_predictions(scores, labels, top=args.top, model=model))
        distribution = distribution and is_distribution(scores)
    # Logits (a train_val net's last InnerProduct) are scores, not probabilities: say which.
    kind = "probability" if distribution else "score"
    if args.json:
        report = [
            {"image": image, "top": [{"class": i, "label": label, kind: p} for i, label, p in top]}
            for image, top in zip(args.images, results)
        ]
        json.dump(report, sys.stdout, indent=2)
        print()
    else:
        print_table(args.images, results, kind)
    return 0


def is_distribution(scores) -> bool:
    import numpy as np

    rows = np.asarray(scores, np.float64).reshape(len(scores), -1)
    return bool(np.all(rows >= 0) and np.allclose(rows.sum(axis=1), 1.0, atol=1e-3))


def print_table(images, results, kind: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from caffe2keras.console import console_text

    # Without labels a class's label is its number: a second column would only repeat the first.
    labelled = any(label != str(index) for top in results for index, label, _ in top)
    table = Table("image", "#", "class", *(["label"] if labelled else []), kind)
    for image, top in zip(images, results):
        for rank, (index, label, probability) in enumerate(top, 1):
            shown_image = console_text(image) if rank == 1 else ""
            shown_label = [console_text(label)] if labelled else []
            table.add_row(shown_image, str(rank), str(index), *shown_label, f"{probability:.4f}")
        table.add_section()
    Console().print(table)
