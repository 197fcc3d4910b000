"""Verified downloads through the ``datasets`` download manager: manifests, checksums, timeouts, errors.

A download goes through ``datasets.DownloadManager`` (its cache, its ``.incomplete`` file, its
offline mode), with an HTTP client timeout: the transfer fails when no byte arrives for
:func:`download_timeout` seconds (default :data:`DEFAULT_DOWNLOAD_TIMEOUT`, or
``$RAW_ISP_DOWNLOAD_TIMEOUT``), instead of aiohttp's 300 s total limit. Every failure becomes a
:class:`~raw_isp.data.archive.SourceError` that names the URL and tells the cases apart
(:func:`describe_failure`): offline (offline mode, no DNS, no network), unreachable (refused,
no answer), stalled (and after how long), not found or another HTTP status, broken off.

Every transfer is bounded (:func:`download` with ``size=`` / ``max_bytes=``): a response whose
``Content-Length`` disagrees with the size the record or manifest lists is refused before its
body is read, and reading stops with an error as soon as more bytes arrive than listed (plus
nothing), so neither a lying header nor an endless body can fill the disk. Without a listed
size the bound is ``max_bytes`` (:data:`MAX_LISTING_BYTES` for a record listing,
:data:`~raw_isp.data.archive.DEFAULT_MAX_TOTAL_BYTES` for a file). Redirects are followed at
most :data:`MAX_REDIRECTS` times, and a loop is reported as one, not as a missing file.

After the transfer, :func:`verify_file` checks the size and the checksums an entry declares
(MD5 as Zenodo lists it, SHA-256 as a manifest may). A failed transfer leaves no
``.incomplete`` file and a failed check removes the download from the cache, so the next
attempt downloads again instead of reusing a bad file.

Manifests (:func:`load_manifest`) are JSON files ``{"record": ..., "files": [{"name", "url"?,
"size", "md5"?, "sha256"?, "extract"?, "path"?}, ...]}``; an entry without ``url`` is taken from
the Zenodo record (:mod:`raw_isp.data.zenodo`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from .archive import DEFAULT_MAX_TOTAL_BYTES, SourceError, inside

__all__ = [
    "MAX_REDIRECTS",
    "MAX_LISTING_BYTES",
    "DownloadLimitError",
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DOWNLOAD_TIMEOUT_ENV",
    "download_timeout",
    "ManifestEntry",
    "load_manifest",
    "manifest_record",
    "file_digest",
    "file_sha256",
    "verify_file",
    "describe_failure",
    "download",
    "fetch_verified",
    "discard_download",
]

#: Seconds without a byte (or without an answer to a connection) before a download fails.
DEFAULT_DOWNLOAD_TIMEOUT = 60.0
DOWNLOAD_TIMEOUT_ENV = "RAW_ISP_DOWNLOAD_TIMEOUT"
_HEX = {"sha256": re.compile(r"^[0-9a-f]{64}$"), "md5": re.compile(r"^[0-9a-f]{32}$")}
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20
#: Redirects followed per request (aiohttp's default is 10).
MAX_REDIRECTS = 5
#: Bound on a download without a listed size that is a listing, not data (a Zenodo record's JSON
#: is a few kB).
MAX_LISTING_BYTES = 16 << 20


class DownloadLimitError(OSError):
    """A response larger than the size listed for it (by ``Content-Length`` or by the bytes sent)."""


def download_timeout(value: float | None = None) -> float:
    """The timeout to use: ``value``, else ``$RAW_ISP_DOWNLOAD_TIMEOUT``, else the default (seconds)."""
    source = "download_timeout"
    if value is None:
        text = os.environ.get(DOWNLOAD_TIMEOUT_ENV, "").strip()
        if not text:
            return DEFAULT_DOWNLOAD_TIMEOUT
        source = f"${DOWNLOAD_TIMEOUT_ENV}"
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{source} must be a number of seconds, got {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{source} must be a positive number of seconds, got {value!r}")
    return float(value)


# ------------------------------------------------------------------ manifests


@dataclass(frozen=True)
class ManifestEntry:
    """One file to download.

    Attributes:
        name: file name (no folders), used in messages and as the default ``path``.
        url: where to download it (any URL the ``datasets`` download manager accepts), or None
            to take it from the Zenodo record (matched by ``path or name``).
        size: expected size in bytes, or None when unknown.
        sha256: expected SHA-256 (64 lowercase hex digits), or None.
        extract: True for a zip archive (default: the name ends in ".zip").
        path: where the file goes relative to the data root (default ``name``).
        md5: expected MD5 (32 lowercase hex digits, as Zenodo lists it), or None.
        origin: what declared the size and checksums, for messages.
    """

    name: str
    url: str | None
    size: int | None = None
    sha256: str | None = None
    extract: bool = False
    path: str | None = None
    md5: str | None = None
    origin: str = "the manifest"

    @property
    def verified(self) -> bool:
        return self.size is not None and (self.sha256 is not None or self.md5 is not None)

    @property
    def key(self) -> str:
        """Cache key of the file's content (name stem and checksum prefix)."""
        digest = self.sha256 or self.md5 or "unverified"
        return f"{Path(self.name).stem}-{digest[:16]}"


