"""Write deterministic weights for an example net: ``python examples/make_weights.py NET.prototxt``.

Every parameter blob the prototxt implies gets seeded, fan-in-scaled values,
written next to the prototxt as ``<name>.caffemodel`` by caffe2keras's own
writer, so the README's example needs no download.
"""

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write seeded, fan-in-scaled weights for every parameter blob of a Caffe net, "
        "as NET.caffemodel next to NET.prototxt."
    )
    parser.add_argument("prototxt", help="the net definition (.prototxt)")
    args = parser.parse_args(argv)

    # Imported after parsing, so that --help and usage errors answer at once.
    from caffe2keras.caffe.writer import write_caffemodel
    from caffe2keras.errors import Caffe2KerasError
    from caffe2keras.synthetic import synthetic_weights

    target = Path(args.prototxt).with_suffix(".caffemodel")
    try:
        write_caffemodel(target, synthetic_weights(args.prototxt))
    except Caffe2KerasError as exc:
        print(f"make_weights.py: error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
