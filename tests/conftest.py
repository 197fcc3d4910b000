"""Shared test helpers."""

import importlib.util
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name: str):
    """``scripts/<name>.py`` as a module (its ``main`` and ``parse_args`` callable in-process),
    loaded from its file: scripts are not a package, and nothing adds their folder to the import path."""
    spec = importlib.util.spec_from_file_location(f"script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script():
    """``script("drift_synthesis")``: a command-line script as a module (:func:`load_script`)."""
    return load_script
