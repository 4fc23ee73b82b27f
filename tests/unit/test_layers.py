"""The layers of ../shared/DESIGN.md hold: every module of harness/ and oracles/ imports only from its own floor
or below, never a private module of another package, and the heavy frameworks only where they belong.

Imports are read with ``ast`` from the source (top-level and function-local alike, ``TYPE_CHECKING`` ones
too), so a cycle hidden in a function body is still a violation. A module missing from :data:`FLOORS` fails
the test: a new module needs its floor.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# module (or package prefix) -> floor; the longest matching prefix wins. Floors as in DESIGN.md, with
# oracles below the records (the records never import the oracles; harness reads oracles' public API).
FLOORS: dict[str, int] = {
    "oracles": 0,
    # floor 1: records, their text forms and outcome counting
    "harness._records": 1,
    "harness.records": 1,
    "harness._values": 1,
    "harness._text": 1,
    "harness.outcomes": 1,
    "harness._files": 1,
    "harness.provenance": 1,
    # floor 2: candidates, strategies, options, and what they share
    "harness.candidates": 2,
    "harness.strategies": 2,
    "harness.options": 2,
    "harness.thresholds": 2,
    "harness.metrics": 2,
    "harness.corpus": 2,
    "harness.speed": 2,
    # floor 3: scoring; untrusted code (the audit worker and the adapters that feed it)
    "harness.scoring": 3,
    "harness.isolation": 3,
    "harness.adapters": 3,
    # floor 4: orchestration
    "harness.search": 4,
    "harness.campaign": 4,
    "harness.sweep": 4,
    "harness.exhaustive": 4,
    "harness._sweep_kernel": 4,  # the compiled pass of exhaustive's chunk figures
    "harness.auditing": 4,
    "harness.gate": 4,
    "harness.comparison": 4,
    "harness.journal": 4,
    "harness._executors": 4,
    # floor 5: reports
    "harness.reports": 5,
    "harness.junit": 5,
    # floor 6: the faces (and the package itself, whose __init__ gathers the public names)
    "harness": 6,
    "harness.commands": 6,
    "harness.cli": 6,
    "harness.pytest_plugin": 6,
    "harness.progress": 6,
}

FRAMEWORKS = {"tensorflow", "keras", "torch", "jax", "jaxlib", "optax"}
# Where the frameworks may be imported: the candidates, and the audit worker (the adapters convert an audited
# function's framework results in it).
FRAMEWORK_ROOMS = ("harness.candidates", "harness.adapters", "harness.isolation")
PLOTTING = {"matplotlib"}
PLOTTING_ROOMS = ("harness.reports.html",)
CLUSTER = {"dask", "distributed"}  # the [dask] extra: imported where an executor is made, only when asked for
CLUSTER_ROOMS = ("harness._executors",)

# Known violations in files other work is rewriting right now (each to be removed by that work; the test
# fails once one is gone, so the list cannot go stale).
KNOWN: set[tuple[str, str]] = {
    ("harness.adapters", "harness.candidates._registry"),  # ALL_DTYPES, Candidate: the sandbox rewrite
    ("harness.adapters", "harness.candidates._backend"),  # _environment: the sandbox rewrite
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    paths = sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "oracles").rglob("*.py"))
    return {module_name(p): p for p in paths}


def floor_of(module: str) -> int | None:
    best = None
    for prefix in FLOORS:
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best):
                best = prefix
    return None if best is None else FLOORS[best]


def imports_of(module: str, source: str, is_package: bool, known_modules: set[str]) -> list[tuple[str, int, bool]]:
    """(imported module, line, function-local) for every import in ``source``; ``from X import name``
    counts as importing ``X.name`` when that is a module."""
    tree = ast.parse(source)
    local = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))}
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno, id(node) in local) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.append((sub if sub in known_modules else target, node.lineno, id(node) in local))
    return out


def is_private_to_another_package(importer: str, target: str) -> bool:
    """``a.b._c`` is private to package ``a.b``: only modules inside ``a.b`` may import it."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:i])
            return not (importer == owner or importer.startswith(owner + "."))
    return False


