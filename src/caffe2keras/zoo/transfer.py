"""One file over HTTP(S), resumable and bounded: at most its size, at least a minimum rate.

:class:`ResumableDownloader` is the pooch downloader of :mod:`caffe2keras.zoo.download`: the bytes
of a dropped connection stay in a ``.partial`` file and the rest is asked for with ``Range``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from caffe2keras.caffe.limits import checked_input_file
from caffe2keras.errors import DownloadError, HashMismatchError
from caffe2keras.progress import Progress

FROM_ENV = "CAFFE2KERAS_ZOO_FROM"
CHUNK = 1 << 16


@dataclass(frozen=True)
class Limits:
    """How slow a download may be: a server that drips its body is given up on, not waited for.

    A transfer that has run ``grace_s`` seconds must have averaged ``min_rate`` bytes a second;
    ``silence_s`` is the longest wait for the next bytes. Each file is tried at most ``retries + 1``
    times, so a download ends within about ``(retries + 1) * (grace_s + size / min_rate)`` seconds.
    """

    connect_s: float = 15.0
    silence_s: float = 60.0
    grace_s: float = 30.0
    min_rate: float = 16 * 1024
    max_redirects: int = 5


LIMITS = Limits()


class ResumableDownloader:
    """A pooch downloader that resumes: bytes received so far stay in ``partial`` across drops and runs.

    Plain paths (offline sources) are copied. A server that ignores ``Range`` sends the whole
    file again, which replaces the partial one.
    """

    def __init__(self, partial: Path, bars: Progress, retries: int, max_bytes: int):
        self.partial = partial
        self.bars = bars
        self.retries = retries
        self.max_bytes = max_bytes

    def __call__(self, url: str, output_file: str, pooch=None, check_only: bool = False) -> None:
        if not url.startswith(("http://", "https://")):
            size = checked_input_file(url, "zoo file", self.max_bytes)
            shutil.copyfile(url, output_file)
            if os.path.getsize(output_file) != size:
                raise DownloadError(f"{url}: the file changed while it was copied. Received: url={url!r}")
            return
        import requests
        import urllib3

        self.partial.parent.mkdir(exist_ok=True)
        with requests.Session() as session:
            session.max_redirects = LIMITS.max_redirects
            for attempt in range(self.retries + 1):
                try:
                    self._get(url, session, requests)
                    break
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    urllib3.exceptions.HTTPError,  # read1 raises urllib3's own: a drop, a read timeout
                ) as exc:
                    if attempt == self.retries:
                        raise self._failure(url, exc) from exc
                except requests.RequestException as exc:  # too many redirects, a bad URL or header...
                    raise DownloadError(f"{url}: {type(exc).__name__}: {exc}. Received: url={url!r}") from None
                except OSError:
                    self.partial.unlink(missing_ok=True)  # a full or failing disk: keep nothing half-written
                    raise
        os.replace(self.partial, output_file)

    def _failure(self, url: str, exc: Exception) -> DownloadError:
        have = self.partial.stat().st_size if self.partial.exists() else 0
        if have == 0:  # nothing ever arrived: an offline machine or a host that is down, not a drop
            return DownloadError(
                f"{url}: cannot reach the host ({type(exc).__name__}). Check the network, or take the files "
                f"from a folder with --from DIR (or ${FROM_ENV}). Received: url={url!r}"
            )
        return DownloadError(
            f"{url}: the connection dropped after {have:,} bytes ({type(exc).__name__}); "
            f"run the same command again to resume. Received: url={url!r}"
        )

    def _get(self, url: str, session, requests) -> None:
        offset = self.partial.stat().st_size if self.partial.exists() else 0
        if offset > self.max_bytes:
            self.partial.unlink()
            offset = 0
        # Uncompressed: the byte counts below are then what lands on disk.
        headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
        timeout = (LIMITS.connect_s, LIMITS.silence_s)
        with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
            if response.status_code == 416:  # the partial file is stale (longer than the file)
                self.partial.unlink()
                return self._get(url, session, requests)
            if response.status_code >= 400:
                raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}. Received: url={url!r}")
            resumed = response.status_code == 206 and response.headers.get("Content-Range", "").startswith(
                f"bytes {offset}-"
            )
            offset = offset if resumed else 0
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length and length.isdigit() else None
            if total is not None and total > self.max_bytes:
                self.partial.unlink(missing_ok=True)
                raise self._too_big(url, f"announces {total:,} bytes")
            with open(self.partial, "ab" if resumed else "wb") as out:
                with self.bars.phase("download", total, self.partial.stem) as advance:
                    advance(offset)
                    self._receive(url, response, out, offset, advance)
            if total is not None and self.partial.stat().st_size < total:
                raise requests.exceptions.ChunkedEncodingError(f"{self.partial.stat().st_size} of {total} bytes")
        return None

    def _receive(self, url: str, response, out, offset: int, advance) -> None:
        """Write the body, refusing more than ``max_bytes`` in all and a rate below the limit's."""
        start, received = time.monotonic(), 0
        # read1 returns what has arrived, so that the rate is checked however slowly bytes come.
        for chunk in iter(lambda: response.raw.read1(CHUNK, decode_content=True), b""):
            received += len(chunk)
            if offset + received > self.max_bytes:
                out.close()
                self.partial.unlink(missing_ok=True)
                raise self._too_big(url, "sends more bytes than that")
            out.write(chunk)
            advance(len(chunk))
            elapsed = time.monotonic() - start
            if elapsed > LIMITS.grace_s and received < LIMITS.min_rate * elapsed:
                raise DownloadError(
                    f"{url}: the server sends {received / elapsed:,.0f} bytes a second, below the "
                    f"{LIMITS.min_rate:,.0f} a download must keep up; try again later or another mirror. "
                    f"Received: url={url!r}"
                )

    def _too_big(self, url: str, what: str) -> HashMismatchError:
        return HashMismatchError(
            f"{url}: not the catalogued file: it may have at most {self.max_bytes:,} bytes (its catalogued "
            f"size, or the limit for its kind), and the server {what}; nothing is kept. Received: url={url!r}"
        )
