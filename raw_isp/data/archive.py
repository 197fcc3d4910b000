"""Safe, atomic extraction of zip archives, and verified downloads listed in a manifest.

:func:`safe_extract_zip` checks every member before writing anything: no absolute paths, no
drive letters, no ``..`` components, no symbolic links or other special files, no duplicate
names, and a bounded total size. It then extracts into a temporary folder beside the target and
renames it into place, so a failure (a bad member, a CRC error in a truncated or corrupt
archive, a full disk) leaves neither a half-written target nor the temporary folder behind.

:func:`fetch_manifest_files` downloads the files of a JSON manifest (:func:`load_manifest`)
through a ``datasets`` download manager, checks each file's size and SHA-256
(:func:`verify_file`), removes a download that fails the check from the cache (so the next
attempt downloads again instead of reusing a bad file) and extracts archives into the cache
with :func:`safe_extract_zip` (once per archive content).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "ArchiveError",
    "SourceError",
    "safe_extract_zip",
    "DEFAULT_MAX_TOTAL_BYTES",
    "ManifestEntry",
    "load_manifest",
    "verify_file",
    "file_sha256",
    "extract_cached",
    "archive_key",
    "fetch_manifest_files",
    "fingerprint_tree",
    "layout_roots",
]

#: Default bound on the sum of the members' uncompressed sizes (32 GiB; the real Raw-Drone
#: full frames at seven intensities take about 3.5 GB).
DEFAULT_MAX_TOTAL_BYTES = 32 * 1024**3
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive that cannot be extracted safely. The message names the archive (and member)."""


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if not name:
        return "has an empty name"
    if "\x00" in name:
        return "has a NUL character in its name"
    if name.startswith(("/", "\\")):
        return "has an absolute path"
    if _DRIVE.match(name):
        return "has a drive letter"
    parts = re.split(r"[\\/]", name)
    if any(p == ".." for p in parts):
        return "has a '..' component that would escape the target folder"
    # Unix file type bits in the high word (0 when the archiver stored none: a regular file).
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "is a symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return f"is a special file (type {oct(kind)}), not a regular file or folder"
    return None


def _relative_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[\\/]", name) if p not in ("", "."))


