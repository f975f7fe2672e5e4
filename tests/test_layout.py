"""The layout: each folder one concern, imports only downward, no cycles.

The layers are the import-linter contract in pyproject.toml (also run by `make
test` as `lint-imports`); here grimp checks the same layers over the real import
graph, finds module cycles, and shows that an upward import would be caught.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _contracts() -> list[dict[str, Any]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, Any]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layers() -> list[set[str]]:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    return [{m.strip() for m in layer.split("|")} for layer in layers["layers"]]


def _build() -> grimp.ImportGraph:
    return grimp.build_graph("reissue", include_external_packages=True)


@pytest.fixture
def graph() -> grimp.ImportGraph:
    return _build()


def _violations(graph: grimp.ImportGraph) -> list[str]:
    """Every import of a higher layer from a lower one or between siblings of one layer,
    and every import the public client must not make (directly or through others)."""
    layers = [grimp.Layer(*layer, independent=True) for layer in _layers()]
    found = [
        " -> ".join([*sorted(route.heads), *route.middle, *sorted(route.tails)])
        for dependency in graph.find_illegal_dependencies_for_layers(layers)
        for route in dependency.routes
    ]
    for contract in _contracts():
        if contract["type"] != "forbidden":
            continue
        for source in contract["source_modules"]:
            for forbidden in contract["forbidden_modules"]:
                if forbidden not in graph.modules:
                    continue  # not installed here: nothing can import it
                chain = graph.find_shortest_chain(source, forbidden, as_packages=True)
                if chain:
                    found.append(" -> ".join(chain))
    return sorted(found)


def test_every_package_is_in_a_layer(graph: grimp.ImportGraph) -> None:
    packages = {m for m in graph.find_children("reissue")}
    packages = {m for m in packages if graph.find_children(m) or m.count(".") == 1}
    in_layers = set().union(*_layers())
    subpackages = {m for m in packages if (ROOT / m.replace(".", "/")).is_dir()}
    assert subpackages == in_layers, "every folder of reissue/ belongs to one layer"


def test_no_module_imports_upward(graph: grimp.ImportGraph) -> None:
    assert _violations(graph) == []


def test_an_upward_import_would_be_found(graph: grimp.ImportGraph) -> None:
    graph.add_import(importer="reissue.schemas.case", imported="reissue.workers.settings")
    graph.add_import(importer="reissue.client._client", imported="reissue.workflows.case")
    graph.add_import(importer="reissue.client._client", imported="asyncpg")
    found = _violations(graph)
    assert "reissue.schemas.case -> reissue.workers.settings" in found
    assert "reissue.client._client -> reissue.workflows.case" in found
    assert "reissue.client._client -> asyncpg" in found


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def _without_package_inits(graph: grimp.ImportGraph) -> grimp.ImportGraph:
    # A package's __init__ re-exporting its own modules is not a cycle of concerns.
    for module in list(graph.modules):
        for child in graph.find_children(module):
            if graph.direct_import_exists(importer=child, imported=module):
                continue
            if graph.direct_import_exists(importer=module, imported=child):
                graph.remove_import(importer=module, imported=child)
    return graph


def test_no_import_cycles() -> None:
    graph = _without_package_inits(grimp.build_graph("reissue"))
    assert _cycles(graph) == []


def test_a_cycle_would_be_found() -> None:
    graph = _without_package_inits(grimp.build_graph("reissue"))
    graph.add_import(importer="reissue.workers.settings", imported="reissue.workers.worker")
    assert ["reissue.workers.settings", "reissue.workers.worker"] in _cycles(graph)
