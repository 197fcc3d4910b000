"""Import machinery of :mod:`raw_isp`: old module paths, and registration with transformers.

Two import-time services, installed once by ``import raw_isp``:

* **Moved modules.** Before the package was split into subpackages, its modules lay flat
  (``raw_isp.modeling``, ``raw_isp.processor``, ``raw_isp.corruptions``, ...). Those paths keep
  working: ``import raw_isp.modeling`` returns the module object of ``raw_isp.models.modeling``
  itself (not a copy), so ``isinstance`` checks and monkeypatching behave.
* **transformers registration without importing transformers.** ``AutoImageProcessor`` must know
  :class:`raw_isp.models.processor.RawISPImageProcessor` for a saved folder to load without
  ``trust_remote_code``, and ``pipeline()`` must know the ``raw-image-classification`` task.
  Importing transformers' image-processing stack costs seconds, so ``import raw_isp`` does not:
  a finder waits for transformers to load the module that needs the registration and registers
  right after that module has run. If transformers had loaded it already, registration happens
  at once.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

#: Old flat module paths (``raw_isp.<key>``) and the module that holds the code now.
MOVED: dict[str, str] = {
    "cfa": "raw_isp.isp.cfa",
    "color": "raw_isp.isp.color",
    "filters": "raw_isp.isp.filters",
    "demosaic": "raw_isp.isp.demosaic",
    "config": "raw_isp.isp.config",
    "pipeline": "raw_isp.isp.static",
    "parametrized": "raw_isp.isp.parametrized",
    "learned": "raw_isp.isp.learned",
    "arrow": "raw_isp.data.arrow",
    "archive": "raw_isp.data.archive",
    "splits": "raw_isp.data.splits",
    "processor": "raw_isp.models.processor",
    "modeling": "raw_isp.models.modeling",
    "corruptions": "raw_isp.drift.corruptions",
    "forensics": "raw_isp.drift.forensics",
}


def _call_when_ready(module: str, function: str) -> None:
    """Call ``module.function()``, importing the module if needed. A module that is itself being
    imported right now (its import is what loaded transformers) registers when it finishes."""
    loaded = sys.modules.get(module)
    if loaded is None:
        loaded = importlib.import_module(module)
    elif not hasattr(loaded, function):
        return
    getattr(loaded, function)()


def _register_image_processor() -> None:
    _call_when_ready("raw_isp.models.processor", "register_auto_class")


def _register_pipeline() -> None:
    _call_when_ready("raw_isp.models.pipelines", "register_pipeline")


#: transformers module -> what to register once it has run.
AFTER_IMPORT: dict[str, Callable[[], None]] = {
    "transformers.models.auto.image_processing_auto": _register_image_processor,
    "transformers.pipelines": _register_pipeline,
}


class _AliasLoader(importlib.abc.Loader):
    """Loads ``raw_isp.<old>`` as the module object of its new home."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return importlib.import_module(MOVED[spec.name.rpartition(".")[2]])

    def exec_module(self, module: Any) -> None:  # the real module has run already
        pass


class _CallbackLoader(importlib.abc.Loader):
    """Wraps a module's own loader and calls ``callback`` after the module has run."""

    def __init__(self, loader: importlib.abc.Loader, callback: Callable[[], None]) -> None:
        self._loader, self._callback = loader, callback

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._loader.exec_module(module)
        self._callback()

    def __getattr__(self, name: str) -> Any:  # get_source, get_filename, is_package, ...
        return getattr(self._loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        head, _, tail = fullname.rpartition(".")
        if head == "raw_isp" and tail in MOVED:
            return importlib.util.spec_from_loader(fullname, _AliasLoader())
        callback = AFTER_IMPORT.get(fullname)
        if callback is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _CallbackLoader(spec.loader, callback)
                return spec
        return None


_FINDER = _Finder()


def install() -> None:
    """Put the finder on ``sys.meta_path`` (first, so it sees transformers' modules before the
    path finder does) and register with any transformers module that has loaded already."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    for name, callback in AFTER_IMPORT.items():
        if name in sys.modules:
            callback()
