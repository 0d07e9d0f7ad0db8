"""MkDocs hook (``hooks:`` in mkdocs.yml): the site's layer table is generated when the site is built.

``docs/layers.md`` holds a placeholder where the table goes; the table is what
``caffe2keras layers --markdown`` prints, read from each converter's registration
(``@converts(..., doc=LayerDoc(...))``). A new Caffe type therefore edits no page.
"""

from __future__ import annotations

import sys
from pathlib import Path

PLACEHOLDER = "<!-- the layer table: `caffe2keras layers --markdown`, written here by tools/docs_hooks.py -->"
SOURCES = Path(__file__).resolve().parents[1] / "src"  # as mkdocstrings' `paths: [src]`: no install needed


def layer_table() -> str:
    if str(SOURCES) not in sys.path:
        sys.path.insert(0, str(SOURCES))
    from caffe2keras.converters.layer_table import markdown_table, table_rows

    return markdown_table(table_rows())


def on_page_markdown(markdown: str, **kwargs) -> str:
    if PLACEHOLDER not in markdown:
        return markdown
    return markdown.replace(PLACEHOLDER, layer_table().rstrip("\n"))
