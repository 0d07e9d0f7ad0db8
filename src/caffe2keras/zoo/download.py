"""Verified, resumable, concurrency-safe downloads of Model Zoo nets.

``pooch`` checks each file's hash and moves it into place only when it matches, so a file under
its final name is always whole and verified. What pooch leaves to us: HTTP ``Range`` resumption
(:class:`ResumableDownloader` keeps the bytes of a dropped connection in ``.partial/`` and asks for
the rest), trying mirrors in turn, local copies (offline), members of archives, and a file lock so
that two processes filling one cache take turns instead of writing the same file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from caffe2keras.caffe.limits import MAX_HDF5_BYTES, MAX_PROTOTXT_BYTES
from caffe2keras.console import printable
from caffe2keras.errors import (
    CacheError,
    ConversionWarning,
    DownloadError,
    HashMismatchError,
    UnverifiedNetError,
    ZooError,
)
from caffe2keras.labels import MAX_LABELS_BYTES
from caffe2keras.progress import Progress
from caffe2keras.zoo.catalog import ROLES, Net, get_net
from caffe2keras.zoo.transfer import CHUNK, FROM_ENV, ResumableDownloader

CACHE_ENV = "CAFFE2KERAS_ZOO_CACHE"
PARTIAL_DIR = ".partial"
LOCK_FILE = ".caffe2keras-zoo.lock"
# The most bytes a file of each role may have where the catalog gives no size (it is refused past
# the catalogued size otherwise): a server that never ends its body cannot fill the disk.
ROLE_LIMITS = {
    "prototxt": MAX_PROTOTXT_BYTES,
    "labels": MAX_LABELS_BYTES,
    "mean": MAX_PROTOTXT_BYTES,
    "weights": MAX_HDF5_BYTES,
    "archive": MAX_HDF5_BYTES,
    "extra": MAX_HDF5_BYTES,
}


def cache_dir() -> Path:
    """Where nets are kept: ``$CAFFE2KERAS_ZOO_CACHE``, else the user's cache directory."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    import platformdirs

    return platformdirs.user_cache_path("caffe2keras") / "zoo"


@dataclass
class Downloaded:
    """A net's files on disk, by role (``prototxt``, ``weights``, ``labels``, ``mean``...)."""

    net: Net
    directory: Path
    paths: dict[str, Path] = field(default_factory=dict)


def download(
    name: str,
    *,
    directory: str | os.PathLike | None = None,
    from_dir: str | os.PathLike | None = None,
    allow_unverified: bool = False,
    progress: bool = False,
    retries: int = 3,
    echo: Callable[[str], None] | None = None,
) -> Downloaded:
    """Fetch a net's files into ``directory`` (default: the cache, one folder per net) and check them.

    ``from_dir`` (or ``$CAFFE2KERAS_ZOO_FROM``) takes the files from a local folder instead of the
    network. A dropped connection is resumed up to ``retries`` times, and again on the next call.
    """
    net = get_net(name)
    echo = echo or (lambda line: print(printable(line), file=sys.stderr))
    if not net.verified and not allow_unverified:
        raise UnverifiedNetError(
            f"{net.name} is unverified ({net.unverified_reason}): its files cannot be checked against a "
            f"published hash. Pass --allow-unverified (allow_unverified=True) to download it anyway. "
            f"Received: name={net.name!r}"
        )
    echo(f"{net.name}: licence: {net.license['text']}")
    if net.non_commercial:
        echo(f"{net.name}: NOTE: licensed for NON-COMMERCIAL use only.")
    source = from_dir or os.environ.get(FROM_ENV) or None
    target = Path(directory) if directory is not None else _cache_folder(net)
    result = Downloaded(net, target)
    if _all_present(net, target, result):  # a read-only cache that holds the net still serves it
        return result
    made = not target.exists()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with _locked(target), Progress(progress) as bars:
            for role in ROLES:
                if role in net.files:
                    _fetch_role(net, role, target, result, Path(source) if source else None, bars, retries, echo)
    except BaseException as exc:
        if made:  # a failed first download leaves no folder behind
            _remove_if_empty(target)
        if isinstance(exc, OSError):
            raise CacheError(
                f"cannot write to {target}: {exc.strerror or exc}. Free some space, or choose another directory "
                f"with --dir or ${CACHE_ENV}. Received: directory={str(target)!r}"
            ) from exc
        raise
    _extract_unlisted_archive(net, target, result)
    return result


