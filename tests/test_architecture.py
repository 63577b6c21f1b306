"""The dependency rule of docs/architecture.md, checked on the source with `ast`.

- `connectors/` may import `cdc/`; `cdc/` imports no `connectors` module, except `cdc/registry.py` (the
  engine table) and the demo (`cdc/demo/`, the one place that names both engines). A string that spells
  a connector module (`"connectors.postgres.target"`, for `importlib`) counts as an import.
- One engine never imports another (`connectors/postgres` <-> `connectors/mysql`).
- No import cycles among module-level imports (imports inside functions run later and are left out,
  as are `if TYPE_CHECKING:` blocks).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("cdc", "connectors")
ALLOWED_TO_NAME_CONNECTORS = ("cdc.registry", "cdc.impl", "cdc.demo")  # a module, or a package and all it holds; cdc.impl: the twin table
_MODULE_PATH = re.compile(r"connectors(\.[A-Za-z_][A-Za-z0-9_]*)+")

# Known violations: none. An entry would be "<importer> -> <imported>" for the direction rules, or the
# sorted modules of a cycle joined by " <-> "; the list may only shrink.
KNOWN_DIRECTION_VIOLATIONS: set[str] = set()
KNOWN_CYCLES: set[str] = set()


@dataclass(frozen=True, slots=True)
class Import:
    """One dependency of a module: what it imports, where, and whether it runs at import time."""

    importer: str
    imported: str
    line: int
    module_level: bool
    by_string: bool = False


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under the packages (`pkg/__init__.py` is `pkg`)."""
    modules = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(importer: str, is_package: bool, level: int, module: str | None) -> str:
    """The absolute name of `from <level dots><module> import ...` written in `importer`."""
    if level == 0:
        return module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, module_level: bool) -> Iterator[tuple[ast.AST, bool]]:
    """Every node under `node`, with whether it runs when the module is imported."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child):
            continue  # never runs
        inside = module_level and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        yield child, inside
        yield from _walk(child, inside)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """The imports of one module, each resolved to the most specific module of `modules` it names."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found = []

    def known(dotted: str) -> str:
        while dotted and dotted not in modules:
            dotted = dotted.rpartition(".")[0]
        return dotted

    for node, module_level in _walk(tree, True):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, is_package, node.level, node.module)
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_PATH.fullmatch(node.value):
            found.append(Import(name, node.value, node.lineno, module_level=False, by_string=True))
            continue
        for target in targets:
            resolved = known(target) or target
            found.append(Import(name, resolved, node.lineno, module_level))
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _engine(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if parts[0] == "connectors" and len(parts) > 1 else None


def direction_violations(imports: list[Import]) -> list[str]:
    """`"<importer> -> <imported>"` for each import that breaks the direction rules."""
    bad = []
    for item in imports:
        if item.importer.startswith("cdc") and _within(item.imported, ("connectors",)):
            if not _within(item.importer, ALLOWED_TO_NAME_CONNECTORS):
                bad.append(f"{item.importer} -> {item.imported}")
        source, target = _engine(item.importer), _engine(item.imported)
        if source and target and source != target:
            bad.append(f"{item.importer} -> {item.imported}")
    return sorted(set(bad))


def import_cycles(imports: list[Import]) -> list[str]:
    """Each group of modules that import each other at import time (Tarjan's strongly connected components)."""
    graph: dict[str, set[str]] = {}
    for item in imports:
        if item.module_level and not item.by_string:
            graph.setdefault(item.importer, set()).add(item.imported)
            graph.setdefault(item.imported, set())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                cycles.append(" <-> ".join(sorted(group)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(cycles)


def all_imports(root: Path) -> list[Import]:
    modules = find_modules(root)
    return [item for name, path in modules.items() for item in imports_of(name, path, modules)]


# -- the rules on this repository ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def repository_imports() -> list[Import]:
    return all_imports(ROOT)


def test_the_checker_sees_the_repository(repository_imports):
    importers = {item.importer for item in repository_imports}
    assert {"cdc.cli", "cdc.registry", "connectors.postgres.source", "connectors.mysql.source"} <= importers
    assert any(item.importer.startswith("connectors") and item.imported.startswith("cdc") for item in repository_imports)


def test_cdc_imports_no_connector_and_engines_do_not_import_each_other(repository_imports):
    found = set(direction_violations(repository_imports))
    assert sorted(found - KNOWN_DIRECTION_VIOLATIONS) == [], "see docs/architecture.md, the dependency rule"


def test_no_import_cycles(repository_imports):
    found = set(import_cycles(repository_imports))
    assert sorted(found - KNOWN_CYCLES) == [], "module-level import cycles; see docs/architecture.md"


def test_known_violations_are_still_real(repository_imports):
    """An allow-list entry that no longer matches anything must go (so the list only shrinks)."""
    assert KNOWN_DIRECTION_VIOLATIONS <= set(direction_violations(repository_imports))
    assert KNOWN_CYCLES <= set(import_cycles(repository_imports))


# -- the checker on a tiny fake tree -------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CLEAN = {
    "cdc/__init__.py": "",
    "cdc/errors.py": "class CdcError(Exception): ...\n",
    "cdc/registry.py": 'import importlib\nMODULES = {"postgresql": "connectors.postgres.source"}\n',
    "cdc/demo/__init__.py": "from connectors.mysql import source\nfrom connectors.postgres import source as pg\n",
    "cdc/apply/__init__.py": "",
    "cdc/apply/worker.py": "from ..errors import CdcError\nfrom cdc import registry\n",
    "connectors/__init__.py": "",
    "connectors/postgres/__init__.py": "",
    "connectors/postgres/source.py": "from cdc.errors import CdcError\nfrom . import decode\n",
    "connectors/postgres/decode.py": "import cdc.errors\n",
    "connectors/mysql/__init__.py": "",
    "connectors/mysql/source.py": "from cdc.errors import CdcError\ndef later():\n    from .snapshot import run\n",
    "connectors/mysql/snapshot.py": "from connectors.mysql.source import later\n",
}


def test_checker_passes_a_clean_tree(tmp_path):
    imports = all_imports(_tree(tmp_path, CLEAN))
    assert direction_violations(imports) == []
    assert import_cycles(imports) == []  # the function-level import back is not a cycle
    assert Import("connectors.postgres.source", "connectors.postgres.decode", 2, True) in imports
    assert Import("cdc.apply.worker", "cdc.errors", 1, True) in imports  # relative import resolved


@pytest.mark.parametrize(("relative", "text", "violation"), [
    ("cdc/apply/worker.py", "from connectors.postgres import target\n", "cdc.apply.worker -> connectors.postgres"),
    ("cdc/apply/worker.py", "import connectors.mysql.source\n", "cdc.apply.worker -> connectors.mysql.source"),
    ("cdc/apply/worker.py", "def f():\n    import connectors.mysql.source\n",
     "cdc.apply.worker -> connectors.mysql.source"),
    ("cdc/apply/worker.py", 'WRITERS = {"pg": "connectors.postgres.target"}\n',
     "cdc.apply.worker -> connectors.postgres.target"),
    ("connectors/postgres/decode.py", "from connectors.mysql import source\n",
     "connectors.postgres.decode -> connectors.mysql.source"),
    ("connectors/mysql/snapshot.py", "from ...connectors.postgres.decode import x\n",
     "connectors.mysql.snapshot -> connectors.postgres.decode"),
])
def test_checker_finds_a_new_direction_violation(tmp_path, relative, text, violation):
    files = {**CLEAN, relative: text}
    assert direction_violations(all_imports(_tree(tmp_path, files))) == [violation]


def test_checker_finds_a_new_cycle(tmp_path):
    files = {**CLEAN, "connectors/mysql/source.py": "from cdc.errors import CdcError\nfrom .snapshot import run\n"}
    assert import_cycles(all_imports(_tree(tmp_path, files))) == ["connectors.mysql.snapshot <-> connectors.mysql.source"]
    files = {**CLEAN, "cdc/errors.py": "import cdc.apply.worker\n"}
    assert import_cycles(all_imports(_tree(tmp_path, files))) == ["cdc.apply.worker <-> cdc.errors"]


def test_type_checking_imports_are_not_cycles(tmp_path):
    files = {**CLEAN, "cdc/errors.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import cdc.apply.worker\n"}
    assert import_cycles(all_imports(_tree(tmp_path, files))) == []
