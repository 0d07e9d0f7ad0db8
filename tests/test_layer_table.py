"""The documented layer table (docs/layers.md) is the registry's, and every registered type is tested."""

from __future__ import annotations

import re

from caffe2keras.cli import main
from caffe2keras.converters import registered_types
from caffe2keras.converters.layer_table import markdown_table, table_rows
from tests.shared import REPO


def documented_table() -> str:
    page = (REPO / "docs" / "layers.md").read_text()
    section = page[page.index("## Supported layers") :]
    start = section.index("| Caffe type |")
    return section[start : section.index("\n\n", start)] + "\n"


def test_every_registered_type_has_a_row_of_its_own():
    documented = [t for row in table_rows() for t in row.types]
    undocumented = [row.types[0] for row in table_rows() if row.keras == "(a registered converter)"]
    assert undocumented == [], "add a LayerRow for each to converters/layer_table.py"
    assert set(registered_types()) <= set(documented)


def test_the_documented_table_is_the_generated_one(capsys):
    assert main(["layers", "--markdown"]) == 0
    generated = capsys.readouterr().out
    assert generated == markdown_table(table_rows())
    assert documented_table() == generated, "paste `caffe2keras layers --markdown` into docs/layers.md"


def test_every_registered_type_is_tested():
    """A type counts as tested when a test module writes it as a Caffe type string, quoted: in a
    prototxt (``type: "Crop"``) or as a helper's type argument (``layer("Crop", ...)``)."""
    sources = "\n".join(path.read_text() for path in (REPO / "tests").rglob("*.py"))
    quoted = set(re.findall(r'"([A-Za-z0-9]+)"', sources))
    assert sorted(set(registered_types()) - quoted) == []


def test_the_plain_listing_names_every_type(capsys):
    assert main(["layers"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == [t for row in table_rows() for t in row.types]