def _cache_folder(net: Net) -> Path:
    """The net's folder in the cache, checked to stay there (a link in the cache may point elsewhere)."""
    root = cache_dir()
    folder = root / net.name
    resolved_root = root.resolve()
    if not folder.resolve().is_relative_to(resolved_root) or folder.resolve() == resolved_root:
        raise CacheError(
            f"the cache folder of {net.name} leads out of the cache {root}; remove it. Received: folder={str(folder)!r}"
        )
    return folder


def _remove_if_empty(folder: Path) -> None:
    with contextlib.suppress(OSError):  # another process may be filling it meanwhile
        (folder / PARTIAL_DIR).rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


@contextlib.contextmanager
def _locked(folder: Path):
    """Hold the net folder's lock file while the block runs, and remove the file when done.

    A process that was waiting on a file removed meanwhile (or replaced by a newer one) finds it
    is no longer the folder's lock file and takes the lock again on the current one. Where there is
    no ``flock`` (Windows), filelock's own lock removes its file itself.
    """
    try:
        import fcntl
    except ImportError:
        import filelock

        with filelock.FileLock(folder / LOCK_FILE):
            yield
        return
    path = folder / LOCK_FILE
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                current = os.path.samestat(os.fstat(descriptor), os.stat(path))
            except FileNotFoundError:
                current = False
            if current:
                try:
                    yield
                finally:
                    path.unlink(missing_ok=True)  # while still locked: waiters see the file gone
                return
        finally:
            os.close(descriptor)  # and with it the lock


def _all_present(net: Net, target: Path, result: Downloaded) -> bool:
    import pooch

    for role, file in net.files.items():
        path = target / file["filename"]
        if not path.is_file() or (file["hash"] and not pooch.hashes.hash_matches(str(path), file["hash"])):
            return False
        result.paths[role] = path
    return True


def _fetch_role(net, role, target, result, source, bars, retries, echo) -> None:
    file = net.files[role]
    try:
        if "member" in file:
            result.paths[role] = _extract_member(file, role, result.paths["archive"], target)
        else:
            result.paths[role] = _fetch_file(net, role, target, source, bars, retries)
    except DownloadError as exc:
        if role != "labels":
            raise
        warnings.warn(
            f"{net.name}: no labels: {exc}; the net converts without them (predict shows class numbers).",
            ConversionWarning,
            stacklevel=2,
        )


def _sources(net: Net, file: dict, source: Path | None) -> list[str]:
    if source is None:
        return list(file["urls"])
    for candidate in (source / file["filename"], source / net.name / file["filename"]):
        if candidate.is_file():
            return [str(candidate)]
    raise DownloadError(
        f"offline: {file['filename']} of {net.name} is in neither {source} nor {source / net.name}. "
        f"Received: from={str(source)!r}"
    )


def max_bytes(file: dict, role: str) -> int:
    """The most bytes a download of ``file`` may bring: the catalogued size, else the role's limit."""
    return file["size"] if file.get("size") is not None else ROLE_LIMITS[role]


