"""The design card's layout: api, worker and producer import shared, never each other."""

from __future__ import annotations

import ast

import pytest

from tests.helpers import ROOT

PACKAGES = ("api", "worker", "producer")
TOOLING = ("ops",)  # operator tooling: imports shared only, starts the services by module name


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
    bad = sorted(f"{path} imports {name}" for path, name in imported_top_levels("shared")
                 if name in PACKAGES + TOOLING)
    assert not bad, bad


@pytest.mark.parametrize("package", TOOLING)
def test_tooling_imports_only_shared_of_ours(package):
    bad = sorted(f"{path} imports {name}" for path, name in imported_top_levels(package) if name in PACKAGES)
    assert not bad, bad


@pytest.mark.parametrize("package", PACKAGES)
def test_services_do_not_import_the_tooling(package):
    bad = sorted(f"{path} imports {name}" for path, name in imported_top_levels(package) if name in TOOLING)
    assert not bad, bad


def test_running_worker_does_not_import_the_offline_tools():
    """worker/offline (evaluation, scoring, quantisation) imports the pipeline, never the reverse."""
    bad = []
    for path in (ROOT / "worker").rglob("*.py"):
        if "offline" in path.relative_to(ROOT).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad += [f"{path.relative_to(ROOT)} imports {name}" for name in names
                    if name.startswith("worker.offline")]
    assert not bad, bad


def test_no_pickle_anywhere():
    for package in (*PACKAGES, *TOOLING, "shared"):
        names = {name for _, name in imported_top_levels(package)}
        assert "pickle" not in names and "cPickle" not in names


def modules(packages=(*PACKAGES, *TOOLING, "shared")):
    """(dotted name, path, parsed tree) of every module of ours."""
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield name, path, ast.parse(path.read_text("utf-8"))


def test_job_payload_is_read_only_through_its_contract():
    """``job.kwargs`` is read in ``shared.payload`` alone (JobPayload.from_job)."""
    bad = sorted(f"{path.relative_to(ROOT)}:{node.lineno}" for name, path, tree in modules()
                 for node in ast.walk(tree)
                 if isinstance(node, ast.Attribute) and node.attr == "kwargs" and name != "shared.payload")
    assert not bad, bad


RESULT_ONLY_KEYS = {"lines", "timings_ms", "batch_size", "batch_id", "attempts"}


def test_result_documents_are_read_only_through_their_contract():
    """Keys only a result document has are read in ``shared.document`` alone."""
    def reads(node):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            return node.slice.value
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
                and node.args and isinstance(node.args[0], ast.Constant):
            return node.args[0].value
        return None

    bad = sorted(f"{path.relative_to(ROOT)}:{node.lineno} reads {reads(node)!r}" for name, path, tree in modules()
                 for node in ast.walk(tree) if reads(node) in RESULT_ONLY_KEYS and name != "shared.document")
    assert not bad, bad


def test_no_import_loops():
    """Among our modules, counting imports inside functions too: none imports itself back."""
    graph: dict[str, set[str]] = {}
    names = {name for name, _, _ in modules()}
    for name, _, tree in modules():
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {target for target in found if target in names and target != name}
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in graph[name]:
            assert state.get(target) != 1, " -> ".join([*path[path.index(target):], target]) if target in path \
                else f"{name} -> {target}"
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_modules_and_functions_stay_small():
    """No module over 300 lines, no function over 50 (style.md)."""
    long_modules = [f"{path.relative_to(ROOT)}: {n} lines" for _, path, _ in modules()
                    if (n := len(path.read_text("utf-8").splitlines())) > 300]
    long_functions = [f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1}"
                      for _, path, tree in modules() for node in ast.walk(tree)
                      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                      and node.end_lineno - node.lineno + 1 > 50]
    assert not long_modules and not long_functions, long_modules + long_functions