def violations(module: str, imports: list[tuple[str, int, bool]]) -> list[str]:
    """What is wrong with ``module``'s imports, one line each."""
    mine = floor_of(module)
    out = []
    for target, line, _local in imports:
        top = target.split(".")[0]
        where = f"{module}:{line} imports {target}"
        if module.startswith("oracles") and top == "harness":
            out.append(f"{where}: oracles imports nothing of harness")
        if top in ("harness", "oracles"):
            theirs = floor_of(target)
            if theirs is not None and mine is not None and theirs > mine:
                out.append(f"{where}: floor {theirs} above its own floor {mine}")
            if is_private_to_another_package(module, target) and (module, target) not in KNOWN:
                out.append(f"{where}: a private module of another package")
        if top in FRAMEWORKS and not module.startswith(FRAMEWORK_ROOMS):
            out.append(f"{where}: frameworks are imported in harness/candidates/ and the audit worker only")
        if top in PLOTTING and not module.startswith(PLOTTING_ROOMS):
            out.append(f"{where}: matplotlib is imported by the HTML report only")
        if top in CLUSTER and not module.startswith(CLUSTER_ROOMS):
            out.append(f"{where}: Dask is imported by harness/_executors.py only")
    return out


def _scan() -> tuple[list[str], set[tuple[str, str]], list[str]]:
    modules = all_modules()
    known = set(modules)
    problems, private_seen, unplaced = [], set(), []
    for name, path in modules.items():
        if floor_of(name) is None:
            unplaced.append(name)
        imports = imports_of(name, path.read_text(encoding="utf-8"), path.name == "__init__.py", known)
        problems += violations(name, imports)
        private_seen |= {(name, t) for t, _l, _f in imports if (name, t) in KNOWN}
    return problems, private_seen, unplaced


def test_every_module_has_a_floor():
    _problems, _seen, unplaced = _scan()
    assert not unplaced, f"add these modules to FLOORS in tests/unit/test_layers.py: {unplaced}"


def test_no_module_imports_from_a_higher_floor_a_private_module_of_another_package_or_a_framework_out_of_place():
    problems, _seen, _unplaced = _scan()
    assert not problems, "\n".join(problems)


def test_the_known_exceptions_still_exist():
    _problems, seen, _unplaced = _scan()
    assert seen == KNOWN, f"fixed, remove from KNOWN: {sorted(KNOWN - seen)}"


@pytest.mark.parametrize(
    "module, source, expected",
    [
        ("harness.scoring", "def f():\n    from .reports import render\n", "floor 5 above its own floor 3"),
        ("harness.campaign", "from .candidates._registry import UPCAST_SUFFIX\n", "a private module of another package"),
        ("oracles._ulp", "import harness._records\n", "oracles imports nothing of harness"),
        ("harness.campaign", "def f():\n    import tensorflow as tf\n", "frameworks are imported in"),
        ("harness.reports.markdown", "import matplotlib\n", "matplotlib is imported by the HTML report only"),
        ("harness.campaign", "def f():\n    from distributed import Client\n", "Dask is imported by harness/_executors.py only"),
    ],
)
def test_the_checker_catches_each_kind_of_violation(module, source, expected):
    found = violations(module, imports_of(module, source, False, set(all_modules())))
    assert any(expected in line for line in found), found


def test_the_checker_accepts_imports_from_below_and_private_modules_of_its_own_package():
    source = "from ._records import Score\nfrom .candidates import Unsupported\nimport numpy\n"
    assert violations("harness.scoring", imports_of("harness.scoring", source, False, set(all_modules()))) == []
    source = "from ._common import verdict\nfrom harness._values import fmt_ulp\n"
    assert violations("harness.reports.markdown", imports_of("harness.reports.markdown", source, False, set(all_modules()))) == []


def test_numbers_are_parsed_in_one_place():
    """``float.fromhex`` (the parsing of hex text) is called in harness/_values.py only."""
    callers = [name for name, path in all_modules().items() if name.startswith("harness")
               and "fromhex" in path.read_text(encoding="utf-8") and name != "harness._values"]
    assert callers == []


def test_import_harness_loads_no_framework_and_no_matplotlib():
    code = ("import sys, harness; heavy = sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:]));"
            " print(','.join(heavy)); assert harness.RunResult and harness.Score and harness.audit and harness.run_campaign")
    done = subprocess.run([sys.executable, "-c", code, *sorted(FRAMEWORKS | PLOTTING | CLUSTER | {"sklearn"})], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_public_names_of_harness_are_imported_explicitly():
    import harness
    from harness.records import RunResult, Score

    tree = ast.parse((ROOT / "harness" / "__init__.py").read_text(encoding="utf-8"))
    assert not any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)  # no lazy loading
    assert harness.RunResult is RunResult and harness.Score is Score
    assert set(harness.__all__) <= set(vars(harness))
