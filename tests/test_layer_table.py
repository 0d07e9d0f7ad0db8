"""The documented layer table (docs/layers.md, filled in when the site is built) is the registry's, and
every registered type is tested."""

from __future__ import annotations

import re
import sys

from caffe2keras.cli import main
from caffe2keras.converters import IDENTITY, LayerRule, register_rule, registered_types
from caffe2keras.converters.base import LayerDoc, converts, registry_snapshot
from caffe2keras.converters.layer_table import UNDOCUMENTED, LayerRow, markdown_table, table_rows
from tests.shared import REPO
from tools import docs_hooks


def built_layers_page() -> str:
    """docs/layers.md as the site's build hook hands it to MkDocs."""
    return docs_hooks.on_page_markdown((REPO / "docs" / "layers.md").read_text())


def test_every_registered_type_has_a_row_of_its_own():
    documented = [t for row in table_rows() for t in row.types]
    undocumented = [row.types[0] for row in table_rows() if row.keras == UNDOCUMENTED]
    assert undocumented == [], "register each with @converts(..., doc=LayerDoc(...))"
    assert set(registered_types()) <= set(documented)


def test_the_documented_table_is_the_generated_one(capsys):
    assert main(["layers", "--markdown"]) == 0
    generated = capsys.readouterr().out
    assert generated == markdown_table(table_rows())
    page = (REPO / "docs" / "layers.md").read_text()
    assert "| Caffe type |" not in page, "the table is written at build time: leave only the placeholder"
    built = built_layers_page()
    section = built[built.index("## Supported layers") :]
    assert docs_hooks.PLACEHOLDER not in built
    assert generated.rstrip("\n") + "\n\n" in section


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


def test_a_plugin_without_a_doc_gets_a_bare_row_at_the_end():
    with registry_snapshot():
        register_rule(LayerRule("MyPluginType", lambda node: IDENTITY, None))
        assert table_rows()[-1] == LayerRow(("MyPluginType",), UNDOCUMENTED, "")


def test_types_registered_with_one_doc_share_its_row():
    doc = LayerDoc("`Identity`", "test only")
    with registry_snapshot():
        converts("MyTypeA", "MyTypeB", shapes=None, doc=doc)(lambda node: IDENTITY)
        converts("MyTypeC", shapes=None, doc=doc)(lambda node: IDENTITY)
        rows = [row for row in table_rows() if row.notes == "test only"]
    assert rows == [LayerRow(("MyTypeA", "MyTypeB", "MyTypeC"), "`Identity`", "test only")]


def test_converter_modules_are_found_without_a_list():
    """A new family module needs no line in converters/__init__.py: every module there is imported."""
    package = REPO / "src" / "caffe2keras" / "converters"
    modules = {p.stem for p in package.glob("*.py") if not p.stem.startswith("_")}
    assert {m for m in modules if f"caffe2keras.converters.{m}" not in sys.modules} == set()
