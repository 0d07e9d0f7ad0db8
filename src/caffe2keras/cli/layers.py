"""``caffe2keras layers``: the Caffe layer types caffe2keras converts, and into what."""

from __future__ import annotations

import re


def register(commands) -> None:
    parser = commands.add_parser(
        "layers",
        help="list the Caffe layer types and the Keras layers they become",
        description="List every Caffe layer type caffe2keras reads: those with a converter, the data layers "
        "(which become inputs) and those it refuses, with the Keras layers they become.",
    )
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="print the table of the docs' Supported layers page (Markdown), with the notes on each type",
    )
    parser.set_defaults(run=run)


def run(args) -> int:
    from caffe2keras.converters.layer_table import markdown_table, table_rows

    rows = table_rows()
    if args.markdown:
        print(markdown_table(rows), end="")
        return 0
    width = max(len(t) for row in rows for t in row.types)
    for row in rows:
        keras = "not converted" if row.keras == "—" else re.sub(r"`|\*\*", "", row.keras)
        for layer_type in row.types:
            print(f"{layer_type:<{width}}  {keras}")
    return 0
