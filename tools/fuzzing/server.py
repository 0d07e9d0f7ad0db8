"""A misbehaving HTTP server on 127.0.0.1 for the download families, one per worker process.

``GET /MODE/NAME`` serves file ``NAME`` the way ``MODE`` says: ``ok``; ``short`` (a
Content-Length beyond the body, then the connection closes); ``long`` (more bytes than the
catalog's size); ``endless`` (no length, bytes until the client gives up,
capped at :data:`ENDLESS_CAP`); ``drip`` (a byte at a time, slowly, for ever); ``huge`` (a
Content-Length of a petabyte); ``gzip`` (a gzip bomb as Content-Encoding); ``loop`` (a redirect
to itself); ``to-file`` (a redirect to ``file:///etc/passwd``); ``to-closed`` (a redirect to a
closed port); ``error`` (500); ``other`` (the wrong bytes).
"""

from __future__ import annotations

import functools
import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODES = (
    "ok",
    "short",
    "long",
    "endless",
    "drip",
    "huge",
    "gzip",
    "loop",
    "to-file",
    "to-closed",
    "error",
    "other",
)
ENDLESS_CAP = 64 << 20  # the server's own bound: a client without one fills the disk
DRIP_INTERVAL_S = 0.5
CHUNK = 1 << 16

_SERVER: list = []
FILES: dict[str, bytes] = {}


def url() -> str:
    """The server's base URL, started on first use."""
    if not _SERVER:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _SERVER.append(server)
    return f"http://127.0.0.1:{_SERVER[0].server_address[1]}"


@functools.cache
def _gzip_bomb() -> bytes:
    """256 MB of zeros in 250 kB: made once, as compressing it takes seconds of the worker's CPU."""
    return gzip.compress(bytes(256 << 20), compresslevel=9)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        try:
            self._serve()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass

    def _serve(self):
        _, mode, name = [*self.path.split("/", 2), "", ""][:3]
        data = FILES.get(name)
        if data is None or mode not in MODES:
            self.send_error(404)
            return
        if mode in ("loop", "to-file", "to-closed"):
            target = {"loop": self.path, "to-file": "file:///etc/passwd", "to-closed": "http://127.0.0.1:1/x"}[mode]
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "error":
            self.send_error(500)
            return
        body = {"other": data[::-1] + b"x", "long": data + bytes(len(data) + 1)}.get(mode, data)
        self.send_response(200)
        if mode == "gzip":
            body = _gzip_bomb()
            self.send_header("Content-Encoding", "gzip")
        length = {"short": len(body) + 1000, "huge": 1 << 50}.get(mode, len(body))
        if mode not in ("endless", "drip"):
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        if mode == "endless":
            for _ in range(ENDLESS_CAP // CHUNK):
                self.wfile.write(bytes(CHUNK))
        elif mode == "drip":
            while True:
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(DRIP_INTERVAL_S)
        else:
            self.wfile.write(body)
