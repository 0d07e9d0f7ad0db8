"""How caffe2keras meets Keras: which backend it runs on, and when the custom layers register.

The backend rule, stated once (docs/loading.md repeats it for users): ``KERAS_BACKEND`` if it is
set; else the ``backend`` of Keras's ``keras.json`` when it names an installed backend other than
``tensorflow``; else JAX. Keras writes ``"tensorflow"`` into a new ``keras.json`` itself, so that
value tells no choice from a default, and installing TensorFlow (``caffe2keras[export]``) must not
move anyone off JAX. The rule applies when caffe2keras is imported before Keras; once Keras is
imported its backend is fixed, and the custom layers run on any (they use ``keras.ops`` only).

The custom layers register (``caffe2keras>...``) as soon as Keras is imported, so that
``import caffe2keras`` then ``keras.saving.load_model`` loads every converted model, while
``import caffe2keras`` itself, and the command line's ``--help``, import no Keras: a finder on
``sys.meta_path`` waits for ``keras`` and imports ``caffe2keras.layers`` right after it.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys

from caffe2keras.default_backend import use_default_backend

KERAS_DEFAULT_BACKEND = "tensorflow"


def use_compilation_cache(directory=None) -> None:
    """JAX's persistent compilation cache in ``directory`` (by default caffe2keras' cache
    directory), unless one is set.

    On JAX, rebuilding a loaded model runs every weight's initializer, and XLA compiles one
    program per weight shape: most of a fresh process's ``load_model`` time (bench/loading.py).
    Kept on disk, the programs are compiled once, not in every command. Takes effect only
    before JAX is imported.
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules:
        return
    if directory is None:
        import platformdirs

        directory = platformdirs.user_cache_path("caffe2keras") / "jax"
    os.environ["JAX_COMPILATION_CACHE_DIR"] = str(directory)
    # JAX keeps only programs that took a second to compile; an initializer takes less, many times over.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def configured_backend() -> str | None:
    """The backend the user chose in ``keras.json``, if any (Keras's own default is no choice)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as file:
            backend = json.load(file).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) and backend != KERAS_DEFAULT_BACKEND else None


def choose_backend() -> None:
    """Apply the backend rule, where it still can: before Keras is imported."""
    if "KERAS_BACKEND" in os.environ or "keras" in sys.modules:
        return
    chosen = configured_backend()
    # A dotted or odd name from the config file is no backend, and find_spec would import its parent package.
    if chosen is None or not chosen.isidentifier() or importlib.util.find_spec(chosen) is None:
        use_default_backend()


class _KerasThenLayers:
    """Keras' own loader, then ``caffe2keras.layers`` once Keras has run: a wrapper, so that
    nothing of Keras' is patched; everything else (resources, file names) is Keras' loader's."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        importlib.import_module("caffe2keras.layers")


class _RegisterAfterKeras:
    """A meta path finder that lets ``keras`` load as usual, then imports caffe2keras' layers."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # once is enough, and the look-up below must not find us again
        spec = importlib.util.find_spec("keras")
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _KerasThenLayers(spec.loader)
        return spec


def register_layers_with_keras() -> None:
    """Register the custom layers now if Keras is imported, else as soon as it is."""
    if "keras" in sys.modules:
        importlib.import_module("caffe2keras.layers")
    elif not any(isinstance(finder, _RegisterAfterKeras) for finder in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterKeras())
