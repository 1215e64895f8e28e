"""The package layout's import rules (DESIGN.md §3), read from the source with `ast`.

Every `import` of an `app` module, at module level or inside a function, is an edge; an edge
the rules do not allow fails with the file, the line and the rule it breaks. The rules:

1. leaves (modules directly in `app/`) import nothing from `app` but `errors` (and `config`
   may use `naming`);
2. `store/` imports leaves only; `targets/` leaves and the store's chunk progress and fsync
   helper; only `targets/` imports an HTTP client;
3. `intake/`, `relay/`, `phone/` import leaves and `store/` (`relay/` also the target
   interface);
4. `observe/` imports leaves, `store/`, `targets/`, `relay/`;
5. `api/`, `web/`, `cli/` are faces: routers never import routers, `api` never imports
   `web`, `web` never imports `api`, `cli` never imports `api` or `web`;
6. only `cli` (to serve) imports `main`; nothing imports a package above it; no circles;
7. SQL is written in `store/` only (the phone's own run tables in `phone/backup.py` and
   `phone/free_up.py` aside).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "app"

LEAF = "leaf"
PACKAGES = ("store", "targets", "intake", "relay", "phone", "observe", "api", "web", "cli")
BELOW_FACES = {LEAF, "store", "targets", "intake", "relay", "phone", "observe", "services"}
# Which layers each layer may import (its own layer is always allowed, leaves aside).
ALLOWED: dict[str, set[str]] = {
    LEAF: set(),
    "store": {LEAF},
    "targets": {LEAF},
    "intake": {LEAF, "store"},
    "relay": {LEAF, "store"},
    "phone": {LEAF, "store"},
    "observe": {LEAF, "store", "targets", "relay"},
    "services": {LEAF, "store", "targets", "intake", "relay", "phone", "observe"},
    "api": BELOW_FACES,
    "web": BELOW_FACES,
    "cli": BELOW_FACES | {"main"},
    "main": BELOW_FACES | {"api", "web", "main"},
}
# Single modules a layer may reach into beyond its allowed layers.
EXTRA_MODULES: dict[str, set[str]] = {
    "targets": {"app.store.chunk_progress"},
    "relay": {"app.targets.base"},
}
LEAVES_MAY_IMPORT = {"app", "app.errors"}
LEAF_EXTRAS = {"app.config": {"app.naming"}, "app.connection_limits": {"app.socket_body"}}
HTTP_CLIENTS = {"httpx", "httpcore", "h11", "aiohttp", "requests", "urllib3"}
HTTP_CLIENT_MODULES = {"urllib.request", "http.client"}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    path: Path
    line: int


def module_name(path: Path, root: Path = APP) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return LEAF
    if parts[1] in ("main", "services"):
        return parts[1]
    if parts[1] in PACKAGES:
        return parts[1]
    return LEAF


def imports_of(path: Path, known: set[str], root: Path = APP) -> list[tuple[str, int]]:
    """Every module `path` imports, as (dotted name, line); `from pkg import mod` names mod."""
    tree = ast.parse(path.read_text(), str(path))
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.append((submodule if submodule in known else source, node.lineno))
    return found


def app_edges(root: Path = APP) -> tuple[list[Edge], list[Edge]]:
    """(edges between app modules, edges to outside modules), for every file under `root`."""
    paths = sorted(root.rglob("*.py"))
    known = {module_name(path) for path in paths}
    inside: list[Edge] = []
    outside: list[Edge] = []
    for path in paths:
        importer = module_name(path)
        for imported, line in imports_of(path, known):
            edge = Edge(importer, imported, path, line)
            (inside if imported == "app" or imported.startswith("app.") else outside).append(edge)
    return inside, outside


def is_router(module: str) -> bool:
    """A module of `app.api` that builds an `APIRouter` at module level."""
    path = APP.parent.joinpath(*module.split(".")).with_suffix(".py")
    if not path.exists():
        return False
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Name) and func.id == "APIRouter":
                return True
    return False


def broken_rule(edge: Edge) -> str | None:
    """Why `edge` is forbidden, or None when the rules allow it."""
    importer, imported = edge.importer, edge.imported
    if importer == imported:
        return None
    source, target = layer_of(importer), layer_of(imported)
    if source == LEAF:
        allowed = LEAVES_MAY_IMPORT | LEAF_EXTRAS.get(importer, set())
        return None if imported in allowed else "a leaf imports nothing from app but errors"
    if imported in LEAVES_MAY_IMPORT:
        return None
    if target == "main" and source not in ("cli", "main"):
        return "only cli (to serve) imports app.main"
    if source == target:
        if source in ("api", "web") and is_router(importer) and is_router(imported):
            return "a router never imports another router"
        return None
    if imported in EXTRA_MODULES.get(source, set()):
        return None
    if target not in ALLOWED[source]:
        return f"{source} may not import {target}"
    return None


def forbidden(edges: list[Edge]) -> list[str]:
    return sorted(
        {
            f"{edge.path.relative_to(APP.parent)}:{edge.line}: {edge.importer} -> "
            f"{edge.imported} ({rule})"
            for edge in edges
            if (rule := broken_rule(edge)) is not None
        }
    )


def cycles(edges: list[Edge]) -> list[list[str]]:
    """Import circles between app modules (each found once, from its smallest member)."""
    graph: dict[str, set[str]] = {}
    for edge in edges:
        if edge.importer != edge.imported and not edge.importer.startswith(f"{edge.imported}."):
            graph.setdefault(edge.importer, set()).add(edge.imported)
    found: list[list[str]] = []

    def walk(start: str, node: str, trail: list[str]) -> None:
        for following in sorted(graph.get(node, ())):
            if following == start:
                found.append([*trail, start])
            elif following > start and following not in trail:
                walk(start, following, [*trail, following])

    for start in sorted(graph):
        walk(start, start, [start])
    return found


def test_no_forbidden_import() -> None:
    """Every import between app's packages follows DESIGN.md §3's rules."""
    inside, _ = app_edges()
    assert forbidden(inside) == []


def test_no_import_circle() -> None:
    """No app module reaches itself through its imports (a package's own __init__ aside)."""
    inside, _ = app_edges()
    assert cycles(inside) == []


def test_only_targets_talk_http() -> None:
    """HTTP clients are imported in app/targets only: one place talks to a destination."""
    _, outside = app_edges()
    talkers = {
        f"{edge.importer} imports {edge.imported}"
        for edge in outside
        if (edge.imported.split(".")[0] in HTTP_CLIENTS or edge.imported in HTTP_CLIENT_MODULES)
        and layer_of(edge.importer) != "targets"
    }
    assert talkers == set()


def test_every_package_says_its_job() -> None:
    """Each package's __init__ opens with a docstring that says its job and what it must not do."""
    for init in sorted(APP.rglob("__init__.py")):
        if init.parent == APP:
            continue
        docstring = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(docstring.splitlines()) >= 2, f"{init} needs a docstring saying its job"
        words = " ".join(docstring.split())
        assert "must not" in words or "never" in words, f"{init}: what must it not do?"


@pytest.mark.parametrize(
    ("importer", "imported", "rule"),
    [
        ("app.store.state", "app.relay.worker", "store may not import relay"),
        ("app.intake.ingest", "app.targets.webdav", "intake may not import targets"),
        ("app.observe.metrics", "app.web.pages", "observe may not import web"),
        ("app.api.items", "app.api.uploads", "a router never imports another router"),
        ("app.cli.commands", "app.web.pages", "cli may not import web"),
        ("app.api.uploads", "app.web.pages", "api may not import web"),
        ("app.relay.worker", "app.main", "only cli (to serve) imports app.main"),
        ("app.clock", "app.naming", "a leaf imports nothing from app but errors"),
    ],
)
def test_checker_refuses_a_forbidden_edge(importer: str, imported: str, rule: str) -> None:
    """The checker itself fails on a forbidden edge: the rules above are not vacuous."""
    edge = Edge(importer, imported, APP / "x.py", 1)
    assert broken_rule(edge) == rule


def test_checker_finds_a_circle() -> None:
    """The circle finder reports a two-module circle."""
    edges = [
        Edge("app.observe.a", "app.observe.b", APP / "a.py", 1),
        Edge("app.observe.b", "app.observe.a", APP / "b.py", 1),
    ]
    assert cycles(edges) == [["app.observe.a", "app.observe.b", "app.observe.a"]]


def test_checker_reads_a_real_file(tmp_path: Path) -> None:
    """A forbidden import written into a file under app/ is found by the ast reader."""
    package = tmp_path / "app" / "store"
    package.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "state.py").write_text("def f():\n    from app.web.pages import x\n")
    known = {"app", "app.store", "app.store.state", "app.web.pages"}
    found = imports_of(package / "state.py", known, root=tmp_path / "app")
    assert ("app.web.pages", 2) in found


# SQL as this code writes it: upper-case keywords (prose that starts with "Create" is not).
SQL_STATEMENT = re.compile(
    r"\s*(SELECT\b.*\bFROM\b|INSERT\s+INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
    r"|CREATE\s+(TABLE|INDEX|UNIQUE)\b|PRAGMA\s+\w+|ALTER\s+TABLE\b)",
    re.S,
)
# The backup conversation keeps its own tables (DESIGN.md §3's one documented exception).
SQL_OUTSIDE_STORE = {"app.phone.backup", "app.phone.free_up"}


def test_sql_lives_in_store() -> None:
    """No module outside app/store runs SQL of its own (the phone's run tables excepted)."""
    found = set()
    for path in sorted(APP.rglob("*.py")):
        module = module_name(path)
        if layer_of(module) == "store" or module in SQL_OUTSIDE_STORE:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            is_text = isinstance(node, ast.Constant) and isinstance(node.value, str)
            if is_text and SQL_STATEMENT.match(node.value):
                found.add(f"{module}:{node.lineno}")
    assert found == set()
