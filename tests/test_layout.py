"""The package reads as layers: no module imports one that imports it back (directly or through
others), so each can be read, and tested, below the ones that use it. The sandbox's data and request
types sit below its forge dialects, and only its server knows which dialects exist."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "release_action"


def _imports() -> dict[str, set[str]]:
    """Each module of the package, and the package's modules it imports anywhere (type-only imports too)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                for alias in node.names:
                    found.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {target for target in found if target in modules and target != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found, done, path = [], set(), []

    def visit(name: str) -> None:
        path.append(name)
        for target in sorted(graph[name]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        if name not in done:
            visit(name)
    return found


def test_no_module_imports_one_that_imports_it_back():
    graph = _imports()
    assert "release_action.sandbox.server" in graph and graph["release_action.sandbox.server"], graph
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_only_the_sandbox_server_knows_its_forge_dialects():
    dialects = {"release_action.sandbox." + name for name in ("gitflic", "gitea", "sourcecraft")}
    knowing = {name for name, targets in _imports().items() if targets & dialects}
    assert knowing == {"release_action.sandbox.server"}


@pytest.mark.xdist_group("grouping")
def test_a_group_of_tests_stays_on_one_worker(request):
    """scripts/test keeps the container tests, and the package builds, each on one pytest-xdist worker
    (--dist loadgroup), which reads the group from the node id: pytest 9.2 ignores it (pytest-xdist
    issue 1386), and the groups would then be scattered silently."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("runs under scripts/test's pytest-xdist workers (--dist loadgroup)")
    assert request.node.nodeid.endswith("@grouping")
