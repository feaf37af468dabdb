"""The folders show the direction of imports: domain imports nothing outer, api nothing imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("domain", "commands", "projections", "api", "infrastructure")
FORBIDDEN = {
    "domain": {"commands", "projections", "api", "infrastructure", "sqlalchemy", "fastapi", "redis", "psycopg", "jwt"},
    "commands": {"projections", "api", "infrastructure", "sqlalchemy", "fastapi", "redis", "psycopg"},
    "projections": {"commands", "api", "infrastructure", "fastapi", "redis"},
    "infrastructure": {"api"},
    "api": set(),
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_nothing_outer(layer: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & FORBIDDEN[layer])
        for path in sorted((ROOT / layer).rglob("*.py"))
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}


def test_the_domain_does_no_io() -> None:
    io_modules = {"os", "socket", "sqlite3", "subprocess", "threading", "time", "requests", "httpx", "logging"}
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) & io_modules)
        for path in sorted((ROOT / "domain").glob("*.py"))
    }
    assert {path: bad for path, bad in offenders.items() if bad} == {}