def safe_extract_zip(
    zip_path: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    replace: bool = False,
) -> Path:
    """Extract a zip archive into ``target_dir``, safely and atomically.

    Args:
        zip_path: the archive.
        target_dir: the folder to create; must not exist unless ``replace`` is True (then the
            old folder is swapped out only after the new one is complete, and deleted).
        max_total_bytes: refuse archives whose members add up to more uncompressed bytes.
        replace: allow replacing an existing ``target_dir``.
    Returns:
        the target folder as a ``Path``.
    Raises:
        ArchiveError: not a zip file, truncated or corrupt (bad CRC), an unsafe member (absolute
            path, drive letter, ``..``, symbolic link, special file, duplicate name), or too
            large. The message starts with the archive path and names the member.
        FileExistsError: ``target_dir`` exists and ``replace`` is False.
    """
    src = Path(zip_path)
    target = Path(target_dir)
    if target.exists() and not replace:
        raise FileExistsError(f"{target}: target folder of {src} already exists")
    if not src.is_file():
        raise ArchiveError(f"{src}: no such archive file")
    try:
        zf = zipfile.ZipFile(src)
    except zipfile.BadZipFile as e:
        raise ArchiveError(f"{src}: not a zip archive, or truncated ({e})") from e
    except OSError as e:
        raise ArchiveError(f"{src}: cannot open ({e})") from e
    with zf:
        infos = zf.infolist()
        seen: set[tuple[str, ...]] = set()
        total = 0
        for info in infos:
            problem = _member_problem(info)
            if problem is not None:
                raise ArchiveError(f"{src}: member {info.filename!r} {problem}; refusing to extract")
            parts = _relative_parts(info.filename)
            if not info.is_dir():
                if not parts:
                    raise ArchiveError(f"{src}: member {info.filename!r} has no file name")
                if parts in seen:
                    raise ArchiveError(f"{src}: member {info.filename!r} appears twice; refusing to extract")
                seen.add(parts)
            total += info.file_size
            if total > max_total_bytes:
                raise ArchiveError(
                    f"{src}: members add up to more than max_total_bytes={max_total_bytes} bytes "
                    f"uncompressed (at member {info.filename!r}); refusing to extract"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.extract-{secrets.token_hex(6)}"
        tmp.mkdir()
        try:
            written = 0
            for info in infos:
                parts = _relative_parts(info.filename)
                out = tmp.joinpath(*parts) if parts else tmp
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with zf.open(info) as fin, open(out, "xb") as fout:
                        while True:
                            block = fin.read(_CHUNK)
                            if not block:
                                break
                            written += len(block)
                            if written > max_total_bytes:
                                raise ArchiveError(
                                    f"{src}: member {info.filename!r} expands beyond max_total_bytes="
                                    f"{max_total_bytes}; refusing to extract"
                                )
                            fout.write(block)
                except ArchiveError:
                    raise
                except (zipfile.BadZipFile, zlib.error, EOFError, zipfile.LargeZipFile, NotImplementedError,
                        RuntimeError) as e:
                    raise ArchiveError(
                        f"{src}: member {info.filename!r} cannot be read, the archive is truncated or "
                        f"corrupt ({type(e).__name__}: {e})"
                    ) from e
            if target.exists():
                old = target.parent / f".{target.name}.old-{secrets.token_hex(6)}"
                os.rename(target, old)
                os.rename(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


# ------------------------------------------------------------------ verified downloads


class SourceError(ValueError):
    """A data source that cannot be used: a missing or malformed file, a bad layout, a checksum
    mismatch. The message names the file (or URL) and what is wrong."""


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ManifestEntry:
    """One file of a download manifest.

    Attributes:
        name: file name (no folders), used in messages and as the default ``path``.
        url: where to download it (any URL the ``datasets`` download manager accepts).
        size: expected size in bytes, or None when unknown (an unverified placeholder).
        sha256: expected SHA-256 (64 lowercase hex digits), or None when unknown.
        extract: True for a zip archive to extract (default: the name ends in ".zip").
        path: for a plain file, where it goes relative to the data root (default ``name``).
    """

    name: str
    url: str
    size: int | None = None
    sha256: str | None = None
    extract: bool = False
    path: str | None = None

    @property
    def verified(self) -> bool:
        return self.size is not None and self.sha256 is not None


def load_manifest(path: str | os.PathLike[str]) -> list[ManifestEntry]:
    """Read and check a JSON download manifest: ``{"files": [{"name", "url", "size", "sha256",
    "extract"?, "path"?}, ...], ...}`` (other top-level keys are free-form notes).

    Raises:
        SourceError: unreadable, not JSON, or an entry with a missing or malformed field.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(f"{p}: download manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise SourceError(f"{p}: cannot read the download manifest as JSON ({e})") from e
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, list) or not files:
        raise SourceError(f"{p}: the manifest needs a non-empty list 'files'")
    entries = []
    for k, f in enumerate(files):
        where = f"{p}: files[{k}]"
        if not isinstance(f, dict):
            raise SourceError(f"{where} must be an object")
        name, url = f.get("name"), f.get("url")
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name in (".", ".."):
            raise SourceError(f"{where}: 'name' must be a plain file name, got {name!r}")
        if not isinstance(url, str) or not url:
            raise SourceError(f"{where} ({name}): 'url' must be a non-empty string, got {url!r}")
        size, sha = f.get("size"), f.get("sha256")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
            raise SourceError(f"{where} ({name}): 'size' must be a byte count or null, got {size!r}")
        if sha is not None and (not isinstance(sha, str) or not _SHA256.match(sha.lower())):
            raise SourceError(f"{where} ({name}): 'sha256' must be 64 hex digits or null, got {sha!r}")
        extract = f.get("extract", name.lower().endswith(".zip"))
        if not isinstance(extract, bool):
            raise SourceError(f"{where} ({name}): 'extract' must be true or false, got {extract!r}")
        rel = f.get("path")
        if rel is not None and (not isinstance(rel, str) or not _relative_parts(rel)
                                or any(x == ".." for x in _relative_parts(rel)) or rel.startswith(("/", "\\"))
                                or _DRIVE.match(rel)):
            raise SourceError(f"{where} ({name}): 'path' must be a relative path inside the data root, got {rel!r}")
        entries.append(ManifestEntry(name, url, size, None if sha is None else sha.lower(), extract, rel))
    return entries


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file, as 64 lowercase hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _discard_download(path: Path, cache_dir: Path) -> bool:
    """Remove a downloaded file and its metadata if (and only if) it lies in the download cache."""
    if not _inside(path, cache_dir):
        return False
    for p in (path, Path(str(path) + ".json")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return True


def verify_file(path: str | os.PathLike[str], entry: ManifestEntry) -> None:
    """Check a downloaded file's size and SHA-256 against its manifest entry.

    Entries without a size or checksum (unverified placeholders) get a ``UserWarning`` that
    gives the measured values, so that they can be written into the manifest.

    Raises:
        SourceError: size or checksum differ.
    """
    p = Path(path)
    size = p.stat().st_size
    if entry.size is not None and size != entry.size:
        raise SourceError(
            f"{entry.name} (from {entry.url}): {size} bytes downloaded but the manifest says {entry.size} "
            "(truncated or changed file)"
        )
    digest = file_sha256(p)
    if entry.sha256 is not None and digest != entry.sha256:
        raise SourceError(
            f"{entry.name} (from {entry.url}): SHA-256 {digest} does not match the manifest's {entry.sha256} "
            "(corrupt download, or the file or the manifest changed)"
        )
    if not entry.verified:
        warnings.warn(
            f"{entry.name} (from {entry.url}) is not verified: the manifest gives no "
            f"{'size and ' if entry.size is None else ''}checksum. Measured: size {size}, sha256 {digest}.",
            UserWarning,
            stacklevel=2,
        )


def extract_cached(archive: str | os.PathLike[str], root: str | os.PathLike[str], key: str,
                   max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES) -> Path:
    """Extract ``archive`` (safely, atomically) into ``root/key`` unless that folder exists."""
    target = Path(root) / key
    if target.is_dir():
        return target
    try:
        return safe_extract_zip(archive, target, max_total_bytes=max_total_bytes)
    except OSError:
        if not target.is_dir():
            raise
        return target  # another process finished the same extraction first


def archive_key(path: str | os.PathLike[str]) -> str:
    """Cache key of a local archive: its name and a hash of its absolute path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    digest = hashlib.sha256(f"{p}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return f"{p.stem}-{digest}"


def fetch_manifest_files(dl_manager: Any, entries: list[ManifestEntry], cache_dir: str | os.PathLike[str]
                         ) -> list[Path]:
    """Download every manifest entry with a ``datasets`` download manager, verify, extract.

    Args:
        dl_manager: the builder's ``datasets.DownloadManager`` (its cache holds the downloads).
        entries: from :func:`load_manifest`.
        cache_dir: the download cache folder (``<cache_dir>/downloads``); archives are
            extracted below ``<cache_dir>/raw_isp_extracted``.
    Returns:
        data roots: one folder per extracted archive and, if there are plain files, one folder
        holding them at their ``path``.
    Raises:
        SourceError: a download failed, a size or checksum differs (the bad download is removed
            from the cache), or an archive is unsafe, truncated or corrupt. Nothing half-written
            is left in the cache.
    """
    cache = Path(cache_dir)
    extracted = cache / "raw_isp_extracted"
    roots: list[Path] = []
    plain: list[tuple[ManifestEntry, Path]] = []
    for entry in entries:
        started = time.time()
        try:
            local = Path(dl_manager.download(entry.url))
        except Exception as e:
            # The download manager leaves "<file>.incomplete" behind when a transfer breaks off.
            for stale in cache.glob("*.incomplete"):
                with contextlib.suppress(OSError):
                    if stale.stat().st_mtime >= started - 1:
                        stale.unlink()
            raise SourceError(f"{entry.name}: download from {entry.url} failed ({type(e).__name__}: {e})") from e
        try:
            verify_file(local, entry)
        except SourceError:
            _discard_download(local, cache)
            raise
        if entry.extract:
            key = f"{Path(entry.name).stem}-{(entry.sha256 or file_sha256(local))[:16]}"
            try:
                roots.append(extract_cached(local, extracted, key))
            except ArchiveError as e:
                _discard_download(local, cache)
                raise SourceError(f"{entry.name} (from {entry.url}): {e}") from e
        else:
            plain.append((entry, local))
    if plain:
        tag = hashlib.sha256("|".join(f"{e.path or e.name}:{file_sha256(p)}" for e, p in plain).encode()).hexdigest()
        target = extracted / f"files-{tag[:16]}"
        if not target.is_dir():
            extracted.mkdir(parents=True, exist_ok=True)
            tmp = extracted / f".{target.name}.tmp-{secrets.token_hex(6)}"
            try:
                for entry, local in plain:
                    dest = tmp.joinpath(*_relative_parts(entry.path or entry.name))
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(local, dest)
                try:
                    os.rename(tmp, target)
                except OSError:
                    if not target.is_dir():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        roots.append(target)
    return roots


# ------------------------------------------------------------------ local copies


def fingerprint_tree(root: str | os.PathLike[str], limit: int = 200_000) -> str:
    """A short hash of the relative names, sizes and mtimes of the files below ``root`` (or of
    the file ``root``). Builders put it into their config id, so that a changed local copy is
    prepared again instead of being served from the cache."""
    root = Path(root)
    h = hashlib.sha256()
    if root.is_file():
        st = root.stat()
        h.update(f"{root.name}|{st.st_size}|{st.st_mtime_ns}".encode())
        return h.hexdigest()[:16]
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = Path(dirpath) / f
            try:
                st = p.stat()
            except OSError:
                continue
            h.update(f"{p.relative_to(root)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
            count += 1
            if count >= limit:
                return h.hexdigest()[:16]
    return h.hexdigest()[:16]


def layout_roots(data_dir: str | os.PathLike[str], extract_root: str | os.PathLike[str], depth: int = 2
                 ) -> list[tuple[Path, str | None]]:
    """Folders that may hold a dataset layout, for a local copy given as a folder or a zip.

    Zip archives (``data_dir`` itself, or any ``*.zip`` up to ``depth`` folders below it) are
    extracted with :func:`extract_cached` into ``extract_root`` (once per archive path, size
    and mtime). Returns ``(folder, zip_parent)`` pairs: each base folder (``data_dir`` and each
    extracted archive) and the folders up to two levels below it; ``zip_parent`` is, for an
    extracted archive's own folder, the name of the folder the archive was found in (e.g.
    ``"images"``: the archive holds that folder's content), else None.

    Raises:
        SourceError: ``data_dir`` is missing, or a file that is not a zip.
        ArchiveError: an archive is unsafe, truncated or corrupt.
    """
    data_dir = Path(data_dir)
    bases: list[tuple[Path, str | None]] = []
    if data_dir.is_file():
        if data_dir.suffix.lower() != ".zip":
            raise SourceError(f"{data_dir}: data_dir must be a folder or a .zip archive")
        bases.append((extract_cached(data_dir, extract_root, archive_key(data_dir)), None))
    elif data_dir.is_dir():
        bases.append((data_dir, None))
        for level in range(depth + 1):
            for z in sorted(data_dir.glob("/".join(["*"] * level + ["*.zip"]))):
                if z.is_file() and not any(part.startswith(".") for part in z.relative_to(data_dir).parts):
                    bases.append((extract_cached(z, extract_root, archive_key(z)), z.parent.name if level else None))
    else:
        raise SourceError(f"{data_dir}: data_dir does not exist")
    out: list[tuple[Path, str | None]] = []

    def subfolders(p: Path) -> list[Path]:
        return sorted(c for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))

    for base, parent in bases:
        out.append((base, parent))
        for child in subfolders(base):
            out.append((child, None))
            out.extend((grandchild, None) for grandchild in subfolders(child))
    return out


def manifest_path(files_manifest: str | os.PathLike | None, env_var: str, default: Path) -> Path:
    """The download manifest to use: the argument, else ``$env_var``, else ``default``."""
    return Path(files_manifest or os.environ.get(env_var) or default).expanduser()
