"""Write synthetic 28x28 "digits" for LeNet's example solver: ``python examples/lenet/make_data.py``.

Each of the 10 classes is a bright stroke pattern of its own (a bar at one of ten angles through
the centre), blurred, shifted by a few pixels and noised, so that LeNet learns it in a few hundred
iterations. Writes ``train0.h5``, ``train1.h5`` (datasets ``data`` (N, 1, 28, 28) and ``label``
(N,), float32) and ``train_list.txt`` next to this script, as Caffe's HDF5Data layer reads them.
"""

import argparse
from pathlib import Path

import numpy as np

SIZE = 28


def digit(label: int, rng: np.random.Generator) -> np.ndarray:
    angle = np.pi * label / 10
    y, x = np.mgrid[:SIZE, :SIZE] - (SIZE - 1) / 2 - rng.integers(-3, 4, size=2)[:, None, None]
    distance = np.abs(x * np.sin(angle) - y * np.cos(angle))
    along = np.abs(x * np.cos(angle) + y * np.sin(angle))
    image = np.exp(-(distance**2) / 3.0) * (along < 9 + label % 3)
    return np.clip(image + rng.normal(scale=0.1, size=image.shape), 0, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="images in all (default 2000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import h5py

    rng = np.random.default_rng(args.seed)
    labels = rng.integers(0, 10, size=args.count)
    images = np.stack([digit(int(c), rng) for c in labels])[:, None].astype(np.float32)
    folder = Path(__file__).resolve().parent
    half = args.count // 2
    names = []
    for index, rows in enumerate((slice(0, half), slice(half, None))):
        name = f"train{index}.h5"
        with h5py.File(folder / name, "w") as f:
            f["data"] = images[rows]
            f["label"] = labels[rows].astype(np.float32)
        names.append(name)
    (folder / "train_list.txt").write_text("".join(f"{name}\n" for name in names))
    print(f"wrote {args.count} images in {', '.join(names)} and train_list.txt in {folder}")


if __name__ == "__main__":
    main()
