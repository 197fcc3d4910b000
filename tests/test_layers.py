"""The import layers of DESIGN.md, checked on the source: every import statement, at module level
or inside a function, points down the order, and no modules import each other in a cycle.

    scripts -> dataset packages (raw_drone, raw_microscopy) -> raw_isp
    inside raw_isp: explorer -> drift -> training -> (models, data, metrics) -> isp
                    -> (registry, sensor, io, citation, atomic)

``models -> metrics`` is the one arrow between the middle three. ``raw_isp.testing`` (the
independent reference ISP) is imported by nothing in the project's packages. The package root
``raw_isp/__init__.py`` is the facade: it may load anything (lazily), and no module below it
imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("raw_isp", "raw_drone", "raw_microscopy")

#: raw_isp's layers, lowest first; a module may import its own layer's modules and lower layers.
LAYERS = (
    ("raw_isp.registry", "raw_isp.sensor", "raw_isp.io", "raw_isp.citation", "raw_isp.atomic"),
    ("raw_isp.isp",),
    ("raw_isp.models", "raw_isp.data", "raw_isp.metrics"),
    ("raw_isp.training",),
    ("raw_isp.drift",),
    ("raw_isp.explorer",),
    ("raw_isp.testing",),
)
#: Arrows inside a layer between different groups: a model scores itself; the bottom modules
#: are single files that may use each other (the cycle test still applies).
SAME_LAYER_ALLOWED = {("raw_isp.models", "raw_isp.metrics")} | {
    (a, b) for a in LAYERS[0] for b in LAYERS[0] if a != b}
TOP_LEVEL = {"raw_isp": 0, "raw_drone": 1, "raw_microscopy": 1, "scripts": 2}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for the project's packages and its scripts."""
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")):
            mods[module_name(path, root)] = path
    for path in sorted((root / "scripts").glob("*.py")):
        mods["scripts." + path.stem] = path
    return mods


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that ``name`` (file ``path``) imports anywhere in its body."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            # ``from P import n`` imports the module P.n when there is one, else P.
            targets = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        else:
            continue
        for target in targets:
            # The deepest project module that the dotted name names (``import raw_isp.isp.cfa``).
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def rank(name: str) -> tuple[int, int, str]:
    """(top-level rank, raw_isp layer, group) of a module; raw_isp's root package ranks above
    its layers."""
    top = name.split(".")[0]
    if top != "raw_isp":
        return TOP_LEVEL[top], 0, top
    if name == "raw_isp":
        return 0, len(LAYERS), name
    for layer, groups in enumerate(LAYERS):
        for group in groups:
            if name == group or name.startswith(group + "."):
                return 0, layer, group
    raise AssertionError(f"{name} is in no layer of tests/test_layers.py: add it to LAYERS (and DESIGN.md)")


def back_arrows(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for src, targets in sorted(graph.items()):
        s_top, s_layer, s_group = rank(src)
        for dst in sorted(targets):
            d_top, d_layer, d_group = rank(dst)
            if dst.startswith("scripts"):
                bad.append(f"{src} -> {dst}: nothing imports a script")
            elif s_top != d_top:
                if d_top > s_top:
                    bad.append(f"{src} -> {dst}: {src.split('.')[0]} is below {dst.split('.')[0]}")
            elif s_group == d_group:
                continue
            elif d_layer > s_layer or (d_layer == s_layer and (s_group, d_group) not in SAME_LAYER_ALLOWED):
                bad.append(f"{src} -> {dst}: {s_group} may not import {d_group} (layers in DESIGN.md)")
    return bad


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]; counter[0] += 1
        stack.append(start); on_stack.add(start)
        while work:
            node, it = work[-1]
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter[0]; counter[0] += 1
                    stack.append(nxt); on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, ())))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = []
                    while True:
                        m = stack.pop(); on_stack.discard(m); comp.append(m)
                        if m == node:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = project_modules(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def package_roots(graph: dict[str, set[str]]) -> list[str]:
    """Arrows into raw_isp's root package from below it (the facade is imported by nothing inside)."""
    return [f"{src} -> raw_isp" for src, targets in sorted(graph.items())
            if src.startswith("raw_isp.") and "raw_isp" in targets]


def test_no_import_points_against_the_layers():
    graph = import_graph(ROOT)
    assert len(graph) > 60, "the walk found too few modules"
    problems = back_arrows(graph) + package_roots(graph)
    assert not problems, "imports against the layers of DESIGN.md:\n" + "\n".join(problems)


def test_no_import_cycles():
    found = cycles(import_graph(ROOT))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def edits_import_path(path: Path) -> bool:
    """Whether the module touches ``sys``'s ``path`` attribute (the import path) anywhere."""
    return any(isinstance(node, ast.Attribute) and node.attr == "path" and isinstance(node.value, ast.Name)
               and node.value.id == "sys" for node in ast.walk(ast.parse(path.read_text(), str(path))))


def test_no_module_edits_the_import_path(tmp_path):
    offenders = [str(p.relative_to(ROOT)) for p in project_modules(ROOT).values() if edits_import_path(p)]
    assert not offenders, f"modules that edit the import path: {offenders}"
    planted = tmp_path / "planted.py"
    planted.write_text("import sys\nsys." + "path.insert(0, '..')\n")
    assert edits_import_path(planted)


def _plant(tmp_path: Path, relpath: str, source: str) -> Path:
    """A copy of the project's packages and scripts with one file changed or added."""
    import shutil

    for name in PACKAGES + ("scripts",):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / relpath
    target.write_text(target.read_text() + source if target.exists() else source)
    return tmp_path


@pytest.mark.parametrize("relpath, source, expected", [
    # a function-level back-arrow: the ISP layer reaching up into training
    ("raw_isp/isp/filters.py", "\n\ndef _planted():\n    from ..training import loop\n", "raw_isp.isp.filters -> raw_isp.training.loop"),
    # models and data are one layer and do not import each other
    ("raw_isp/models/modeling.py", "\n\ndef _planted():\n    from ..data import splits\n", "raw_isp.models.modeling -> raw_isp.data.splits"),
    # raw_isp knows nothing of the dataset packages
    ("raw_isp/registry.py", "\nimport raw_drone\n", "raw_isp.registry -> raw_drone"),
])
def test_a_planted_back_arrow_fails(tmp_path, relpath, source, expected):
    problems = back_arrows(import_graph(_plant(tmp_path, relpath, source)))
    assert any(p.startswith(expected) for p in problems), problems


def test_a_planted_cycle_fails(tmp_path):
    root = _plant(tmp_path, "raw_isp/isp/cfa.py", "\n\ndef _planted():\n    from . import static\n")
    found = cycles(import_graph(root))
    assert any({"raw_isp.isp.cfa", "raw_isp.isp.static"} <= set(c) for c in found), found


def test_relative_imports_resolve_to_modules():
    modules = project_modules(ROOT)
    name = "raw_isp.drift.synthesis"
    deps = imports_of(name, modules[name], modules)
    assert {"raw_isp.registry", "raw_isp.isp.corruptions"} <= deps, deps
