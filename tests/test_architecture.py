"""Imports point one way: each module imports only modules listed above it in ARCHITECTURE.md."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "cxrvae"


def _order() -> list[str]:
    text = (ROOT / "ARCHITECTURE.md").read_text()
    table = text.split("## Modules, in import order", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (\w+) \| ", table, flags=re.M)[1:]  # skip the header row


def _package_imports(path: Path) -> set[str]:
    """Sibling modules that ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:  # from . import x, y
                found.update(a.name for a in node.names)
    return found


def test_architecture_lists_every_module_once():
    order = _order()
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__"}
    assert len(order) == len(set(order))
    assert set(order) == modules


def test_imports_point_one_way():
    order = _order()
    rank = {m: i for i, m in enumerate(order)}
    wrong = []
    for m in order:
        for dep in _package_imports(PACKAGE / f"{m}.py") - {"__version__"}:
            if dep in rank and rank[dep] >= rank[m]:
                wrong.append(f"{m} imports {dep}, which is not above it")
    assert not wrong, wrong
