"""The README is a short front page; the docs site holds the rest, and its examples stay valid.

CI builds the site with ``mkdocs build --strict`` (``.ci/run``); these tests check what a build cannot:
that every documented command line parses and every Python example compiles.
"""

from __future__ import annotations

import re
import shlex

import pytest

from caffe2keras.cli import build_parser
from tests.shared import REPO

DOCS = REPO / "docs"
PAGES = [REPO / "README.md", *sorted(DOCS.rglob("*.md"))]


def code_blocks(path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), re.S)


def command_lines(block: str) -> list[str]:
    """The block's commands, continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.split(" #")[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def documented_commands():
    for page in PAGES:
        for block in code_blocks(page, "bash"):
            for line in command_lines(block):
                for part in line.split("&&"):
                    # "[--dir DIR]" marks an option as optional: check the command with it given
                    argv = shlex.split(re.sub(r"\[(-[^\]]*)\]", r"\1", part.strip()))
                    if argv and argv[0] == "caffe2keras":
                        yield pytest.param(argv[1:], id=f"{page.relative_to(REPO)}: {part.strip()[:60]}")


def test_the_readme_is_a_front_page():
    assert len((REPO / "README.md").read_text().splitlines()) < 250


def test_the_site_home_is_the_readme():
    """``docs/index.md`` is the README with its links made relative to ``docs/``."""
    readme = (REPO / "README.md").read_text()
    assert (DOCS / "index.md").read_text() == readme.replace("](docs/", "](")


@pytest.mark.parametrize("argv", list(documented_commands()))
def test_every_documented_command_line_parses(argv):
    """Options a command does not have, or misspelt commands, fail here rather than for a reader."""
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"caffe2keras {shlex.join(argv)}: argparse exited with {exc.code}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_python_example_compiles(page):
    for block in code_blocks(page, "python"):
        compile(block, str(page), "exec")


def test_every_page_is_in_the_site_navigation():
    """mkdocs only warns about a page left out of ``nav``; a page nobody can reach is a broken link."""
    config = (REPO / "mkdocs.yml").read_text()
    listed = set(re.findall(r":\s*([\w/\-]+\.md)\s*$", config, re.M))
    assert {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")} == listed
