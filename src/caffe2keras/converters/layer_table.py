"""The table of supported Caffe layers, as the docs' Supported layers page and ``caffe2keras layers --markdown`` show it.

One row per group of Caffe types with what they become in Keras and what of Caffe's behaviour
is covered. Each row comes from the registration of its types: ``@converts(..., doc=LayerDoc(...))``
or ``declare_unsupported(..., doc=LayerDoc(...))``, so a type is documented where it is converted.
"""

from __future__ import annotations

from dataclasses import dataclass

from caffe2keras.converters.base import LayerDoc, registered_rules, rule_for, unsupported_types
from caffe2keras.errors import RegistryError
from caffe2keras.graph import DATA_LAYER_TYPES

HEADER = ("Caffe type", "Keras layer", "Notes")


@dataclass(frozen=True)
class LayerRow:
    types: tuple[str, ...]
    keras: str  # Markdown
    notes: str  # Markdown
    origin: str = ""  # where the types come from when not BVLC Caffe: "forks", "SSD"...

    @property
    def cells(self) -> tuple[str, str, str]:
        names = ", ".join(f"`{t}`" for t in self.types)
        return (f"{names} ({self.origin})" if self.origin else names, self.keras, self.notes)


# Data layers are no converters' business: the graph makes each one an input.
DATA_LAYERS_ROW = LayerRow(
    ("Input", *sorted(DATA_LAYER_TYPES - {"Input"})),
    "`keras.Input`",
    "shapes from the prototxt or `input_shapes=`",
)
UNDOCUMENTED = "(a registered converter)"


def table_rows() -> list[LayerRow]:
    """The data layers' row, one row per :class:`LayerDoc` of the converters, in registration order
    (types registered with one ``LayerDoc`` share its row), the unsupported types' rows, then one
    bare row per converter registered without a ``LayerDoc`` (a plugin's).

    Raises:
        RegistryError: a type is declared unsupported without a ``LayerDoc``.
    """
    grouped: dict[int, tuple[LayerDoc, list[str]]] = {}
    bare = []
    for rule in registered_rules():
        if rule.doc is None:
            bare.append(rule.type)
        else:
            grouped.setdefault(id(rule.doc), (rule.doc, []))[1].append(rule.type)
    for layer_type, known in unsupported_types().items():
        if rule_for(layer_type) is not None:
            continue  # a converter registered for it wins
        if known.doc is None:
            raise RegistryError(
                f"the unsupported type {layer_type!r} has no row of the layer table; pass doc=LayerDoc(...) "
                f"to declare_unsupported. Received: layer_type={layer_type!r}"
            )
        grouped.setdefault(id(known.doc), (known.doc, []))[1].append(layer_type)
    rows = [LayerRow(tuple(types), doc.keras, doc.notes, doc.origin) for doc, types in grouped.values()]
    return [DATA_LAYERS_ROW, *rows, *(LayerRow((t,), UNDOCUMENTED, "") for t in bare)]


def markdown_table(rows: list[LayerRow]) -> str:
    """The rows as a GitHub Markdown table, as the docs' Supported layers page shows it."""
    lines = [
        "|" + "|".join(f" {cell} " if cell else " " for cell in row) + "|" for row in (HEADER, *(r.cells for r in rows))
    ]
    lines.insert(1, "|" + "|".join("---" for _ in HEADER) + "|")
    return "\n".join(lines) + "\n"