def _relative_parts(text: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[\\/]", text) if p not in ("", "."))


def _safe_relative(text: Any) -> bool:
    return (isinstance(text, str) and bool(_relative_parts(text)) and ".." not in _relative_parts(text)
            and not text.startswith(("/", "\\")) and not _DRIVE.match(text) and "\x00" not in text)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SourceError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"{path}: cannot read the {what} as JSON ({e})") from e


def load_manifest(path: str | os.PathLike[str], allow_empty: bool = False) -> list[ManifestEntry]:
    """Read and check a JSON download manifest (see the module docstring; other top-level keys
    are free-form notes).

    Args:
        path: the manifest file.
        allow_empty: accept an empty ``files`` list (a pin that pins nothing).
    Raises:
        SourceError: unreadable, not JSON, or an entry with a missing or malformed field (the
            message names the entry's index and name).
    """
    p = Path(path)
    data = _read_json(p, "download manifest")
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or (not files and not allow_empty):
        raise SourceError(f"{p}: the manifest needs a non-empty list 'files'")
    entries = []
    for k, f in enumerate(files):
        where = f"{p}: files[{k}]"
        if not isinstance(f, dict):
            raise SourceError(f"{where} must be an object")
        name, url = f.get("name"), f.get("url")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise SourceError(f"{where}: 'name' must be a plain file name, got {name!r}")
        if url is not None and (not isinstance(url, str) or not url):
            raise SourceError(f"{where} ({name}): 'url' must be a non-empty string, or absent to take the file "
                              f"from the Zenodo record, got {url!r}")
        size = f.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise SourceError(f"{where} ({name}): 'size' must be a byte count or null, got {size!r}")
        sums = {}
        for algorithm in ("sha256", "md5"):
            value = f.get(algorithm)
            if value is not None and (not isinstance(value, str) or not _HEX[algorithm].match(value.lower())):
                digits = 64 if algorithm == "sha256" else 32
                raise SourceError(f"{where} ({name}): '{algorithm}' must be {digits} hex digits or null, got {value!r}")
            sums[algorithm] = None if value is None else value.lower()
        extract = f.get("extract", name.lower().endswith(".zip"))
        if not isinstance(extract, bool):
            raise SourceError(f"{where} ({name}): 'extract' must be true or false, got {extract!r}")
        rel = f.get("path")
        if rel is not None and not _safe_relative(rel):
            raise SourceError(f"{where} ({name}): 'path' must be a relative path inside the data root, got {rel!r}")
        entries.append(ManifestEntry(name, url, size, sums["sha256"], extract, rel, sums["md5"]))
    return entries


