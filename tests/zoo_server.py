"""A local Model Zoo for tests: an HTTP server on 127.0.0.1 and a catalog of tiny generated nets.

The server answers ``Range`` requests, can drop a connection part-way through a body, can be slow
(so that two downloads overlap), and logs every request it served.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

from caffe2keras.caffe.writer import write_caffemodel

PROTOTXT = """name: "tiny"
input: "data"
input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "fc" type: "InnerProduct" bottom: "conv1" top: "fc" inner_product_param { num_output: 3 } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""
LABELS = "n00000001 red thing\nn00000002 green thing\nn00000003 blue thing\n"


def tiny_caffemodel(path: Path, seed: int = 0, padding_layers: int = 0) -> None:
    """A caffemodel for ``PROTOTXT``; ``padding_layers`` adds unused layers to make the file bigger."""
    rng = np.random.default_rng(seed)
    layers = [
        ("conv1", "Convolution", [rng.standard_normal((4, 3, 3, 3), np.float32), rng.standard_normal(4, np.float32)]),
        ("fc", "InnerProduct", [rng.standard_normal((3, 144), np.float32), rng.standard_normal(3, np.float32)]),
    ]
    layers += [(f"unused{i}", "Scale", [np.zeros(4096, np.float32)]) for i in range(padding_layers)]
    write_caffemodel(path, layers)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ZooServer:
    """Files served by path; ``drop_after[path] = n`` closes the next response after n body bytes.

    Misbehaving modes, by path: ``lengths`` sends that Content-Length whatever the body,
    ``endless`` sends a body that never ends (no length), ``drip_s`` sends one byte per that many
    seconds, ``redirects`` answers 302 to another path (itself for a loop).
    """

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    delay_s: float = 0.0  # per 16 kB chunk
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range header)
    lengths: dict[str, int] = field(default_factory=dict)
    endless: set[str] = field(default_factory=set)
    drip_s: dict[str, float] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def gets(self, path: str) -> list[str | None]:
        return [ranged for served, ranged in self.requests if served == path]


def serve(zoo: ZooServer):
    """Start ``zoo`` in a thread; returns the server (call ``shutdown()``)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output clean
            pass

        def do_GET(self):
            zoo.requests.append((self.path, self.headers.get("Range")))
            if self._misbehaves():
                return
            data = zoo.files.get(self.path)
            if data is None:
                self.send_error(404, "Not Found")
                return
            start = 0
            ranged = self.headers.get("Range")
            if ranged:
                start = int(ranged.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            drop = zoo.drop_after.pop(self.path, None)
            for offset in range(0, len(body), 16384):
                if drop is not None and offset >= drop:
                    self.close_connection = True
                    self.connection.shutdown(2)  # the connection drops mid-body
                    return
                self.wfile.write(body[offset : offset + 16384])
                if zoo.delay_s:
                    time.sleep(zoo.delay_s)

        def _misbehaves(self) -> bool:
            """Answer in one of the misbehaving modes, if the path has one."""
            path = self.path
            if path in zoo.redirects:
                self.send_response(302)
                self.send_header("Location", zoo.url(zoo.redirects[path]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return True
            if path not in zoo.endless and path not in zoo.drip_s:
                return False
            self.close_connection = True
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                while True:  # until the client gives up
                    if path in zoo.endless:
                        self.wfile.write(b"\0" * 65536)
                    else:
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(zoo.drip_s[path])
            except OSError:
                pass
            return True

        def send_header(self, keyword, value):
            if keyword == "Content-Length" and self.path in zoo.lengths:
                value = str(zoo.lengths[self.path])
            super().send_header(keyword, value)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    zoo.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def catalog_entry(zoo: ZooServer, root: Path, name: str, *, padding_layers: int = 0, verified: bool = True) -> dict:
    """Serve a tiny net under ``/NAME/`` and return its catalog entry (schema of the package's catalog)."""
    prototxt = PROTOTXT.encode()
    weights_path = root / f"{name}.caffemodel"
    tiny_caffemodel(weights_path, padding_layers=padding_layers)
    weights = weights_path.read_bytes()
    zoo.files.update({f"/{name}/deploy.prototxt": prototxt, f"/{name}/tiny.caffemodel": weights})
    zoo.files[f"/{name}/labels.txt"] = LABELS.encode()
    return {
        "name": name,
        "task": "classification",
        "summary": "a tiny generated classifier",
        "verified": verified,
        "unverified_reason": None if verified else "no published hash for the weights",
        "files": {
            "prototxt": {
                "filename": "deploy.prototxt",
                "urls": [zoo.url(f"/{name}/deploy.prototxt")],
                "hash": sha256(prototxt),
                "size": len(prototxt),
            },
            "weights": {
                "filename": "tiny.caffemodel",
                "urls": [zoo.url(f"/{name}/tiny.caffemodel")],
                "hash": sha256(weights) if verified else None,
                "size": len(weights),
            },
            "labels": {"filename": "labels.txt", "urls": [zoo.url(f"/{name}/labels.txt")], "hash": None, "size": None},
        },
        "input_shape": [1, 3, 8, 8],
        "input_note": None,
        "preprocessing": {
            "channel_order": "BGR",
            "mean": [104.0, 117.0, 123.0],
            "mean_file": False,
            "scale": 0.017,
            "crop": None,
            "note": None,
        },
        "labels": {"format": "lines"},
        "license": {"text": "research only (non-commercial)", "non_commercial": True},
        "citation": "A tiny net, 2026",
        "conflicts": [],
        "notes": None,
    }


def write_catalog(path: Path, entries: list[dict]) -> Path:
    path.write_text(json.dumps({"version": 1, "nets": entries}))
    return path
