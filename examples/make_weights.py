"""Write deterministic weights for an example net: ``python examples/make_weights.py NET.prototxt``.

Every parameter blob the prototxt implies gets seeded, fan-in-scaled values,
written next to the prototxt as ``<name>.caffemodel`` by caffe2keras's own
writer, so the README's example needs no download.
"""

import sys
from pathlib import Path

from caffe2keras.caffe.writer import write_caffemodel
from caffe2keras.synthetic import synthetic_weights


def main(prototxt: str) -> None:
    target = Path(prototxt).with_suffix(".caffemodel")
    write_caffemodel(target, synthetic_weights(prototxt))
    print(f"wrote {target}")


if __name__ == "__main__":
    main(sys.argv[1])
