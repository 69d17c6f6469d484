"""The distribution's layout: one import root (``ticketfmt``), the dependency direction, no import cycles."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ticketfmt

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(ticketfmt.__file__).resolve().parent


@pytest.mark.parametrize("name", ["converters", "cards"])
def test_no_bare_top_level_names(name: str) -> None:
    # The folders converters/ and cards/ install as ticketfmt.converters / ticketfmt.cards only.
    if sys.flags.safe_path:  # python -P: the checkout is not on sys.path
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(name)
    module = importlib.import_module(f"ticketfmt.{name}")
    assert Path(module.__file__).resolve().parent == ROOT / name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return next(out.glob("ticketfmt-*.whl"))


def test_wheel_has_one_top_level_name(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"ticketfmt"}
    assert "ticketfmt/converters/resnet.py" in names and "ticketfmt/cards/templates/ticket_card.md" in names


def test_import_contracts_hold_on_the_installed_package(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    exe = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(exe), str(ROOT / ".importlinter")], cwd=site, capture_output=True, text=True,
                          env={"PYTHONPATH": str(site), "PATH": ""})
    assert proc.returncode == 0, proc.stdout[-3000:]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    parts = ["ticketfmt", *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_files() -> dict[str, Path]:
    roots = {"": PACKAGE, "converters": ROOT / "converters", "cards": ROOT / "cards"}
    files: dict[str, Path] = {}
    for sub, root in roots.items():
        for path in root.rglob("*.py"):
            rel = path.relative_to(root).with_suffix("")
            parts = ["ticketfmt", *([sub] if sub else []), *rel.parts]
            if parts[-1] == "__init__":
                parts.pop()
            files[".".join(parts)] = path
    return files


def _imports(module: str, path: Path, known: set[str]) -> set[str]:
    """Every ticketfmt module imported anywhere in the file (functions included; TYPE_CHECKING blocks not)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip |= {id(n) for n in ast.walk(node)}
    found: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in known and m != module}


def test_no_import_cycles_counting_function_level_imports() -> None:
    files = _package_files()
    graph = {m: _imports(m, p, set(files)) for m, p in files.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_no_library_function_over_60_lines() -> None:
    long = []
    for module, path in _package_files().items():
        if module.startswith("ticketfmt.cli"):
            continue  # typer commands: their option lists are long by nature
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1  # signature and docstring included
                if n > 60:
                    long.append(f"{module}.{node.name}: {n} lines")
    assert not long, long
