"""Safe, atomic extraction of zip archives, with limits that fit raw image datasets.

:func:`safe_extract_zip` checks every member before writing anything: no absolute paths, no
drive letters, no ``..`` components, no symbolic links or other special files, no duplicate
names, no member larger than :attr:`ExtractLimits.max_member_bytes`, none that inflates more than
:attr:`ExtractLimits.max_ratio` times (raw sensor frames compress about 1.2-3x with Deflate; a
zip bomb of zeros about 1000x), no two members whose data overlap in the file (members that
share one Deflate stream would multiply it), and a bounded total. The archive as a whole has an
*extraction budget* (:func:`extraction_budget`): at most ``max_ratio`` times its size on disk
(never less than ``ratio_floor``, never more than ``max_total_bytes``), checked against the
declared sizes before anything is written and against the bytes actually written while
extracting, so many small members under the per-member ratio floor cannot add up. It then extracts into a temporary folder
beside the target and renames it into place, so a failure (a bad member, a CRC error in a
truncated or corrupt archive, a full disk) leaves neither a half-written target nor the
temporary folder behind. :func:`extract_cached` does this once per archive into a cache.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ArchiveError",
    "SourceError",
    "ExtractLimits",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_TOTAL_BYTES",
    "safe_extract_zip",
    "extraction_budget",
    "zip_member_names",
    "extract_cached",
    "archive_key",
    "fingerprint_tree",
    "inside",
]

#: Default bound on the sum of the members' uncompressed sizes (32 GiB; the real Raw-Drone
#: full frames at seven intensities take about 3.5 GB).
DEFAULT_MAX_TOTAL_BYTES = 32 * 1024**3
_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class ArchiveError(ValueError):
    """An archive that cannot be extracted safely. The message names the archive (and member)."""


class SourceError(ValueError):
    """A data source that cannot be used: a missing or malformed file, a bad layout, a checksum
    mismatch, a failed download. The message names the file (or URL) and what is wrong."""


@dataclass(frozen=True)
class ExtractLimits:
    """What :func:`safe_extract_zip` accepts (sizes in bytes, as the zip directory declares them).

    Attributes:
        max_total_bytes: sum of the members' uncompressed sizes (default 32 GiB).
        max_member_bytes: one member's uncompressed size (default 8 GiB: a nested archive of
            every Raw-Drone frame is about 3.5 GB; one real frame is 40 MB).
        max_ratio: uncompressed / compressed size of one member (default 100).
        ratio_floor: members smaller than this (default 1 MiB) are not ratio-checked (small
            text files compress well and can do no harm).
    """

    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES
    max_member_bytes: int = 8 * 1024**3
    max_ratio: float = 100.0
    ratio_floor: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_total_bytes", "max_member_bytes", "ratio_floor"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"ExtractLimits.{name} must be a byte count >= 0, got {value!r}")
        if isinstance(self.max_ratio, bool) or not isinstance(self.max_ratio, (int, float)) or self.max_ratio < 1:
            raise ValueError(f"ExtractLimits.max_ratio must be a number >= 1, got {self.max_ratio!r}")


DEFAULT_LIMITS = ExtractLimits()


def _member_problem(info: zipfile.ZipInfo, limits: ExtractLimits) -> str | None:
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
    if info.file_size > limits.max_member_bytes:
        return (f"would be {info.file_size:,} bytes uncompressed, more than max_member_bytes="
                f"{limits.max_member_bytes:,} (ExtractLimits)")
    if info.file_size >= limits.ratio_floor:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_ratio:
            return (f"would inflate {info.compress_size:,} bytes to {info.file_size:,} ({ratio:,.0f}x), more than "
                    f"max_ratio={limits.max_ratio:g} (ExtractLimits); raw image data compresses about 1.2-3x, so "
                    "this looks like a decompression bomb")
    return None


def extraction_budget(archive_bytes: int, limits: ExtractLimits) -> int:
    """The most bytes one archive of ``archive_bytes`` bytes may extract to: ``max_ratio`` times
    its size, at least ``ratio_floor``, at most ``max_total_bytes``."""
    return min(limits.max_total_bytes, max(limits.ratio_floor, int(limits.max_ratio * archive_bytes)))


def _overlap_problem(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    """Two members whose local header and data overlap in the file (the data of each must end
    before the next member's header, and the last before the central directory)."""
    members = sorted((i for i in infos if not i.is_dir()), key=lambda i: i.header_offset)
    end_of_data = getattr(zf, "start_dir", None)
    for a, b in zip(members, members[1:] + [None]):
        # 30 bytes of fixed local header + the name: a lower bound on where a's data starts.
        end = a.header_offset + 30 + len(a.orig_filename.encode("utf-8")) + a.compress_size
        limit = b.header_offset if b is not None else end_of_data
        if limit is not None and end > limit:
            other = f"member {b.filename!r}" if b is not None else "the central directory"
            return (f"member {a.filename!r} overlaps {other} in the file (members sharing compressed data, a "
                    "decompression bomb)")
    return None


def _relative_parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[\\/]", name) if p not in ("", "."))


def _open_zip(src: Path) -> zipfile.ZipFile:
    if not src.is_file():
        raise ArchiveError(f"{src}: no such archive file")
    try:
        return zipfile.ZipFile(src)
    except zipfile.BadZipFile as e:
        raise ArchiveError(f"{src}: not a zip archive, or truncated ({e})") from e
    except OSError as e:
        raise ArchiveError(f"{src}: cannot open ({e})") from e


def _checked_members(src: Path, zf: zipfile.ZipFile, limits: ExtractLimits) -> list[zipfile.ZipInfo]:
    """Every member, after the checks of :func:`safe_extract_zip` (raises on the first problem)."""
    infos = zf.infolist()
    seen: set[tuple[str, ...]] = set()
    total = 0
    for info in infos:
        problem = _member_problem(info, limits)
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
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"{src}: members add up to more than max_total_bytes={limits.max_total_bytes} bytes "
                f"uncompressed (at member {info.filename!r}); refusing to extract"
            )
    overlap = _overlap_problem(zf, infos)
    if overlap is not None:
        raise ArchiveError(f"{src}: {overlap}; refusing to extract")
    budget = extraction_budget(_size_on_disk(src), limits)
    if total > budget:
        raise ArchiveError(
            f"{src}: members add up to {total:,} bytes uncompressed, more than the archive's extraction budget of "
            f"{budget:,} bytes (max_ratio={limits.max_ratio:g} times its {_size_on_disk(src):,} bytes, ExtractLimits); "
            "raw image data compresses about 1.2-3x, so this looks like a decompression bomb; refusing to extract")
    return infos


