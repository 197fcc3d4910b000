"""Atomic writes: a reader sees the old file (or folder) or the whole new one, never half of it,
and a write that fails leaves nothing behind.

Every writer in the project goes through these:

* :func:`atomic_write` (and :func:`atomic_write_json`): the content goes to a temporary file with
  a unique name in the target's folder (created exclusively, so it honours the umask and never
  clobbers), is flushed and fsynced, then ``os.replace``-d onto the target; on any error,
  ``KeyboardInterrupt`` included, the temporary file is removed and the target is untouched.
* :func:`publish_folder`: a completed staging folder takes the place of its final name. An
  existing final folder (the caller's own: an earlier checkpoint or report) is first renamed
  aside, then removed once the new folder is in place, so at no moment is neither there.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

__all__ = ["atomic_write", "atomic_write_json", "publish_folder", "temporary_name"]


def temporary_name(path: str | os.PathLike, tag: str = "tmp") -> Path:
    """A unique hidden name beside ``path``: ``<folder>/.<name>.<12 hex>.<tag>``."""
    path = Path(path)
    return path.parent / f".{path.name}.{secrets.token_hex(6)}.{tag}"


def atomic_write(path: str | os.PathLike, data: bytes | str | Callable[[BinaryIO], None], *,
                 encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically and return ``path``.

    ``data``: bytes, text (encoded with ``encoding``) or a function that writes to the open
    binary file it is given. The folder must exist (``FileNotFoundError`` otherwise);
    ``IsADirectoryError`` if ``path`` is a folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not a file")
    tmp = temporary_name(path)
    try:
        with open(tmp, "xb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode(encoding) if isinstance(data, str) else data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_json(path: str | os.PathLike, value: Any, *, indent: int | None = 2, **dumps_options: Any) -> Path:
    """``value`` as JSON (``json.dumps(value, indent=indent, **dumps_options)`` and a newline),
    written with :func:`atomic_write`. The text is made before the file is touched, so a value
    that is not JSON leaves nothing behind."""
    return atomic_write(path, json.dumps(value, indent=indent, **dumps_options) + "\n")


def publish_folder(staging: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Move the completed folder ``staging`` to ``final`` (same file system) and return ``final``.

    An existing ``final`` folder is renamed aside first and removed after the move: call this
    only where ``final`` is the caller's own output (a checkpoint, a report it wrote before).
    ``FileExistsError`` if ``final`` is a file or a link.
    """
    staging, final = Path(staging), Path(final)
    old = None
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise FileExistsError(f"{final}: exists and is not a folder; not replaced")
    if final.exists():
        old = temporary_name(final, "old")
        os.replace(final, old)
    try:
        os.replace(staging, final)
    except BaseException:
        if old is not None:
            os.replace(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
