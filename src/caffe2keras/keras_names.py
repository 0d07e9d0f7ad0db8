"""The Keras name of a Caffe name, shared by the builder and the weights transplant."""


def keras_name(caffe_name: str) -> str:
    """Keras forbids '/' in names; Caffe nets use it a lot (``inception_3a/1x1``)."""
    return caffe_name.replace("/", "__") or "unnamed"
