"""The package's shape: the room map (each room imports only the rooms before it), no import circle (function-level
imports included), no oversized module, one owner of the on-disk names, Ray's and Optuna's internals behind one
seam, and function-level imports only where the import is heavy or optional."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "raygex"
MAX_LINES = 400

# The room map, in dependency order: a room may import itself and the rooms before it, never one after it.
# (docs/design.md: one line a room.) ``raygex`` itself (load_model) and ``__main__`` stand above all.
ROOMS = ("core", "files", "runtime", "models", "graphs", "config", "data", "training", "search", "experiment",
         "analysis", "export", "report", "pipeline", "api", "bench", "cli")
CORE = ("raygex.errors", "raygex.version", "raygex.genes", "raygex.metrics")
TOP = ("raygex", "raygex.__main__", "raygex.reference")  # reference: the docs pages, from config/ and cli/
SEAM = "raygex.search.tune_compat"

# Imported inside functions on purpose: each takes a noticeable time to import (the CLI's start, `raygex fetch`
# and a trial's first epoch would pay for it) or is optional. Any other function-level import must move to the
# top of its module. A raygex module counts as heavy when its module-level imports reach one of these.
HEAVY = {"torch": "seconds to import", "ray": "seconds to import", "optuna": "~1 s to import",
         "wandb": "optional (W&B off by default) and slow", "matplotlib": "slow; figures only",
         "sklearn": "slow; benchmarks only", "scipy": "slow; benchmarks only", "anndata": "optional (.h5ad)",
         "torch_geometric": "slow; benchmarks only", "pandas": "~0.5 s; `raygex fetch` runs without it",
         "pyarrow": "~0.3 s; `raygex fetch` runs without it", "boto3": "optional (S3)", "h5py": "optional (.h5ad)",
         "psutil": "optional outside benchmarks", "pyarrow.fs": "object stores only",
         "wandb_workspaces": "optional (W&B reports)"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(), str(path)) for name, path in MODULES.items()}


def room_of(name: str) -> str:
    if name in TOP:
        return "top"
    if name in CORE:
        return "core"
    parts = name.split(".")
    return parts[1] if len(parts) > 2 or MODULES[name].name == "__init__.py" else "?"


def import_targets(name: str, node) -> list[str]:
    """The raygex modules (or, for others, the top-level packages) one import statement of ``name`` names."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
    # `from a.b import c` imports module a.b.c when it is one, else names from a.b
    return [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]


