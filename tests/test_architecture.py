"""The package's layering, checked by walking every module's imports (no Spark needed).

Layers, bottom to top: the model (records, errors, names, configuration), storage (the offline
interface and its engines, the registry, Spark and dev services), services (ingestion, online,
quality, query, training, streaming, sources), the facades (FeatureStore, FeatureGroup), and above
all the CLI, the HTTP server and the job runner. A module imports only from its own layer or
below; only the offline interface imports the Hudi engine; there is no import circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "featurestore"

LAYERS = {
    "model": 0, "errors": 0, "names": 0, "config": 0,
    "hudi": 1, "offline": 1, "registry": 1, "spark": 1, "devdb": 1, "devcluster": 1, "alerts": 1,
    "provenance": 1,
    "ingestion": 2, "online": 2, "quality": 2, "query": 2, "training": 2, "streaming": 2, "sources": 2,
    "transformation": 2,
    "feature_group": 3, "feature_store": 3,
    "cli": 4, "server": 4, "jobrunner": 4, "__init__": 4,
}
SERVICES = {"ingestion", "online", "quality", "query", "training", "streaming", "sources", "transformation"}
FACADES = {"featurestore.feature_group", "featurestore.feature_store"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every featurestore module ``path`` imports, at any depth (function bodies and TYPE_CHECKING too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # "from pkg import mod" imports the module pkg.mod when there is one
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("featurestore") and name != "featurestore":
                while name not in known and "." in name:
                    name = name.rpartition(".")[0]
                if name in known and name != this:
                    found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports_of(path, known) for name, path in mods.items()}


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer():
    unknown = sorted({top(m) for m in modules()} - set(LAYERS))
    assert not unknown, f"modules without a layer in tests/test_architecture.py: {unknown}"


def test_imports_point_down():
    wrong = [f"{m} (layer {LAYERS[top(m)]}) imports {d} (layer {LAYERS[top(d)]})"
             for m, deps in graph().items() for d in deps if LAYERS[top(d)] > LAYERS[top(m)]]
    assert not wrong, "\n".join(wrong)


def test_services_never_import_the_facades():
    wrong = [f"{m} imports {d}" for m, deps in graph().items() if top(m) in SERVICES for d in deps if d in FACADES]
    assert not wrong, "\n".join(wrong)


def test_only_the_offline_interface_imports_the_hudi_engine():
    wrong = [f"{m} imports {d}" for m, deps in graph().items()
             if top(m) not in ("hudi", "offline") for d in deps if top(d) == "hudi"]
    assert not wrong, "\n".join(wrong)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the list of modules around it, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_circles():
    # Package __init__ modules that only re-export their own submodules are not part of a circle's
    # cause; everything else counts, including imports inside functions and TYPE_CHECKING blocks.
    edges = {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph().items()}
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path):
    # the guard itself: a made-up circle and a made-up upward edge are found
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert LAYERS[top("featurestore.online.sync")] < LAYERS[top("featurestore.feature_group")]
