"""Draw a Caffe net as SVG (``caffe2keras inspect --graph``), with the standard library alone.

Blobs are rounded boxes, layers square ones; a layer that writes its bottom in
place (ReLU after a convolution) is folded into the box of the layer before it.
The layout is layered, as Graphviz's ``dot`` does it, in its simplest form:
ranks by longest path from the inputs, long edges through invisible waypoints,
a few barycentre sweeps against crossings, then boxes packed left to right
under their parents. No Graphviz binary is needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from caffe2keras.graph import BlobRef
from caffe2keras.summary import NetSummary

CHAR_WIDTH, LINE_HEIGHT, PADDING = 7.0, 15.0, 8.0
RANK_GAP, NODE_GAP, MARGIN, WAYPOINT_WIDTH = 26.0, 16.0, 20.0, 6.0
SWEEPS = 6
FAILED = ("unsupported", "error")


@dataclass(eq=False)
class _Box:
    id: str
    kind: str  # "layer", "blob" or "waypoint"
    lines: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    title: str = ""
    parents: list[_Box] = field(default_factory=list)
    children: list[_Box] = field(default_factory=list)
    rank: int = 0
    order: int = 0  # position within its rank
    x: float = 0.0  # left
    y: float = 0.0  # top

    @property
    def width(self) -> float:
        if self.kind == "waypoint":
            return WAYPOINT_WIDTH
        return max(len(line) for line in self.lines) * CHAR_WIDTH + 2 * PADDING

    @property
    def height(self) -> float:
        return 0.0 if self.kind == "waypoint" else len(self.lines) * LINE_HEIGHT + PADDING

    @property
    def center(self) -> float:
        return self.x + self.width / 2


def _shape_text(shape) -> str:
    return "?" if shape is None else "×".join(map(str, shape))


def _boxes(summary: NetSummary) -> tuple[list[_Box], list[tuple[_Box, _Box]]]:
    """The blob and layer boxes in network order, and the edges between them."""
    graph = summary.graph
    rows = {row.name: row for row in summary.rows}
    boxes: list[_Box] = []
    edges: list[tuple[_Box, _Box]] = []
    blob_box: dict[BlobRef, _Box] = {}

    def blob(ref: BlobRef, classes: list[str]) -> _Box:
        box = _Box(f"blob:{ref}", "blob", [ref.name, _shape_text(graph.shapes.get(ref))], ["blob", *classes])
        box.title = f"blob {ref.name} {_shape_text(graph.shapes.get(ref))}"
        boxes.append(box)
        blob_box[ref] = box
        return box

    for ref in graph.inputs:
        blob(ref, ["input"])
    layer_box: dict[int, _Box] = {}
    for op in graph.ops:
        row = rows.get(op.name)
        status = row.status if row is not None else "ok"
        line = f"{op.name} ({op.type})"
        in_place = len(op.tops) == 1 and op.bottoms and op.tops[0].name == op.bottoms[0].name
        producer = graph.producers.get(op.bottoms[0]) if in_place else None
        if producer is not None:
            box = layer_box[id(producer)]
            box.lines.append(line)
            blob_box[op.tops[0]] = blob_box[op.bottoms[0]]
            blob_box[op.tops[0]].lines[-1] = _shape_text(graph.shapes.get(op.tops[0]))
            sources = op.bottoms[1:]
        else:
            box = _Box(f"layer:{op.name}", "layer", [line], ["layer"])
            boxes.append(box)
            sources = op.bottoms
        layer_box[id(op)] = box
        if status in FAILED:
            box.classes.append(status)
            box.title += f"{op.name}: {row.reason}\n"
        edges.extend((blob_box[b], box) for b in sources)
        if producer is None:
            edges.extend((box, blob(top, [])) for top in op.tops)
    for box in boxes:
        box.title = box.title.strip() or " ".join(box.lines)
    return boxes, edges


def _layout(boxes: list[_Box], edges: list[tuple[_Box, _Box]]) -> list[list[_Box]]:
    """Ranks, waypoints on long edges, crossing reduction, coordinates. Returns the ranks."""
    for parent, child in edges:
        parent.children.append(child)
        child.parents.append(parent)
    for box in boxes:  # network order is a topological order
        box.rank = max((p.rank + 1 for p in box.parents), default=0)
    ranks: list[list[_Box]] = [[] for _ in range(max((b.rank for b in boxes), default=0) + 1)]
    for box in boxes:
        ranks[box.rank].append(box)
    for parent, child in edges:
        if child.rank - parent.rank > 1:
            _route_through_waypoints(parent, child, ranks)
    for rank in ranks:
        for i, box in enumerate(rank):
            box.order = i
    for _ in range(SWEEPS):
        for rank in ranks[1:]:
            _order_by_barycentre(rank, lambda b: b.parents)
        for rank in reversed(ranks[:-1]):
            _order_by_barycentre(rank, lambda b: b.children)
    y = MARGIN
    for rank in ranks:
        right, pushed = MARGIN - NODE_GAP, []
        for box in rank:
            wanted = sum(p.center for p in box.parents) / len(box.parents) - box.width / 2 if box.parents else right
            box.x, box.y = max(wanted, right + NODE_GAP), y
            pushed.append(box.x - wanted)
            right = box.x + box.width
        # Packing pushes boxes right of where their parents want them: centre the rank instead.
        shift = min(sum(pushed) / len(pushed), rank[0].x - MARGIN)
        for box in rank:
            box.x -= shift
        y += max(b.height for b in rank) + RANK_GAP
    return ranks


def _route_through_waypoints(parent: _Box, child: _Box, ranks: list[list[_Box]]) -> None:
    previous = parent
    parent.children.remove(child)
    child.parents.remove(parent)
    for rank in range(parent.rank + 1, child.rank):
        waypoint = _Box(f"{parent.id}->{child.id}@{rank}", "waypoint", rank=rank, parents=[previous])
        previous.children.append(waypoint)
        ranks[rank].append(waypoint)
        previous = waypoint
    previous.children.append(child)
    child.parents.append(previous)


def _order_by_barycentre(rank: list[_Box], neighbours) -> None:
    positions = {}
    for box in rank:
        linked = neighbours(box)
        if linked:
            positions[id(box)] = sum(b.order for b in linked) / len(linked)
    current = {id(box): i for i, box in enumerate(rank)}
    rank.sort(key=lambda b: positions.get(id(b), current[id(b)]))
    for i, box in enumerate(rank):
        box.order = i


def net_svg(summary: NetSummary) -> str:
    """The net of ``summary`` as an SVG document."""
    boxes, edges = _boxes(summary)
    ranks = _layout(boxes, edges)
    drawn = [b for rank in ranks for b in rank]
    width = max((b.x + b.width for b in drawn), default=0) + MARGIN
    height = max((b.y + b.height for b in drawn), default=0) + MARGIN
    svg = ET.Element(
        "svg",
        xmlns="http://www.w3.org/2000/svg",
        width=f"{width:.0f}",
        height=f"{height:.0f}",
        viewBox=f"0 0 {width:.0f} {height:.0f}",
        **{"font-family": "monospace", "font-size": "12"},
    )
    ET.SubElement(svg, "title").text = summary.prototxt
    ET.SubElement(svg, "style").text = (
        ".layer rect{fill:#e8eef8;stroke:#34495e} .blob rect{fill:#fff;stroke:#7f8c8d} "
        ".input rect{fill:#e8f8ee} .unsupported rect,.error rect{fill:#fdecea;stroke:#c0392b;stroke-width:2} "
        ".edge{fill:none;stroke:#566573;marker-end:url(#arrow)}"
    )
    marker = ET.SubElement(
        ET.SubElement(svg, "defs"),
        "marker",
        id="arrow",
        viewBox="0 0 10 10",
        refX="10",
        refY="5",
        markerWidth="6",
        markerHeight="6",
        orient="auto",
    )
    ET.SubElement(marker, "path", d="M0,0 L10,5 L0,10 z", fill="#566573")
    for box in boxes:
        for child in box.children:
            points = [(box.center, box.y + box.height)]
            while child.kind == "waypoint":
                points.append((child.center, child.y))
                child = child.children[0]
            points.append((child.center, child.y))
            path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
            ET.SubElement(svg, "path", {"class": "edge", "d": path})
    for box in boxes:
        group = ET.SubElement(svg, "g", {"class": " ".join(["node", *box.classes]), "id": box.id})
        ET.SubElement(group, "title").text = box.title
        rounded = "8" if box.kind == "blob" else "2"
        ET.SubElement(
            group,
            "rect",
            x=f"{box.x:.1f}",
            y=f"{box.y:.1f}",
            width=f"{box.width:.1f}",
            height=f"{box.height:.1f}",
            rx=rounded,
        )
        for i, line in enumerate(box.lines):
            text = ET.SubElement(
                group, "text", x=f"{box.center:.1f}", y=f"{box.y + PADDING / 2 + (i + 0.8) * LINE_HEIGHT:.1f}"
            )
            text.set("text-anchor", "middle")
            text.text = line
    return ET.tostring(svg, encoding="unicode", xml_declaration=True)
