"""Folders the project owns: the one rule for deleting, and one lock per output folder.

**Deleting.** Nothing the project did not write is ever deleted. A folder the project creates
for its own output (a run's ``--output_dir``, a drift report, their ``.partial`` staging
folders) gets the marker file :data:`MARKER_NAME` when the project claims it
(:func:`mark_owned`); only a folder that carries the marker is ever replaced or removed
(:func:`remove_owned`). A folder is recognised by that marker, never by file names that users
use too (``README.md``, ``config.json``).

**Locking.** :func:`lock_output_dir` takes an advisory lock (``fcntl.flock``) on the file
:data:`LOCK_NAME` in a folder, for as long as this process works there (until
:func:`unlock_output_dir` or the process ends: the kernel drops the lock of a killed
process). A second process that wants the same folder fails at once with
:class:`FolderInUse`, whose message names the process that holds it (pid, host, command).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path
from typing import Iterable

from ..atomic import atomic_write_json
from .arguments import OptionError

__all__ = [
    "MARKER_NAME",
    "LOCK_NAME",
    "PROJECT_FILES",
    "FolderInUse",
    "NotOwned",
    "mark_owned",
    "is_owned",
    "user_entries",
    "describe",
    "remove_owned",
    "lock_output_dir",
    "unlock_output_dir",
    "held_folders",
]

#: The marker file the project writes into each folder it owns.
MARKER_NAME = ".raw_isp_owned"
#: The lock file of an output folder (kept; its lock, not its presence, says the folder is in use).
LOCK_NAME = ".raw_isp.lock"
#: Hidden files the project itself keeps in a folder; they do not make a folder "not empty".
PROJECT_FILES = (MARKER_NAME, LOCK_NAME)
_SIGNATURE = "raw_isp"

_held: dict[str, int] = {}  # resolved folder -> file descriptor of its lock, in this process


class NotOwned(OptionError):
    """A folder that the project would replace or remove does not carry its marker."""


class FolderInUse(OptionError):
    """Another process holds the output folder's lock. The message names it."""


def mark_owned(folder: str | os.PathLike, what: str = "output") -> Path:
    """Create ``folder`` if needed and write the marker into it (``what``: the kind of folder,
    for a person reading the marker). Returns the marker's path."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER_NAME
    if not is_owned(root):
        atomic_write_json(marker, {"written_by": _SIGNATURE, "what": what, "created": time.time()}, indent=None)
    return marker


def is_owned(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` is a real folder (not a symbolic link) carrying the project's marker."""
    root = Path(folder)
    marker = root / MARKER_NAME
    if root.is_symlink() or not root.is_dir() or marker.is_symlink() or not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(data, dict) and data.get("written_by") == _SIGNATURE


def user_entries(folder: str | os.PathLike, ignore: Iterable[str] = ()) -> list[Path]:
    """The entries of ``folder`` other than the project's own hidden files (the marker, the lock
    and their atomic-write temporaries, which another process of the same run may be writing) and
    ``ignore`` (a set of names or name prefixes), sorted; [] for a folder that does not exist."""
    root = Path(folder)
    if not root.is_dir():
        return []
    skip = tuple(ignore) + tuple(f".{name}." for name in PROJECT_FILES)
    return sorted(p for p in root.iterdir() if p.name not in PROJECT_FILES and not p.name.startswith(skip))


def describe(entries: list[Path], limit: int = 4) -> str:
    """``"a.txt, b/, c.json and 3 more"``."""
    names = [p.name + ("/" if p.is_dir() else "") for p in entries]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def remove_owned(folder: str | os.PathLike, what: str = "folder") -> bool:
    """Delete ``folder`` if it carries the marker; False if it does not exist.

    Raises:
        NotOwned: it exists but is not the project's (no marker, a symbolic link, a file);
            nothing is deleted. The message names the folder and what it holds.
    """
    root = Path(folder)
    if not root.exists() and not root.is_symlink():
        return False
    if not is_owned(root):
        held = describe(user_entries(root)) if root.is_dir() and not root.is_symlink() else "not a plain folder"
        raise NotOwned(f"{root}: this {what} was not written by raw_isp (it has no {MARKER_NAME} marker; it holds "
                       f"{held or 'nothing'}), so it is not deleted; move it away or choose another folder")
    shutil.rmtree(root)
    return True


def _holder(lock_file: Path) -> str:
    try:
        info = json.loads(lock_file.read_text(encoding="utf-8"))
        return (f"pid {info.get('pid')} on {info.get('host')}, started {time.ctime(info.get('started', 0))}: "
                f"{info.get('command')}")
    except (OSError, ValueError, AttributeError):
        return "a process that has not yet written its name"


def lock_output_dir(folder: str | os.PathLike, option: str = "--output_dir") -> Path:
    """Take the lock of ``folder`` (created if needed) for this process; a folder this process
    already holds is fine. Returns the lock file.

    Raises:
        FolderInUse: another process holds it (the message names the process).
    """
    import fcntl

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    key = str(root.resolve())
    lock_file = root / LOCK_NAME
    if key in _held:
        return lock_file
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise FolderInUse(f"{option} {root}: in use by another process ({_holder(lock_file)}); wait for it to "
                          "finish, or choose another folder") from None
    info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
            "command": " ".join(sys.argv)[:300]}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(info) + "\n").encode())
    _held[key] = fd
    return lock_file


def unlock_output_dir(folder: str | os.PathLike) -> None:
    """Release this process' lock of ``folder`` (nothing if it holds none)."""
    import fcntl

    fd = _held.pop(str(Path(folder).resolve()), None)
    if fd is not None:
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def held_folders() -> list[str]:
    """The folders this process holds locks on (for tests and messages)."""
    return sorted(_held)
