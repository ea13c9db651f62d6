"""The design card's layout: api, worker and producer import shared, never each other."""

from __future__ import annotations

import ast

import pytest

from tests.helpers import ROOT

PACKAGES = ("api", "worker", "producer")


def imported_top_levels(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                found |= {(str(path.relative_to(ROOT)), alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path.relative_to(ROOT)), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_only_shared_of_ours(package):
    others = set(PACKAGES) - {package}
    bad = sorted(f"{path} imports {name}" for path, name in imported_top_levels(package) if name in others)
    assert not bad, bad


def test_shared_imports_none_of_the_services():
    bad = sorted(f"{path} imports {name}" for path, name in imported_top_levels("shared") if name in PACKAGES)
    assert not bad, bad


def test_no_pickle_anywhere():
    for package in (*PACKAGES, "shared"):
        names = {name for _, name in imported_top_levels(package)}
        assert "pickle" not in names and "cPickle" not in names