def imports_of(name: str) -> set[str]:
    """Every raygex module ``name`` imports, at any depth of its code (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(TREES[name]):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(t for t in import_targets(name, node) if t in MODULES and t != name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def find_cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in sorted(GRAPH[node]):
            if state.get(target) == 1:
                return stack[stack.index(target):] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(GRAPH):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_import_graph_is_built_from_the_code():
    """The checker sees function-level imports (it would have caught the old search/run ↔ export circle)."""
    assert "raygex.pipeline.stages" in GRAPH["raygex.pipeline.run"]
    assert "raygex.search.tuner" in GRAPH["raygex.pipeline.stages"]  # imported inside a function
    assert "raygex.models.registry" in GRAPH["raygex.models.gcn"]


def test_no_import_circle():
    cycle = find_cycle()
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_oversized(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (split it before {MAX_LINES})"


def test_every_module_lives_in_a_room():
    """A new module goes into a room (or core, by adding it to CORE and the design notes' map)."""
    homeless = [name for name in MODULES if room_of(name) not in (*ROOMS, "top")]
    assert not homeless, f"modules outside the room map: {homeless}"
    assert set(ROOMS) - {"core"} == {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}


def test_rooms_import_only_the_rooms_before_them():
    wrong = []
    for name, targets in GRAPH.items():
        source = room_of(name)
        if source == "top":
            continue
        for target in targets:
            if room_of(target) == "top" or ROOMS.index(room_of(target)) > ROOMS.index(source):
                wrong.append(f"{name} ({source}) imports {target} ({room_of(target)})")
    assert not wrong, "imports against the room map:\n" + "\n".join(sorted(wrong))


def test_the_room_map_check_catches_an_upward_import():
    """The direction check reads real imports: the search drives training, so training -> search would fail."""
    assert ROOMS.index(room_of("raygex.search.trainable")) > ROOMS.index(room_of("raygex.training.loop"))
    assert "raygex.training.loop" in GRAPH["raygex.search.trainable"]


def test_the_readme_shows_the_room_map():
    readme = (PACKAGE.parent / "docs" / "design.md").read_text()
    for room in ROOMS[1:]:
        assert re.search(rf"^\| `{room}/` \|", readme, flags=re.M), f"room {room} is not in the design notes' map"
    order = [readme.index(f"| `{room}/` |") for room in ROOMS[1:]]
    assert order == sorted(order), "the design notes list the rooms in another order than tests/test_architecture.py"


def string_literals(tree) -> list[str]:
    """The module's string constants, docstrings left out (prose may name a file)."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    return [node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def test_only_files_names_names_the_files_raygex_writes():
    """File names of the experiment folder appear as literals in ``raygex.files.names`` only."""
    owned = ("leaderboard.parquet", "seeds.parquet", "stages.jsonl", "trial_state.pt", "summary.json",
             "config.yaml", "raygex.json", ".raygex.lock", "verdicts.parquet", "swap.parquet")
    for name, tree in TREES.items():
        if name == "raygex.files.names":
            continue
        named = [literal for literal in owned if literal in string_literals(tree)]
        assert not named, f"{name} names {named}: take the name from raygex.files.names"


# -- the seam to Ray Tune's and Optuna's internals ----------------------------------------------------------------

# Files of a study's Ray Tune / Optuna saved state whose names or formats raygex reads.
SAVED_STATE = ("experiment_state", "search_gen_state", "searcher-state", "tuner.pkl", "params.pkl", "_ot_study",
               "_ot_trials", "_completed_trials", "live_trials", "__trainable_name")


NAMEDTUPLE = {"_replace", "_asdict", "_fields", "_make"}  # public API of namedtuples, despite the underscore


def raygex_private_names() -> set[str]:
    """Every ``_name`` raygex defines itself (functions, classes, attributes it assigns, parameters)."""
    own: set[str] = set()
    for tree in TREES.values():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                own.add(node.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                own.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                own.add(node.id)
            elif isinstance(node, ast.arg):
                own.add(node.arg)
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "setdefault" and node.args \
                    and isinstance(node.args[0], ast.Constant):
                own.add(str(node.args[0].value))
    return {name for name in own if name.startswith("_")}


def foreign_private_uses(name: str, own: set[str]) -> list[str]:
    """Ray's or Optuna's private names one module uses: private modules, attributes and saved-state files."""
    found = []
    for node in ast.walk(TREES[name]):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in import_targets(name, node):
                parts = target.split(".")
                if parts[0] in ("ray", "optuna") and any(p.startswith("_") for p in parts[1:]):
                    found.append(f"import {target} (line {node.lineno})")
        elif isinstance(node, ast.Attribute) or (isinstance(node, ast.Call) and getattr(node.func, "id", "") in (
                "getattr", "hasattr", "setattr") and len(node.args) > 1 and isinstance(node.args[1], ast.Constant)):
            attr = node.attr if isinstance(node, ast.Attribute) else str(node.args[1].value)
            if attr.startswith("_") and not attr.startswith("__") and attr not in own | NAMEDTUPLE:
                found.append(f".{attr} (line {node.lineno})")
    found += [f"{literal!r}" for literal in string_literals(TREES[name])
              if any(marker in literal for marker in SAVED_STATE)]
    return found


def test_ray_and_optuna_internals_are_used_behind_the_seam_only():
    own = raygex_private_names()
    outside = {name: uses for name in MODULES if not name.startswith(SEAM)
               for uses in [foreign_private_uses(name, own)] if uses}
    assert not outside, f"private Ray/Optuna names outside {SEAM}: {outside}"


def test_the_seam_check_finds_the_internals_it_guards():
    """The check is not empty: the seam itself uses exactly such names (Optuna's study storage, Tune's files)."""
    own = raygex_private_names()
    inside = {name: foreign_private_uses(name, own) for name in MODULES if name.startswith(SEAM)}
    flat = " ".join(" ".join(uses) for uses in inside.values())
    for expected in ("._storage", "._study_id", "._local_tuner", "._ot_study", "experiment_state", "ray._private"):
        assert expected in flat, f"{expected} not found in the seam: the check would miss it elsewhere"


# -- function-level imports --------------------------------------------------------------------------------------

def _top_level_imports(name: str) -> set[str]:
    found: set[str] = set()
    for node in TREES[name].body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.update(import_targets(name, node))
    return found


def is_heavy(target: str, seen: frozenset = frozenset()) -> bool:
    """Whether importing ``target`` imports a HEAVY library (for a raygex module: through its module-level imports
    or its parent packages')."""
    root = target.split(".")[0]
    if root != "raygex":
        return target in HEAVY or root in HEAVY
    if target not in MODULES or target in seen:
        return False
    parts = target.split(".")
    parents = [".".join(parts[:i]) for i in range(2, len(parts))]
    return any(is_heavy(t, seen | {target}) for t in [*_top_level_imports(target), *parents] if t != target)


def function_level_imports():
    for name, tree in TREES.items():
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                yield name, node


def test_function_level_imports_only_where_the_import_is_heavy_or_optional():
    light = [f"{name}:{node.lineno} imports {import_targets(name, node)}" for name, node in function_level_imports()
             if not any(is_heavy(t) for t in import_targets(name, node))]
    assert not light, "light imports inside functions (move them to the top of the module):\n" + "\n".join(light)
