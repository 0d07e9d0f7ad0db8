"""A downloaded Zoo net to a Keras model, with the catalog's preprocessing and labels built in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from caffe2keras.zoo.catalog import Net, read_labels
from caffe2keras.zoo.download import Downloaded


def preprocessing_options(net: Net, paths: Mapping[str, object]) -> dict | None:
    """``convert``'s ``preprocessing=`` for the net as its authors fed it; None where the catalog does not know."""
    given = net.preprocessing
    mean = str(paths["mean"]) if given["mean_file"] else given["mean"]
    if mean is None and given["scale"] is None:
        return None
    if isinstance(mean, list) and len(set(mean)) == 1:
        # One value for every channel fits inputs of any channel count (MTCNN's L-Net stacks 5 patches).
        mean = mean[:1]
    options = {"mean": mean, "scale": given["scale"]}
    order = {"BGR": "bgr", "RGB": "rgb"}.get(given["channel_order"])
    if order:
        options["channel_order"] = order
    return options


def class_labels(downloaded: Downloaded) -> list[str] | None:
    """The class names a classifier's output indexes; None for other tasks (their outputs are not one score per class)."""
    net = downloaded.net
    if net.task != "classification" or ("labels" in net.files and "labels" not in downloaded.paths):
        return None
    return read_labels(net, downloaded.paths.get("labels"))


def convert_downloaded(
    downloaded: Downloaded,
    *,
    preprocess: bool = True,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    data_format: str = "channels_last",
    progress: bool = False,
):
    """The Keras model of a downloaded net; ``preprocess`` embeds the catalog's preprocessing."""
    from caffe2keras.api import convert

    paths = downloaded.paths
    options = preprocessing_options(downloaded.net, paths) if preprocess else None
    return convert(
        paths["prototxt"],
        paths["weights"],
        input_shapes=input_shapes,
        data_format=data_format,
        progress=progress,
        preprocessing=options,
        labels=class_labels(downloaded),
    )
