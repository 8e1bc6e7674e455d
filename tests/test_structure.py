"""The shape of the package: no import cycles among aisys modules, and imports that follow DESIGN.md's
dependency direction (models → frontend → framework ← compiler → chip, kernels; widgets on top, never
imported by aisys).

Every ``import`` counts, at module level or inside a function (a function-level import that closes a
cycle is still a cycle: the two modules cannot be understood, or split, one without the other).
"""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules(package: str) -> dict[str, pathlib.Path]:
    mods = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _imports(name: str, path: pathlib.Path, known) -> set[str]:
    """The modules of ``known`` that ``name`` imports anywhere in its source (the longest known prefix of
    each imported name; ``from pkg import sub`` counts ``pkg.sub`` when it is a module)."""
    is_pkg = path.name == "__init__.py"
    out = set()

    def add(target: str):
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - (node.level - (1 if is_pkg else 0))]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for a in node.names:
                if f"{base}.{a.name}" in known:
                    add(f"{base}.{a.name}")
                elif not (a.name.startswith("__") and a.name.endswith("__")):   # __version__: a constant
                    add(base)
    return out


MODULES = _modules("aisys")
GRAPH = {m: _imports(m, p, MODULES) for m, p in MODULES.items()}


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def test_the_module_graph_is_read_right():
    """The detector itself: it sees function-level and relative imports."""
    assert "aisys.framework.registry" in GRAPH["aisys.framework.tensor"]
    assert "aisys.chip.eventsim" in GRAPH["aisys.chip.lowering"]
    assert "aisys.framework.ops" in GRAPH["aisys.framework.autograd"]            # inside gradcheck
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles_among_aisys_modules():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles (each line: modules that import each other, directly or not):\n" + \
        "\n".join(" ↔ ".join(c) for c in cycles)


# DESIGN.md's dependency direction, per top-level subpackage: what each may import ("" is the aisys package
# itself, the front door that composes them). models, the application layer, may compose the layers below.
ALLOWED = {
    "framework": {"kernels"},
    "frontend": {"framework"},
    "compiler": {"framework", "frontend", "kernels", "chip"},
    "chip": {"framework"},
    "kernels": {"framework"},
    "models": {"framework", "frontend", "chip"},
    "onnx": {"framework", "frontend", "compiler"},     # aisys.onnx: the front door's ONNX backend (composes)
    "labkit": {"", "framework", "frontend", "compiler", "chip", "models", "kernels", "onnx", "dist", "inference",
               "cluster"},                                # exercises check every layer
    "dist": {"framework", "chip", "kernels"},
    "inference": {"framework", "chip", "kernels", "models", ""},   # the capstone walks the stack via the front door
    "cluster": {"framework", "chip", "kernels", "dist"},
}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.mark.parametrize("layer", sorted({_layer(m) for m in MODULES} - {""}))
def test_imports_follow_the_dependency_direction(layer):
    if layer not in ALLOWED:
        pytest.fail(f"aisys.{layer} is a new subpackage: add its allowed dependencies to ALLOWED (DESIGN.md)")
    wrong = sorted(f"{m} imports {t}" for m in MODULES if _layer(m) == layer for t in GRAPH[m]
                   if _layer(t) != layer and _layer(t) not in ALLOWED[layer])
    assert not wrong, f"aisys.{layer} may import {sorted(ALLOWED[layer])} only:\n" + "\n".join(wrong)


def test_aisys_never_imports_widgets_or_jupyter():
    bad = {"widgets", "ipywidgets", "IPython", "plotly", "anywidget", "jupyterlab", "notebook"}
    wrong = []
    for m, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            wrong += [f"{m} imports {n}" for n in names if n.split(".")[0] in bad]
    assert not wrong, "\n".join(wrong)
