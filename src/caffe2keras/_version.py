"""The installed distribution's version: one source of truth, ``pyproject.toml``."""

from importlib import metadata

try:
    __version__ = metadata.version("caffe2keras")
except metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"
