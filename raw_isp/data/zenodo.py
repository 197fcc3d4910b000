"""The Zenodo record of the datasets, read through the Zenodo REST API, and the choice of its files.

:func:`fetch_record` downloads ``{api}/records/{id}`` (``api`` from :func:`zenodo_api`:
``$RAW_ISP_ZENODO_API``, default ``https://zenodo.org/api``) through the ``datasets`` download
manager, so the record's JSON is cached like any download (but a listing that leads to an error
is removed from the cache, :func:`forget_record`), and parses its ``files``: for each,
``key``, ``size``, ``checksum`` (``"md5:<hex>"``) and the download link (``links.content``,
else ``links.self``). A published Zenodo record never changes its files (a new version is a new
record id), so the cached JSON stays right for its id.

:func:`choose_files` decides which of the record's files one dataset configuration needs:

1. **By name.** A file whose name carries an intensity tag (``raw_scale050``) of an intensity
   the configuration does not use is left out. A file named for this dataset (e.g.
   ``microscopy``) and not for the other (e.g. ``drone``) is taken; one named only for the other
   is left out. Files that are neither zip archives nor named for a dataset (a PDF, a README)
   are left out.
2. **By content.** For the remaining archives (named for both datasets or for neither), the
   member names are read from the downloaded archive's directory: members that only this
   dataset's layout has (e.g. ``*annotations*.dat``) take it, members of the other dataset's
   layout (e.g. ``masks_full/``) leave it out, and an archive holding no image, label or archive
   files at all is left out.
3. **Refusal.** An archive that holds image files but neither dataset's marks, or a record
   where nothing is left for this dataset, is refused with a :class:`SourceError` that lists
   each file and the reason, and says how to pin the files (``files_manifest=``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Any, Callable, Iterable
from urllib.parse import quote

from .archive import ArchiveError, SourceError, zip_member_names
from .download import MAX_LISTING_BYTES, ManifestEntry, discard_download, download, fetch_verified

__all__ = [
    "ZENODO_API_ENV",
    "DEFAULT_ZENODO_API",
    "zenodo_api",
    "record_id",
    "RecordFile",
    "ZenodoRecord",
    "parse_record",
    "fetch_record",
    "forget_record",
    "RecordHints",
    "choose_files",
    "record_entries",
    "resolve_entries",
    "peek_members",
]

ZENODO_API_ENV = "RAW_ISP_ZENODO_API"
DEFAULT_ZENODO_API = "https://zenodo.org/api"
_TAG = re.compile(r"raw[_ -]?scale[_ -]?(\d{3})", re.I)
_DATA_MEMBER = re.compile(r"\.(tiff?|dng|png|dat|zip)$", re.I)


def zenodo_api(api: str | None = None) -> str:
    """The API base URL: ``api``, else ``$RAW_ISP_ZENODO_API``, else :data:`DEFAULT_ZENODO_API`."""
    base = api or os.environ.get(ZENODO_API_ENV) or DEFAULT_ZENODO_API
    if not re.match(r"^https?://[^/]+", base):
        raise ValueError(f"the Zenodo API base must be an http(s) URL, got {base!r} "
                         f"(from {'the argument' if api else '$' + ZENODO_API_ENV})")
    return base.rstrip("/")


def record_id(record: Any) -> str:
    """The numeric id of a record given as ``5235536``, ``"10.5281/zenodo.5235536"``, a DOI URL
    or a Zenodo record URL.

    Raises:
        ValueError: nothing that names a record.
    """
    if isinstance(record, int) and not isinstance(record, bool) and record > 0:
        return str(record)
    text = str(record).strip() if isinstance(record, str) else ""
    found = re.fullmatch(r"(\d+)", text) or re.search(r"zenodo\.(\d+)$", text) or \
        re.search(r"zenodo\.org/(?:api/)?records?/(\d+)", text)
    if not found:
        raise ValueError(f"record must be a Zenodo record id or DOI (e.g. 5235536 or 10.5281/zenodo.5235536), "
                         f"got {record!r}")
    return found.group(1)


@dataclass(frozen=True)
class RecordFile:
    """One file of a record: ``key`` (its name), ``size`` (bytes), ``md5`` (hex) and ``url``."""

    key: str
    size: int
    md5: str
    url: str


@dataclass(frozen=True)
class ZenodoRecord:
    """A record's id, title, version and files (in the record's order)."""

    id: str
    files: tuple[RecordFile, ...]
    title: str = ""
    version: str | None = None
    url: str = ""
    #: The cached copy of the listing (:func:`forget_record` removes it).
    local: str = field(default="", compare=False)

    def file(self, key: str) -> RecordFile | None:
        return next((f for f in self.files if f.key == key), None)


def parse_record(data: Any, url: str, default_id: str = "") -> ZenodoRecord:
    """A :class:`ZenodoRecord` from the API's JSON (``files`` as a list, or as ``{"entries": ...}``).

    Raises:
        SourceError: the JSON is not a record, or a file lacks a usable key, size, MD5 or link.
    """
    if not isinstance(data, dict):
        raise SourceError(f"{url}: not a Zenodo record (expected a JSON object, got {type(data).__name__})")
    files = data.get("files")
    if isinstance(files, dict):
        files = files.get("entries")
        files = list(files.values()) if isinstance(files, dict) else files
    if not isinstance(files, list):
        raise SourceError(f"{url}: not a Zenodo record with files (no 'files' list in the JSON; "
                          f"keys: {sorted(data)[:12]})")
    out = []
    for k, f in enumerate(files):
        where = f"{url}: files[{k}]"
        if not isinstance(f, dict):
            raise SourceError(f"{where} is not an object")
        key = f.get("key", f.get("filename"))
        if not isinstance(key, str) or not key or key.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", key):
            raise SourceError(f"{where}: 'key' must be a relative file name, got {key!r}")
        size = f.get("size", f.get("filesize"))
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise SourceError(f"{where} ({key}): 'size' must be a byte count, got {size!r}")
        checksum = f.get("checksum")
        digest = checksum.split(":", 1)[1].lower() if isinstance(checksum, str) and checksum.lower().startswith(
            "md5:") else (checksum.lower() if isinstance(checksum, str) else None)
        if digest is None or not re.fullmatch(r"[0-9a-f]{32}", digest):
            raise SourceError(f"{where} ({key}): 'checksum' must be 'md5:<32 hex digits>', got {checksum!r}")
        links = f.get("links") if isinstance(f.get("links"), dict) else {}
        link = next((links[n] for n in ("content", "download", "self") if isinstance(links.get(n), str)), None)
        if link is None:
            raise SourceError(f"{where} ({key}): no download link ('links' needs 'content' or 'self')")
        if not re.match(r"^https?://[^/\s]+", link, re.I):
            raise SourceError(f"{where} ({key}): the download link {link!r} is not an http(s) URL; only http(s) "
                              "links of a record are followed (never a local path or file://)")
        out.append(RecordFile(key, size, digest, link))
    metadata = data.get("metadata") if isinstance(data.get("metadata"), dict) else {}
    title = str(metadata.get("title", data.get("title", "")))
    return ZenodoRecord(str(data.get("id") or default_id), tuple(out), title, metadata.get("version"), url)


def fetch_record(dl_manager: Any, record: Any, api: str | None = None, timeout: float | None = None
                 ) -> ZenodoRecord:
    """Download (or take from the download cache) and parse ``{api}/records/{id}``.

    Raises:
        SourceError: the download failed (offline, unreachable, 404, stalled: the message says
            which), or the JSON is not a record (the cached copy is then removed).
    """
    url = f"{zenodo_api(api)}/records/{quote(record_id(record))}"
    local = download(dl_manager, url, timeout, max_bytes=MAX_LISTING_BYTES)
    try:
        try:
            data = json.loads(local.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise SourceError(f"{url}: the answer is not JSON ({e}); is {zenodo_api(api)} a Zenodo API?") from e
        return replace(parse_record(data, url, record_id(record)), local=str(local))
    except SourceError:
        discard_download(local, dl_manager.download_config.cache_dir or local.parent)
        raise


def forget_record(dl_manager: Any, record: ZenodoRecord) -> None:
    """Remove the cached listing of ``record``: a listing that led to an error is not kept, so
    the next load asks the server again (a fixed record works without
    ``download_mode="force_redownload"``)."""
    if record.local:
        discard_download(record.local, dl_manager.download_config.cache_dir or os.path.dirname(record.local))


@dataclass(frozen=True)
class RecordHints:
    """How to tell one dataset's files in a record (regular expressions, matched case-insensitively).

    Attributes:
        title: the dataset's name, for messages.
        names: patterns of record file names that name this dataset.
        other_names: patterns that name the other dataset(s) of the record.
        members: patterns of archive member paths that only this dataset's layout has.
        other_members: patterns of member paths that only the other dataset's layout has.
    """

    title: str
    names: tuple[str, ...]
    other_names: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    other_members: tuple[str, ...] = ()


def _any(patterns: Iterable[str], text: str) -> bool:
    return any(re.search(p, text, re.I) for p in patterns)


def choose_files(record: ZenodoRecord, hints: RecordHints, tags: Iterable[str],
                 members: Callable[[RecordFile], list[str]]) -> list[RecordFile]:
    """The record's files that a configuration with intensity ``tags`` (e.g. ``{"100"}``) needs.

    Args:
        record: from :func:`fetch_record`.
        hints: this dataset's names and layout marks.
        tags: the ``raw_scaleNNN`` digits of the intensities the configuration uses.
        members: ``members(file)`` -> the member paths of an archive (downloads it); called
            only for archives whose name does not decide.
    Returns:
        the files to download, in the record's order.
    Raises:
        SourceError: the choice cannot be made (see the module docstring); the message lists
            every file with the reason it was taken or left out.
    """
    tags = set(tags)
    taken: list[RecordFile] = []
    reasons: list[str] = []
    unknown: list[RecordFile] = []
    for f in record.files:
        name = PurePosixPath(f.key).name
        tag = _TAG.search(name)
        mine, theirs = _any(hints.names, name), _any(hints.other_names, name)
        archive = name.lower().endswith(".zip")
        if not archive and not _any(hints.members + hints.other_members, name):
            reasons.append(f"{f.key}: left out (neither a zip archive nor a file of a dataset's layout)")
        elif tag and tag.group(1) not in tags:
            reasons.append(f"{f.key}: left out (intensity raw_scale{tag.group(1)} is not used)")
        elif mine and not theirs:
            taken.append(f)
            reasons.append(f"{f.key}: taken (named for {hints.title})")
        elif theirs and not mine:
            reasons.append(f"{f.key}: left out (named for another dataset)")
        elif not archive:
            if _any(hints.members, name):
                taken.append(f)
                reasons.append(f"{f.key}: taken (a file of the {hints.title} layout)")
            else:
                reasons.append(f"{f.key}: left out (a file of another dataset's layout)")
        else:
            names = members(f)
            own = [m for m in names if _any(hints.members, m)]
            other = [m for m in names if _any(hints.other_members, m)]
            if own:
                taken.append(f)
                reasons.append(f"{f.key}: taken (holds {own[0]})")
            elif other:
                reasons.append(f"{f.key}: left out (holds {other[0]}, of another dataset)")
            elif not any(_DATA_MEMBER.search(m) for m in names):
                reasons.append(f"{f.key}: left out (holds no image, label or archive files)")
            else:
                unknown.append(f)
                example = next(m for m in names if _DATA_MEMBER.search(m))
                reasons.append(f"{f.key}: undecided (holds image files such as {example}, but nothing that names "
                               "a dataset)")
    listing = "; ".join(reasons) or "no files"
    pin = ("pin the files to use with files_manifest= (a JSON manifest listing their names; see the README "
           "section on the real data)")
    if unknown:
        raise SourceError(f"Zenodo record {record.id}: cannot tell which files hold {hints.title}: {listing}. "
                          f"To choose, {pin}")
    if not taken:
        raise SourceError(f"Zenodo record {record.id} ({record.url}): no file holds {hints.title}: {listing}. "
                          f"If the record is right, {pin}")
    return [f for f in record.files if f in taken]


def record_entries(files: Iterable[RecordFile], record: str = "") -> list[ManifestEntry]:
    """Manifest entries (URL, size, MD5) for the files of ``record``."""
    out = []
    for f in files:
        name = PurePosixPath(f.key).name
        out.append(ManifestEntry(name, f.url, f.size, None, name.lower().endswith(".zip"),
                                 f.key if f.key != name else None, f.md5, f"Zenodo record {record}".rstrip()))
    return out


def resolve_entries(entries: list[ManifestEntry], record: ZenodoRecord) -> list[ManifestEntry]:
    """Fill in the URL of the entries that have none from the record, matched by ``path or name``;
    their size and MD5, when given, must agree with the record's.

    Raises:
        SourceError: a file is not in the record, or the record lists another size or MD5 (the
            record is not the one the pin was made for).
    """
    out = []
    for e in entries:
        if e.url is not None:
            out.append(e)
            continue
        key = e.path or e.name
        f = record.file(key)
        if f is None:
            raise SourceError(f"Zenodo record {record.id}: no file {key!r} (the pin lists it; the record has "
                              f"{', '.join(x.key for x in record.files) or 'no files'})")
        for what, pinned, listed in (("size", e.size, f.size), ("md5", e.md5, f.md5)):
            if pinned is not None and pinned != listed:
                raise SourceError(f"Zenodo record {record.id}: {key} has {what} {listed} but the pin says {pinned}; "
                                  "the pin was made for another version of the record")
        out.append(ManifestEntry(e.name, f.url, f.size, e.sha256, e.extract, e.path, f.md5,
                                 f"Zenodo record {record.id}"))
    return out


def peek_members(dl_manager: Any, record: ZenodoRecord, f: RecordFile, timeout: float | None = None) -> list[str]:
    """Download (verified) one archive of ``record`` and list its member paths."""
    entry = record_entries([f], record.id)[0]
    local = fetch_verified(dl_manager, entry, timeout)
    try:
        return zip_member_names(local)
    except ArchiveError as e:
        discard_download(local, dl_manager.download_config.cache_dir or local.parent)
        raise SourceError(f"{f.key} (from {f.url}): {e}") from e
