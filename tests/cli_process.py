"""The command line run as users run it: ``python -m caffe2keras`` in a child process, held to a memory bound."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 2 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_cli(*args, cwd=None, env=None, timeout: float = 120, limit_memory: bool = True) -> subprocess.CompletedProcess:
    """``python -m caffe2keras ARGS`` with this checkout's sources; TensorFlow needs ``limit_memory=False``
    (it reserves more address space than it uses)."""
    environment = dict(os.environ, PYTHONPATH=str(REPO / "src"), **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "caffe2keras", *map(str, args)],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_limit_memory if limit_memory else None,
    )


def assert_one_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit status 1 or 2 and one ``caffe2keras: error:`` line holding each fragment, no traceback."""
    assert result.returncode in (1, 2), (result.returncode, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("caffe2keras: error:")]
    assert len(errors) == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
