"""The rules every file or folder caffe2keras writes is held to (see docs/robustness.md).

* An output never replaces one of the command's inputs, named by another path or through a link,
  and a folder output never holds one.
* An output path that is a symbolic link is refused: writing through it would change a file the
  user did not name, and replacing it would silently turn the link into a file.
* A file output never replaces a folder. A folder output (a SavedModel) replaces only an empty
  folder or a SavedModel, never a folder holding anything else.

The writers then write beside the output under a temporary name and rename it into place when
complete, so that a failure leaves no partial file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from caffe2keras.errors import ModelFileError

# What a TensorFlow SavedModel folder holds: the only non-empty folder an export replaces.
SAVED_MODEL_ENTRIES = frozenset({"saved_model.pb", "variables", "assets", "assets.extra", "fingerprint.pb"})


def check_output_path(path, inputs: Iterable = (), folder: bool = False) -> None:
    """Refuse to write ``path`` when that would replace an input, a link, or a folder that is not ours.

    ``inputs`` are the paths the command reads (None entries are skipped); ``folder`` is True for
    an output that is a folder (a SavedModel).
    """
    if os.path.islink(path):
        raise ModelFileError(
            path,
            "is a symbolic link; caffe2keras never writes through or over a link. "
            "Give the path of the file itself, or remove the link.",
        )
    given = replaced_input(path, inputs, folder)
    if given is not None:
        where = "holds" if folder and not _same_file(path, given) else "is"
        raise ModelFileError(path, f"{where} the input {given}; the output would replace it. Choose another path.")
    if not os.path.isdir(path):
        if folder and os.path.lexists(path):
            raise ModelFileError(path, "is a file; a SavedModel is a folder. Choose another path.")
        return
    if not folder:
        raise ModelFileError(path, "is a directory; give a file name.")
    entries = set(os.listdir(path))
    if entries and not ("saved_model.pb" in entries and entries <= SAVED_MODEL_ENTRIES):
        raise ModelFileError(
            path,
            "is a folder that holds other files than a SavedModel; an export replaces only an empty folder "
            "or a SavedModel. Choose a new folder.",
        )


def replaced_input(path, inputs: Iterable, folder: bool = False) -> str | None:
    """The first of ``inputs`` that writing ``path`` would replace (for a folder: that lies in it), or None."""
    for given in inputs:
        if given is not None and _replaces(path, given, folder):
            return os.fspath(given)
    return None


def _same_file(path, given) -> bool:
    if os.path.realpath(path) == os.path.realpath(given):
        return True
    with contextlib.suppress(OSError, ValueError):
        return os.path.samefile(path, given)
    return False


def _replaces(path, given, folder: bool) -> bool:
    if _same_file(path, given):
        return True
    if not folder:
        return False
    inside = os.path.realpath(given)
    return os.path.commonpath([os.path.realpath(path), inside]) == os.path.realpath(path)


@contextlib.contextmanager
def atomic_output(path, suffix: str):
    """A temporary path beside ``path``, renamed to it when the block succeeds: no partial file.

    An OSError (an unwritable directory, a full disk...) is the user's to fix, not a bug: it
    becomes a :class:`ModelFileError` naming the path.
    """
    check_output_path(path)
    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # A short name: the output's own name may already be as long as the file system allows.
        fd, tmp = tempfile.mkstemp(prefix=".c2k-", suffix=suffix, dir=target.parent)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's file is private; the output should not be
        os.replace(tmp, target)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename:
            reason += f": {exc.filename}"
        raise ModelFileError(path, f"cannot write the file: {reason}.") from exc
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
