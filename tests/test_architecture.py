"""The layout the code keeps (README "Architecture"), held by reading every module's imports.

Dependencies point down the page only:

    errors, atomic                  rank 0   shared by every layer
    data, the package's __init__    rank 1   readers, preprocessing, the store, the split
    augment, outputs                rank 2   the sampler and its batches; where outputs go
    analysis, models                rank 3   closed forms and plots; the models (pure torch)
    engines, train                  rank 4   data at scale (no torch); training and evaluation
    search                          rank 5   searches, experiments, reports
    cli                             rank 6   the thin shell

A module may import (at the top or inside a function) only from a lower rank or its own package, so two packages of
one rank never lean on each other. Beside that: data, engines and analysis never import torch (a store is prepared
and analysed without it), nothing below the CLI prints for the user, and no module grows past 400 lines.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "genpas"
RANK = {"errors": 0, "atomic": 0, "__init__": 1, "data": 1, "augment": 2, "outputs": 2, "analysis": 3, "models": 3,
        "engines": 4, "train": 4, "search": 5, "cli": 6, "__main__": 7}
NO_TORCH = ("data", "engines", "analysis")
MAX_LINES = 400


def _modules():
    return sorted(SRC.rglob("*.py"))


def _package(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path, root: Path = SRC):
    """(line, module) of every import in `path` (a module of the package at `root`), relative ones resolved."""
    rel = path.relative_to(root)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # from . import x, from ..data import y
                module = ".".join(["genpas", *rel.parts[:-node.level], *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if module == "genpas":  # from genpas import search, from .. import cli: each name is a package
                yield from ((node.lineno, f"genpas.{alias.name}") for alias in node.names)
            else:
                yield node.lineno, module


def test_every_package_has_a_rank():
    packages = {_package(p) for p in _modules()}
    assert packages <= set(RANK), f"give {sorted(packages - set(RANK))} a rank in this test and in README's sketch"


def test_dependencies_point_down_the_page_only():
    upward = []
    for path in _modules():
        mine = _package(path)
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "genpas" or len(parts) < 2 or parts[1] == mine:
                continue
            if RANK.get(parts[1], len(RANK)) >= RANK.get(mine, -1):  # an unranked package fails the test above too
                upward.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not upward, "imports running up (or across) the layers:\n" + "\n".join(upward)


@pytest.mark.parametrize("package", NO_TORCH)
def test_the_data_side_never_imports_torch(package):
    found = [f"{p.relative_to(SRC)}:{line}" for p in (SRC / package).rglob("*.py")
             for line, module in _imports(p) if module.split(".")[0] == "torch"]
    assert not found, f"{package} imports torch: {found}"
    # nor through what it imports (augment holds the torch datasets, in a module of their own)
    probe = f"import sys, genpas.{package}; print('torch' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False", f"importing genpas.{package} loads torch"


def test_nothing_below_the_cli_prints():
    printing = []
    for path in _modules():
        if _package(path) in ("cli", "__main__"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{path.relative_to(SRC)}:{node.lineno}")
        printing += [f"{path.relative_to(SRC)}:{line} imports {module}" for line, module in _imports(path)
                     if module.split(".")[0] in ("typer", "click", "rich")]
    assert not printing, "output for the user below the CLI (use logging or a progress bar):\n" + "\n".join(printing)


def test_no_module_exceeds_400_lines():
    long = {str(p.relative_to(SRC)): n for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (a sign that one holds two jobs): {long}"


def test_the_import_reader_sees_relative_imports_and_those_inside_functions(tmp_path):
    """So the layering rule cannot pass by not seeing an import."""
    probe = tmp_path / "genpas" / "data" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("def f():\n    from ..train import trainer\n    import genpas.search.report\n"
                     "from genpas import cli, search\nfrom .. import models\n")
    assert sorted(_imports(probe, tmp_path / "genpas")) == [
        (2, "genpas.train"), (3, "genpas.search.report"), (4, "genpas.cli"), (4, "genpas.search"), (5, "genpas.models")]
