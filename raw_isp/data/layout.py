"""Finding a dataset's folder layout in a folder, a zip, or zips inside zips, at any depth.

:class:`LayoutTree` is a read-only view of a data source as one tree of *logical* paths, built
once per load:

- a folder is walked recursively (hidden entries and macOS ``__MACOSX`` folders skipped);
- a zip archive ``name.zip`` met on the way is extracted safely once into the cache
  (:func:`raw_isp.data.archive.extract_cached`) and appears as the folder ``name``; when the
  archive holds a single folder of that same name (``raw_scale100.zip`` holding
  ``raw_scale100/``), that folder is the content (as if unzipped in place). Archives inside
  extracted archives are treated the same way, up to :data:`MAX_ZIP_DEPTH` levels;
- a caller's ``want(logical_path)`` can leave archives unextracted (e.g. the
  ``raw_scaleNNN.zip`` of intensities a configuration does not use).

Files are only ever looked up by listing folders, never by joining a path from text read out of
a label file or manifest, so no entry of such a file can point outside the tree. A symbolic
link met on the way must resolve inside ``data_dir`` (or inside the extraction cache): a link to
a file or folder elsewhere, a link loop and a broken link are each a :class:`SourceError` naming
the link (a link can otherwise pull any file of the machine into a dataset). Builders query
the tree by name (:meth:`LayoutTree.find_files`, :meth:`LayoutTree.find_dirs`,
:func:`ratio_folders`); when a layout is missing, :meth:`LayoutTree.describe_top` says what the
tree holds at its top, for the error message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from .archive import ExtractLimits, SourceError, archive_key, extract_cached

__all__ = ["LayoutTree", "ratio_folders", "MAX_ZIP_DEPTH", "MAX_ENTRIES"]

#: Archives are opened at most this many levels deep (a zip in a zip in a zip).
MAX_ZIP_DEPTH = 3
#: Refuse trees with more files and folders than this (the real Raw-Microscopy has about 6,600).
MAX_ENTRIES = 200_000
_SKIP_DIRS = {"__MACOSX"}

Logical = tuple[str, ...]


def _shown(parts: Logical) -> str:
    return "/".join(parts) if parts else "."


class LayoutTree:
    """A data source as a tree of logical paths (tuples of names), zip archives opened.

    Args:
        extract_root: cache folder for extracted archives.
        limits: extraction limits (:class:`raw_isp.data.archive.ExtractLimits`).
        want: ``want(logical_path_of_the_zip) -> bool``; False leaves that archive closed.
    """

    def __init__(self, extract_root: str | os.PathLike[str], limits: ExtractLimits | None = None,
                 want: Callable[[Logical], bool] | None = None) -> None:
        self.extract_root = Path(extract_root)
        self.limits = limits
        self.want = want or (lambda parts: True)
        self.dirs: dict[Logical, list[Path]] = {(): []}
        self.files: dict[Logical, Path] = {}
        self._children: dict[Logical, dict[str, Path]] = {}
        self.closed_zips: list[Logical] = []
        self._count = 0
        self._seen: set[tuple[int, int]] = set()  # (device, inode) of the folders walked: no link loops
        self.root: Path | None = None  # data_dir: every symbolic link must resolve inside it
        self.too_deep: list[Logical] = []  # archives left closed: more than MAX_ZIP_DEPTH zip levels down

    # -- building
    @classmethod
    def from_path(cls, data_dir: str | os.PathLike[str], extract_root: str | os.PathLike[str],
                  limits: ExtractLimits | None = None, want: Callable[[Logical], bool] | None = None
                  ) -> "LayoutTree":
        """The tree of a local folder, or of a local ``.zip`` (its content is the top).

        Raises:
            SourceError: ``data_dir`` is missing, or a file that is not a zip.
            ArchiveError: an archive is unsafe, truncated, corrupt or over the limits.
        """
        data_dir = Path(data_dir)
        tree = cls(extract_root, limits, want)
        tree.root = data_dir.resolve() if data_dir.is_dir() else None
        if data_dir.is_dir():
            tree.add_dir(data_dir, ())
        elif data_dir.is_file():
            if data_dir.suffix.lower() != ".zip":
                raise SourceError(f"{data_dir}: data_dir must be a folder or a .zip archive")
            tree.add_dir(extract_cached(data_dir, tree.extract_root, archive_key(data_dir), limits), ())
        else:
            raise SourceError(f"{data_dir}: data_dir does not exist")
        return tree

    def add_named(self, name: str, real: Path, key: str, archive: bool | None = None) -> None:
        """Add a downloaded file under the relative ``name`` (e.g. ``"labels/x.dat"``); an
        archive (``archive=True``, or by default a name ending in ``.zip``) is opened, extracted
        under ``extract_root/key``."""
        parts = tuple(p for p in re.split(r"[\\/]", name) if p not in ("", "."))
        if not parts or ".." in parts:
            raise SourceError(f"{name!r}: not a relative path inside the data root")
        for k in range(1, len(parts)):
            self.dirs.setdefault(parts[:k], [])
        self.add_file(Path(real), parts, key=key, archive=archive)

    def _tick(self, where: Path) -> None:
        self._count += 1
        if self._count > MAX_ENTRIES:
            raise SourceError(f"{where}: more than {MAX_ENTRIES:,} files and folders; not a dataset layout")

    def add_dir(self, real: Path, logical: Logical, zip_depth: int = 0) -> None:
        """Add the folder ``real`` (recursively) at ``logical``; a folder met twice (through a
        symbolic link) is walked once."""
        st = real.stat()
        if (st.st_dev, st.st_ino) in self._seen:
            return
        self._seen.add((st.st_dev, st.st_ino))
        self.dirs.setdefault(logical, []).append(real)
        for entry in sorted(os.scandir(real), key=lambda e: e.name):
            if entry.name.startswith(".") or entry.name in _SKIP_DIRS:
                continue
            self._tick(real)
            if entry.is_symlink():
                self._check_link(Path(entry.path))
            if entry.is_dir(follow_symlinks=True):
                self.add_dir(Path(entry.path), logical + (entry.name,), zip_depth)
            elif entry.is_file(follow_symlinks=True):
                self.add_file(Path(entry.path), logical + (entry.name,), zip_depth=zip_depth)

    def _check_link(self, link: Path) -> None:
        """Raise :class:`SourceError` unless the symbolic link ``link`` resolves inside data_dir."""
        try:
            target = link.resolve(strict=True)
        except (OSError, RuntimeError) as err:  # RuntimeError: a loop (Python < 3.13)
            why = "loops back on itself" if "loop" in str(err).lower() or getattr(err, "errno", None) == 40 \
                else "points to nothing"
            raise SourceError(f"{link}: a symbolic link that {why} ({os.readlink(link)!r}); fix or remove it") from None
        roots = [r for r in (self.root, self.extract_root.resolve()) if r is not None]
        if not any(target == r or r in target.parents for r in roots):
            where = f"data_dir {self.root}" if self.root is not None else "the data"
            raise SourceError(f"{link}: a symbolic link to {target}, outside {where}; every file of a dataset must "
                              "lie inside it (copy the file there, or point data_dir at a folder that holds it)")

    def add_file(self, real: Path, logical: Logical, key: str | None = None, zip_depth: int = 0,
                 archive: bool | None = None) -> None:
        """Add the file ``real`` at ``logical``; an archive (by default: a name ending in
        ``.zip``) becomes a folder (see the module docstring)."""
        name = logical[-1]
        if archive is None:
            archive = name.lower().endswith(".zip")
        if archive and zip_depth >= MAX_ZIP_DEPTH:
            self.too_deep.append(logical)
        if not archive or zip_depth >= MAX_ZIP_DEPTH:
            if logical not in self.files:
                self.files[logical] = real
                self._children.setdefault(logical[:-1], {})[name] = real
            return
        stem = name[:-4] if name.lower().endswith(".zip") else name
        folder = logical[:-1] + (stem,)
        if not self.want(folder):
            self.closed_zips.append(logical)
            return
        extracted = extract_cached(real, self.extract_root, key or archive_key(real), self.limits)
        top = [e for e in os.scandir(extracted) if not e.name.startswith(".") and e.name not in _SKIP_DIRS]
        if len(top) == 1 and top[0].is_dir() and top[0].name.lower() == stem.lower():
            extracted = Path(top[0].path)  # raw_scale100.zip holding raw_scale100/: unzipped in place
        self.add_dir(extracted, folder, zip_depth + 1)

    # -- queries
    def find_files(self, match: Callable[[str], bool]) -> list[Logical]:
        """Logical paths of the files whose name satisfies ``match``, sorted."""
        return sorted(p for p in self.files if match(p[-1]))

    def find_dirs(self, match: Callable[[str], bool]) -> list[Logical]:
        """Logical paths of the folders whose name satisfies ``match``, sorted."""
        return sorted(p for p in self.dirs if p and match(p[-1]))

    def listdir(self, folder: Logical, suffixes: Iterable[str] | None = None) -> dict[str, Path]:
        """``{file name: local path}`` of the files directly in a logical folder (optionally only
        those whose name ends in one of ``suffixes``, compared case-insensitively)."""
        ends = tuple(s.lower() for s in suffixes) if suffixes is not None else None
        children = self._children.get(folder, {})
        return {name: children[name] for name in sorted(children) if ends is None or name.lower().endswith(ends)}

    def real(self, folder: Logical) -> Path:
        """A local folder behind a logical one (the first, for messages)."""
        found = self.dirs.get(folder) or []
        if found:
            return found[0]
        for p, path in self.files.items():  # a purely logical folder (downloaded files)
            if p[: len(folder)] == folder:
                return path.parent
        return self.extract_root

    def describe_top(self, limit: int = 20) -> str:
        """What the tree holds at its top, e.g. ``"data/ (folder: images/, labels/), notes.txt"``."""
        names: list[str] = []
        for p in sorted(self.dirs):
            if len(p) == 1:
                inner = sorted({q[1] + ("/" if q in self.dirs else "") for q in list(self.dirs) + list(self.files)
                                if len(q) == 2 and q[0] == p[0]})
                shown = ", ".join(inner[:6]) + (", ..." if len(inner) > 6 else "")
                names.append(f"{p[0]}/ ({shown or 'empty'})")
        names.extend(p[0] for p in sorted(self.files) if len(p) == 1)
        names.extend(f"{p[-1]} (not opened)" for p in self.closed_zips if len(p) == 1)
        deep = ""
        if self.too_deep:
            deep = (f" ({len(self.too_deep)} archive(s) more than MAX_ZIP_DEPTH={MAX_ZIP_DEPTH} zip levels deep were "
                    f"not opened, e.g. {_shown(self.too_deep[0])}; unpack one level by hand)")
        if not names:
            return "nothing" + deep
        return "; ".join(names[:limit]) + (f"; ... ({len(names) - limit} more)" if len(names) > limit else "") + deep


def _common(a: Logical, b: Logical) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def ratio_folders(tree: LayoutTree, ratio_of_tag: dict[str, float], suffixes: Iterable[str],
                  within: str | None = None, within_required: bool = False, anchor: Logical | None = None,
                  where: str = "the data") -> dict[float, Logical]:
    """The ``raw_scaleNNN`` folder of each intensity: ``{ratio: logical folder}``.

    Candidates are folders named ``raw_scale<tag>`` (any case) that directly hold at least one
    file ending in one of ``suffixes``. Among several for one tag: those below a folder named
    ``within`` (e.g. ``images``; required if ``within_required``), then those sharing the
    longest path with ``anchor`` (e.g. the dataset folder of the label file), then the shallowest.

    Raises:
        SourceError: two candidates remain for one intensity (the message lists them).
    """
    suffixes = tuple(suffixes)
    out: dict[float, Logical] = {}
    for tag, ratio in ratio_of_tag.items():
        name = f"raw_scale{tag}"
        found = [d for d in tree.find_dirs(lambda n, name=name: n.lower() == name) if tree.listdir(d, suffixes)]
        if within is not None:
            under = [d for d in found if within.lower() in (x.lower() for x in d[:-1])]
            if under or within_required:
                found = under
        if not found:
            continue
        rank = {d: (-_common(d[:-1], anchor) if anchor is not None else 0, len(d)) for d in found}
        best = min(rank.values())
        top = [d for d in found if rank[d] == best]
        if len(top) > 1:
            listed = ", ".join(str(tree.real(d)) for d in top)
            raise SourceError(f"{where}: several folders {name} could hold the frames at intensity {ratio}: "
                              f"{listed}; point data_dir at one copy of the dataset")
        out[ratio] = top[0]
    return out
