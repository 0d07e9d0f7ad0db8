"""Keeps the custom layers' tests (``layers/*_test.py``, beside the layers) and their
``conftest.py`` out of built wheels. setuptools has no declarative setting for this:
``exclude-package-data`` filters data files only, never modules."""

from fnmatch import fnmatch
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

TEST_MODULES = ("*_test.py", "conftest.py")


class BuildPyWithoutTests(build_py):
    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not any(fnmatch(Path(m[2]).name, p) for p in TEST_MODULES)]


setup(cmdclass={"build_py": BuildPyWithoutTests})