def manifest_record(path: str | os.PathLike[str]) -> str | None:
    """The Zenodo record id a manifest's ``"record"`` field names (a number, a DOI or a record
    URL), or None when it names none."""
    data = _read_json(Path(path), "download manifest")
    found = re.search(r"zenodo\.(\d+)|/records?/(\d+)|^(\d+)$", str(data.get("record", "")) if isinstance(data, dict)
                      else "")
    return next((g for g in found.groups() if g), None) if found else None


# ------------------------------------------------------------------ verification


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file ("sha256" or "md5"), read in 1 MiB blocks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, as 64 lowercase hex digits."""
    return file_digest(path, "sha256")


def verify_file(path: str | os.PathLike[str], entry: ManifestEntry) -> None:
    """Check a downloaded file's size and checksums against its entry.

    An entry without a size or checksum gets a ``UserWarning`` that gives the measured values,
    so that they can be written into a manifest.

    Raises:
        SourceError: the size or a checksum differs.
    """
    p = Path(path)
    size = p.stat().st_size
    origin = f"{entry.name} (from {entry.url})"
    if entry.size is not None and size != entry.size:
        raise SourceError(f"{origin}: {size} bytes downloaded but {entry.origin} says {entry.size} "
                          "(truncated or changed file)")
    measured = {}
    for algorithm, label in (("sha256", "SHA-256"), ("md5", "MD5")):
        expected = getattr(entry, algorithm)
        if expected is None and entry.verified:
            continue
        measured[algorithm] = file_digest(p, algorithm)
        if expected is not None and measured[algorithm] != expected:
            raise SourceError(f"{origin}: {label} {measured[algorithm]} does not match {entry.origin}'s {expected} "
                              f"(corrupt download, or the file or {entry.origin} changed)")
    if not entry.verified:
        warnings.warn(
            f"{origin} is not verified: {entry.origin} gives no {'size and ' if entry.size is None else ''}checksum. "
            f"Measured: size {size}, sha256 {measured['sha256']}, md5 {measured['md5']}.",
            UserWarning, stacklevel=2,
        )


# ------------------------------------------------------------------ downloading


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def describe_failure(url: str, exc: BaseException, elapsed: float, timeout: float, received: int = 0) -> str:
    """A message for a failed download that tells offline, unreachable, stalled and not found apart."""
    import asyncio

    host = urlsplit(url).netloc or url
    chain = list(_chain(exc))

    def has(kind: type | tuple) -> BaseException | None:
        return next((e for e in chain if isinstance(e, kind)), None)

    def errno_in(*codes: int) -> bool:
        return any(getattr(e, "errno", None) in codes for e in chain)

    names = {type(e).__name__ for e in chain}
    limit = has(DownloadLimitError)
    if limit is not None:
        return f"{url}: {limit}"
    if "TooManyRedirects" in names:
        return f"redirect loop: {url} redirected more than {MAX_REDIRECTS} times (the server never sent the file)"
    if "NonHttpUrlRedirectClientError" in names or "InvalidUrlRedirectClientError" in names:
        return f"{url} redirects to a URL that is not http(s); only http(s) links are followed"
    if "OfflineModeIsEnabled" in names:
        return (f"offline mode is on (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE), so {url} was not fetched; "
                "unset it, or load from a cache that already holds the files")
    if has(socket.gaierror) or "ClientConnectorDNSError" in names:
        return (f"offline: the host name of {url} cannot be resolved (no network connection or no DNS); "
                "connect to the network, or use source='local' with a copy of the files")
    if errno_in(errno.ENETUNREACH, errno.ENETDOWN):
        return f"offline: the network is unreachable (no route to any network) while fetching {url}"
    if has(ConnectionRefusedError) or errno_in(errno.ECONNREFUSED):
        return (f"unreachable: {host} refused the connection ({url}); the server is down, or the address "
                "(for Zenodo: $RAW_ISP_ZENODO_API) is wrong")
    if errno_in(errno.EHOSTUNREACH):
        return f"unreachable: no route to {host} ({url})"
    if "ConnectionTimeoutError" in names:
        return (f"unreachable: {host} did not accept a connection within {timeout:g} s ({url}; gave up after "
                f"{elapsed:.1f} s)")
    if has((asyncio.TimeoutError, TimeoutError, socket.timeout)) or "FSTimeoutError" in names:
        return (f"the download of {url} stalled: no data for {timeout:g} s (gave up after {elapsed:.1f} s, "
                f"{received} bytes received); a slow connection needs a larger download_timeout= "
                f"(or ${DOWNLOAD_TIMEOUT_ENV})")
    status = next((getattr(e, "status", None) for e in chain if type(e).__name__ == "ClientResponseError"), None)
    if status == 404 or (status is None and has(FileNotFoundError)):
        return f"not found (HTTP 404): {url}"
    if status is not None:
        message = next((getattr(e, "message", "") for e in chain if type(e).__name__ == "ClientResponseError"), "")
        return f"HTTP {status} {message} from {url}".replace("  ", " ")
    if "ClientPayloadError" in names or "ServerDisconnectedError" in names:
        return f"the connection broke off during the download of {url} after {received} bytes"
    return f"the download of {url} failed ({type(exc).__name__}: {exc or repr(exc)})"


class _BoundedContent:
    """A response body that raises :class:`DownloadLimitError` once more than ``limit`` bytes
    were read (the chunk that crosses the bound is not handed on, so not written)."""

    def __init__(self, inner: Any, limit: int, what: str) -> None:
        self._inner, self._limit, self._what, self._count = inner, limit, what, 0

    def _counted(self, data: bytes) -> bytes:
        self._count += len(data)
        if self._count > self._limit:
            raise DownloadLimitError(f"the server sent more than the {self._limit:,} bytes {self._what}; "
                                     "stopped reading (a changed file, or a server that does not stop)")
        return data

    async def read(self, n: int = -1) -> bytes:
        if n >= 0:
            return self._counted(await self._inner.read(n))
        parts = []
        while True:  # to the end, but never more than the bound in memory
            block = self._counted(await self._inner.read(_CHUNK))
            if not block:
                return b"".join(parts)
            parts.append(block)

    async def readany(self) -> bytes:
        return self._counted(await self._inner.readany())

    async def readchunk(self) -> tuple[bytes, bool]:
        data, end = await self._inner.readchunk()
        return self._counted(data), end

    def iter_chunked(self, n: int) -> Any:
        async def chunks():
            while True:
                data = await self.read(n)
                if not data:
                    return
                yield data
        return chunks()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _bounded_response(size: int | None, max_bytes: int, origin: str) -> type:
    """An aiohttp response class that enforces ``size`` (the listed byte count: the
    ``Content-Length`` must agree and no more is read) or else ``max_bytes``."""
    import aiohttp

    limit = size if size is not None else max_bytes
    what = f"{origin} lists" if size is not None else "allowed for this download"

    async def start(self: Any, connection: Any) -> Any:
        response = await aiohttp.ClientResponse.start(self, connection)
        if 200 <= self.status < 300:
            text = self.headers.get("Content-Length")
            coded = self.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
            length = int(text) if text is not None and text.strip().isdigit() else None
            problem = None
            if length is not None and not coded and size is not None and length != size:
                problem = (f"the server announces {length:,} bytes (Content-Length) but {origin} lists {size:,}; "
                           "refused before reading (truncated or changed file, or a wrong server)")
            elif length is not None and not coded and length > limit:
                problem = (f"the server announces {length:,} bytes (Content-Length), more than the {limit:,} "
                           "allowed for this download; refused before reading")
            if problem is not None:
                self.close()
                raise DownloadLimitError(problem)
            if self.method != "HEAD":
                self.content = _BoundedContent(self.content, limit, what)
        return response

    name = f"BoundedResponse_{size}_{max_bytes}_{abs(hash(origin)) % 10**8}"
    return type(name, (aiohttp.ClientResponse,), {"start": start})


def _manager_with_timeout(dl_manager: Any, timeout: float, size: int | None = None,
                          max_bytes: int = DEFAULT_MAX_TOTAL_BYTES, origin: str = "the record") -> Any:
    """A copy of ``dl_manager`` (same cache) whose HTTP client gives up after ``timeout`` s of
    silence, follows at most :data:`MAX_REDIRECTS` redirects and reads at most ``size`` (else
    ``max_bytes``) bytes of a body."""
    import aiohttp
    from datasets import DownloadManager

    config = dl_manager.download_config.copy()
    options = dict(config.storage_options or {})
    for protocol in ("http", "https"):
        http = dict(options.get(protocol, {}))
        client = dict(http.get("client_kwargs", {}))
        # total=None: a large file may take long, as long as bytes keep arriving.
        client["timeout"] = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
        client["response_class"] = _bounded_response(size, max_bytes, origin)
        http["client_kwargs"] = client
        http["max_redirects"] = MAX_REDIRECTS
        options[protocol] = http
    config.storage_options = options
    return DownloadManager(download_config=config)


def _cache_stem(cache_dir: Path, url: str) -> str:
    from datasets.utils.file_utils import hash_url_to_filename

    return str(cache_dir / hash_url_to_filename(url))


def discard_download(path: str | os.PathLike[str], cache_dir: str | os.PathLike[str]) -> bool:
    """Remove a downloaded file and its metadata and lock if (and only if) it lies in ``cache_dir``."""
    path = Path(path)
    if not inside(path, cache_dir):
        return False
    for p in (path, Path(f"{path}.json"), Path(f"{path}.lock")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return True


def download(dl_manager: Any, url: str, timeout: float | None = None, size: int | None = None,
             max_bytes: int = DEFAULT_MAX_TOTAL_BYTES, origin: str = "the record") -> Path:
    """Download ``url`` into the download manager's cache (or return the cached copy).

    ``size``: the byte count the record or manifest lists (``origin``, for messages): a
    ``Content-Length`` that disagrees is refused and no byte beyond it is read. Without it at
    most ``max_bytes`` are read.

    Raises:
        SourceError: the transfer failed (:func:`describe_failure` says why); no partial file
            is left in the cache.
    """
    timeout = download_timeout(timeout)
    cache_dir = Path(dl_manager.download_config.cache_dir or ".")
    started = time.monotonic()
    try:
        return Path(_manager_with_timeout(dl_manager, timeout, size, max_bytes, origin).download(url))
    except BaseException as e:  # an interrupt, too, must not leave a partial file behind
        received = 0
        # The download manager leaves "<file>.incomplete" (and its lock) behind when a transfer breaks off.
        for partial in cache_dir.glob(Path(_cache_stem(cache_dir, url)).name + "*"):
            with contextlib.suppress(OSError):
                if partial.name.endswith(".incomplete"):
                    received = max(received, partial.stat().st_size)
                if partial.name.endswith((".incomplete", ".lock")):
                    partial.unlink()
        if not isinstance(e, Exception):
            raise
        raise SourceError(describe_failure(url, e, time.monotonic() - started, timeout, received)) from e


def fetch_verified(dl_manager: Any, entry: ManifestEntry, timeout: float | None = None) -> Path:
    """Download a manifest entry and verify it; a file that fails the check leaves the cache.

    Raises:
        SourceError: the download failed, or the size or a checksum differs.
    """
    if entry.url is None:
        raise SourceError(f"{entry.name}: no URL (an entry without 'url' must be resolved from the Zenodo record)")
    try:
        local = download(dl_manager, entry.url, timeout, size=entry.size, origin=entry.origin)
    except SourceError as e:
        raise SourceError(f"{entry.name}: {e}") from e
    try:
        verify_file(local, entry)
    except SourceError:
        discard_download(local, dl_manager.download_config.cache_dir or local.parent)
        raise
    return local
