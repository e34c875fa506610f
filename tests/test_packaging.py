"""Packaging: every third-party module the package imports is declared, package data exists, one version."""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

import napari_colorize

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "napari_colorize"


def _imported_modules() -> dict[str, set[str]]:
    """Top-level names of absolute imports in the package (lazy ones inside functions too), with
    the files that import each."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(SRC)))
    return found


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_a_declared_requirement():
    declared = {_norm(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in metadata.requires("napari-colorize")}
    providers = metadata.packages_distributions()
    third_party = {m: files for m, files in _imported_modules().items()
                   if m not in sys.stdlib_module_names and m not in ("__future__", "napari_colorize")}
    assert {"numpy", "torch", "napari"} <= third_party.keys()  # the scan found the package
    missing = {m: sorted(files) for m, files in third_party.items()
               if not {_norm(d) for d in providers.get(m, [m])} & declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_package_data_patterns_match_files():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    for pattern in config["tool"]["setuptools"]["package-data"]["napari_colorize"]:
        assert list(SRC.glob(pattern)), f"package-data pattern {pattern!r} matches no file"


def test_the_version_is_the_one_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert napari_colorize.__version__ == config["project"]["version"]
    literal = re.compile(r"^__version__\s*=\s*['\"]", re.MULTILINE)
    assert not [p.name for p in SRC.rglob("*.py") if literal.search(p.read_text(encoding="utf-8"))]