def _size_on_disk(src: Path) -> int:
    try:
        return src.stat().st_size
    except OSError:
        return 0


def zip_member_names(zip_path: str | os.PathLike[str], limits: ExtractLimits | None = None) -> list[str]:
    """The member names of a zip archive, read from its directory (nothing is extracted).

    Raises:
        ArchiveError: not a zip file, truncated, or a member that :func:`safe_extract_zip`
            would refuse.
    """
    src = Path(zip_path)
    with _open_zip(src) as zf:
        return [info.filename for info in _checked_members(src, zf, limits or DEFAULT_LIMITS)]


def safe_extract_zip(
    zip_path: str | os.PathLike[str],
    target_dir: str | os.PathLike[str],
    max_total_bytes: int | None = None,
    replace: bool = False,
    limits: ExtractLimits | None = None,
) -> Path:
    """Extract a zip archive into ``target_dir``, safely and atomically.

    Args:
        zip_path: the archive.
        target_dir: the folder to create; must not exist unless ``replace`` is True (then the
            old folder is swapped out only after the new one is complete, and deleted).
        max_total_bytes: shorthand that overrides ``limits.max_total_bytes``.
        replace: allow replacing an existing ``target_dir``.
        limits: size and compression limits (default :data:`DEFAULT_LIMITS`).
    Returns:
        the target folder as a ``Path``.
    Raises:
        ArchiveError: not a zip file, truncated or corrupt (bad CRC), an unsafe member (absolute
            path, drive letter, ``..``, symbolic link, special file, duplicate name), a member
            over the size or compression-ratio limit, or too large in total. The message starts
            with the archive path and names the member. Nothing is written before the checks.
        FileExistsError: ``target_dir`` exists and ``replace`` is False.
    """
    limits = limits or DEFAULT_LIMITS
    if max_total_bytes is not None:
        limits = ExtractLimits(max_total_bytes, limits.max_member_bytes, limits.max_ratio, limits.ratio_floor)
    src = Path(zip_path)
    target = Path(target_dir)
    if target.exists() and not replace:
        raise FileExistsError(f"{target}: target folder of {src} already exists")
    with _open_zip(src) as zf:
        infos = _checked_members(src, zf, limits)
        budget = extraction_budget(_size_on_disk(src), limits)
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
                        member = 0
                        while True:
                            block = fin.read(_CHUNK)
                            if not block:
                                break
                            written += len(block)
                            member += len(block)
                            if written > budget or member > info.file_size:
                                raise ArchiveError(
                                    f"{src}: member {info.filename!r} expands beyond its declared size or the "
                                    f"archive's extraction budget of {budget:,} bytes; refusing to extract"
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


def extract_cached(archive: str | os.PathLike[str], root: str | os.PathLike[str], key: str,
                   limits: ExtractLimits | None = None) -> Path:
    """Extract ``archive`` (safely, atomically) into ``root/key`` unless that folder exists."""
    target = Path(root) / key
    if target.is_dir():
        return target
    try:
        return safe_extract_zip(archive, target, limits=limits)
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


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether ``path`` resolves (symbolic links and ``..`` followed) to ``folder`` or below it."""
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


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
