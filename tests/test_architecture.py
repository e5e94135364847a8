"""Imports point one way: each module imports only modules above it in its package's table in
ARCHITECTURE.md, and top-level units above its own; no two module names differ only by a
suffix; the command line's help stays free of torch."""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "cxrvae"
TOP = "Top level"


def _tables() -> dict[str, list[str]]:
    """Each table of ARCHITECTURE.md's order section: "Top level" or "data/" -> its rows."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Packages and modules, in import order", 1)[1].split("\n## ", 1)[0]
    tables = {}
    for part in section.split("\n### ")[1:]:
        title, body = part.split("\n", 1)
        tables[title.strip()] = re.findall(r"^\| ([\w/]+) \| ", body, flags=re.M)[1:]  # no header
    return tables


def _modules() -> dict[str, Path]:
    """Dotted name inside cxrvae ("config", "data.loader", "data") -> its file."""
    found = {}
    for p in PACKAGE.rglob("*.py"):
        rel = p.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__" or parts == ["__init__"]:
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = p
    return found


def _imports(name: str, path: Path) -> set[str]:
    """The cxrvae modules that ``path`` imports (dotted, as in :func:`_modules`), at module
    level or inside functions."""
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - (node.level - 1)]
            if node.module:
                found.add(".".join([*base, node.module]))
            else:  # from . import x, y (modules of a package, or names of cxrvae itself)
                found.update(".".join([*base, a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cxrvae."):
            found.add(node.module.removeprefix("cxrvae."))
    return found


def _unit(name: str) -> str:
    """The top-level unit a module belongs to: "config", or "data/" for data.loader."""
    head = name.split(".")[0]
    return f"{head}/" if (PACKAGE / head).is_dir() else head


def test_architecture_lists_every_module_once():
    tables, modules = _tables(), _modules()
    top = tables.pop(TOP)
    assert len(top) == len(set(top))
    assert set(top) == {_unit(m) for m in modules}
    assert set(tables) == {u for u in top if u.endswith("/")}
    for title, rows in tables.items():
        package = title.rstrip("/")
        assert len(rows) == len(set(rows)), title
        assert set(rows) == {m.split(".", 1)[1] for m in modules if m.startswith(package + ".")}


def test_imports_point_one_way():
    tables, modules = _tables(), _modules()
    top = {u: i for i, u in enumerate(tables.pop(TOP))}
    wrong = []
    for name, path in modules.items():
        mine = _unit(name)
        for target in _imports(name, path):
            theirs = _unit(target)
            if target not in modules or target == name.split(".")[0]:
                continue  # a name of cxrvae itself (__version__), or a module's own package
            if mine != theirs and top[theirs] > top[mine]:
                wrong.append(f"{name} imports {target}, which is not above {mine}")
            elif mine == theirs and "." in name and path.name != "__init__.py":
                rank = {m: i for i, m in enumerate(tables[mine])}
                if rank[target.split(".", 1)[1]] >= rank[name.split(".", 1)[1]]:
                    wrong.append(f"{name} imports {target}, which is not above it in {mine}")
    assert not wrong, wrong


def test_the_order_check_fails_when_an_import_runs_backwards(tmp_path, monkeypatch):
    """The check above is no formality: with errors moved to the bottom of the top-level
    table, every module that imports it is reported."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| errors |"))
    cli = next(line for line in text.splitlines() if line.startswith("| cli/ |"))
    (tmp_path / "ARCHITECTURE.md").write_text(
        text.replace(row + "\n", "").replace(cli, cli + "\n" + row)
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    with pytest.raises(AssertionError, match="config imports errors, which is not above config"):
        test_imports_point_one_way()


def test_no_two_module_names_differ_only_by_a_suffix():
    names = sorted({p.stem for p in PACKAGE.rglob("*.py")} - {"__init__", "__main__"})
    close = [(a, b) for a in names for b in names if a != b and b.startswith(a)]
    assert not close, close


@pytest.mark.processes
@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["train", "--help"]])
def test_help_stays_free_of_torch(argv):
    code = (
        "import sys\n"
        "from cxrvae.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_the_command_line_stays_in_small_modules():
    sizes = {p.name: p.read_text().count("\n") for p in (PACKAGE / "cli").glob("*.py")}
    assert max(sizes.values()) <= 250, sizes
