"""How the code depends on itself: what every app shares for its sockets and errors (wire/)
imports nothing of the project; the job runtime (workers/) only that; the uploads app
(media_tasks/) neither the chat nor the project; the chat, whose pictures are uploads, the
uploads app but not the project; no module imports, even lazily, one that imports it back."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["workers", "wire", "media_tasks", "chat", "project"]
# What each package may import of the others.
ALLOWED = {
    "workers": {"wire"},
    "wire": set(),
    "media_tasks": {"workers", "wire"},
    # A message's picture is an upload: the chat uses the uploads app, never the reverse.
    "chat": {"workers", "wire", "media_tasks"},
    "project": {"workers", "wire", "media_tasks", "chat"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imported(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The project's modules that `path` imports anywhere (functions too), but for imports
    only a type checker follows."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for inner in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            targets = [name if name in known else node.module for name in names]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target:
                yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(path, known)) - {name} for name, path in known.items()}


def test_each_package_imports_only_the_layers_below_it() -> None:
    wrong = sorted(
        (module, target)
        for module, targets in graph().items()
        for target in targets
        if (outer := target.split(".")[0]) != (inner := module.split(".")[0])
        and outer not in ALLOWED[inner]
    )
    assert wrong == []


def test_no_module_imports_one_that_imports_it_back() -> None:
    edges = graph()
    cycles = []
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycles.append([*path[path.index(module) :], module])
            return
        if module in done:
            return
        for target in sorted(edges[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert cycles == []
