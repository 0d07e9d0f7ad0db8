"""Keras', TensorFlow's and tf2onnx's internals are used in one module, which finds them all on the
Keras versions pyproject.toml allows."""

from __future__ import annotations

import ast
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from packaging.specifiers import SpecifierSet

from caffe2keras import framework_internals

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "caffe2keras"
ADAPTER = PACKAGE / "framework_internals.py"
FRAMEWORKS = ("keras", "tensorflow", "tf2onnx")
# Python's own documented hooks, replaced on purpose (not a framework's internals).
DOCUMENTED_HOOKS = {("warnings", "showwarning")}


def _keras_range() -> SpecifierSet:
    text = (ROOT / "pyproject.toml").read_text()
    return SpecifierSet(re.search(r'"keras([^"]*)"', text).group(1))


def test_the_installed_keras_is_in_range_and_has_every_internal():
    assert keras.__version__ in _keras_range()
    assert framework_internals.missing_internals() == []


@pytest.mark.slow
@pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("tensorflow", "tf2onnx")), reason="needs [export]"
)
def test_the_export_internals_are_found():
    # A child process: probing them imports TensorFlow.
    probe = "from caffe2keras.framework_internals import missing_internals; print(missing_internals(export=True))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def _framework_names(tree: ast.Module) -> set[str]:
    """The names a module binds to a framework's modules or objects."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name.split(".")[0] in FRAMEWORKS)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FRAMEWORKS:
            names.update(a.asname or a.name for a in node.names)
    return names


def _patches(path: Path) -> list[str]:
    """Runtime patches in a module: assigning or deleting an attribute of a framework's module, or
    a private attribute of anything but ``self``, or a function of the module's own to an attribute
    (a swapped method), and reading a framework's private attribute."""
    tree = ast.parse(path.read_text())
    framework = _framework_names(tree)
    functions = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    found = []

    def owner(node: ast.Attribute) -> str | None:
        return node.value.id if isinstance(node.value, ast.Name) else None

    def check_target(target, value=None):
        if not isinstance(target, ast.Attribute) or owner(target) in ("self", "cls"):
            return
        if (owner(target), target.attr) in DOCUMENTED_HOOKS:
            return
        swapped = isinstance(value, ast.Name) and value.id in functions
        if owner(target) in framework or target.attr.startswith("_") or swapped:
            found.append(f"{path.relative_to(PACKAGE)}:{target.lineno}: {ast.unparse(target)}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                check_target(target, node.value)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            check_target(node.target, node.value)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                check_target(target)
        elif isinstance(node, ast.Attribute) and owner(node) in framework and node.attr.startswith("_"):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(node)}")
    return found


def _package_files():
    return [p for p in sorted(PACKAGE.rglob("*.py")) if p != ADAPTER]


def test_keras_src_is_imported_in_the_adapter_only():
    assert "keras.src" in ADAPTER.read_text()
    assert [str(p.relative_to(PACKAGE)) for p in _package_files() if "keras.src" in p.read_text()] == []


def test_frameworks_are_patched_in_the_adapter_only():
    assert _patches(ADAPTER)  # the check sees the patches where they are
    assert [patch for path in _package_files() for patch in _patches(path)] == []