def _fetch_file(net, role, target, source, bars, retries) -> Path:
    import pooch

    pooch.get_logger().setLevel("WARNING")
    file = net.files[role]
    failures = []
    for url in _sources(net, file, source):
        if source is not None and file["hash"] and not pooch.hashes.hash_matches(url, file["hash"]):
            # Checked here, before pooch copies it: its message would speak of a download it deleted.
            failures.append(local_mismatch(url, file, net, pooch))
            continue
        partial = target / PARTIAL_DIR / f"{file['filename']}.part"
        downloader = ResumableDownloader(partial, bars, retries, max_bytes(file, role))
        try:
            return Path(pooch.retrieve(url, file["hash"], fname=file["filename"], path=target, downloader=downloader))
        except ValueError as exc:  # pooch's hash mismatch; it has deleted the file
            failures.append(HashMismatchError(f"{url}: {file['filename']} is not the catalogued file: {exc}"))
        except DownloadError as exc:
            failures.append(exc)
    if len(failures) == 1:
        raise failures[0]
    kind = HashMismatchError if all(isinstance(exc, HashMismatchError) for exc in failures) else DownloadError
    raise kind(
        f"no source gave {file['filename']} of {net.name}:\n"
        + "\n".join(f"  {exc}" for exc in failures)
        + f"\nReceived: urls={file['urls']!r}"
    )


def local_mismatch(path: str, file: dict, net: Net, pooch) -> HashMismatchError:
    algorithm = pooch.hashes.hash_algorithm(file["hash"])
    return HashMismatchError(
        f"{path}: this local file's {algorithm.upper()} hash does not match the catalog's for "
        f"{file['filename']} of {net.name} (the file is left as it is). "
        f"Received: {algorithm}={pooch.file_hash(path, alg=algorithm)}, catalog={file['hash']!r}"
    )


def _extract_member(file: dict, role: str, archive: Path, target: Path) -> Path:
    """Stream one archive member to a temporary file, check its hash, then rename it into place."""
    import pooch

    path = target / file["filename"]
    if path.is_file() and (not file["hash"] or pooch.hashes.hash_matches(str(path), file["hash"])):
        return path
    with tarfile.open(archive) as packed:
        names = packed.getnames()
        member = file["member"] if file["member"] in names else None
        member = member or next((n for n in names if n.rsplit("/", 1)[-1] == file["filename"]), None)
        if member is None:
            raise DownloadError(f"{archive.name} has no member {file['member']}. Received: member={file['member']!r}")
        info = packed.getmember(member)
        if not info.isfile() or info.size > max_bytes(file, role):
            raise HashMismatchError(
                f"{archive.name}: member {member} is not the catalogued file: a regular file of at most "
                f"{max_bytes(file, role):,} bytes. Received: size={info.size}"
            )
        with _temporary(target) as tmp, packed.extractfile(member) as data, open(tmp, "wb") as out:
            shutil.copyfileobj(data, out, CHUNK)
            out.close()
            if file["hash"] and not pooch.hashes.hash_matches(tmp, file["hash"]):
                raise HashMismatchError(
                    f"{archive.name}: member {member} is not the catalogued file. Received: hash={file['hash']!r}"
                )
            os.replace(tmp, path)
    return path


def _extract_unlisted_archive(net: Net, target: Path, result: Downloaded) -> None:
    """An archive whose members the catalog does not list is unpacked whole, once, beside it."""
    archive = result.paths.get("archive")
    if archive is None or any("member" in file for file in net.files.values()):
        return
    unpacked = target / archive.name.split(".")[0]
    if unpacked.is_dir():
        result.paths["unpacked"] = unpacked
        return
    try:
        with tarfile.open(archive) as packed, tempfile.TemporaryDirectory(dir=target) as tmp:
            unpacked_bytes = sum(member.size for member in packed.getmembers())
            if unpacked_bytes > ROLE_LIMITS["archive"]:
                raise ZooError(
                    f"{archive} would unpack to {unpacked_bytes:,} bytes; at most {ROLE_LIMITS['archive']:,} are "
                    f"unpacked. Received: archive={str(archive)!r}"
                )
            packed.extractall(tmp, filter="data")
            os.replace(tmp, unpacked)
            os.mkdir(tmp)  # TemporaryDirectory removes its own path on exit
    except (tarfile.TarError, OSError) as exc:
        raise ZooError(f"cannot unpack {archive}: {exc}. Received: archive={str(archive)!r}") from exc
    result.paths["unpacked"] = unpacked


@contextlib.contextmanager
def _temporary(directory: Path):
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
