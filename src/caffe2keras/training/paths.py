"""Where a training file named in a net, list or solver is: Caffe's rule, shared by every data layer."""

from __future__ import annotations

import os
from pathlib import Path


def resolve_path(path: str, *folders: str | os.PathLike) -> str:
    """``path`` as Caffe opens it (from the working directory), else from the first of ``folders``
    where it exists (a net or list file's own folder), so that a run from elsewhere finds it too."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    for folder in folders:
        candidate = Path(folder) / path
        if candidate.exists():
            return str(candidate)
    return path
