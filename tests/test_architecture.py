"""The package's shape: no import circle (function-level imports included), no oversized module, one owner of
the experiment folder, and Tune-only code in ``raygex.search``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "raygex"
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every raygex module ``name`` imports, at any depth of its code (inside functions too)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from a.b import c` imports module a.b.c when it is one, else names from a.b
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
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


def test_search_is_ray_tune_only_and_export_report_do_not_depend_on_it():
    """``raygex.search`` knows nothing of export, reports or evaluation; those read the layout, never the search."""
    for name, targets in GRAPH.items():
        if name.startswith("raygex.search"):
            bad = {t for t in targets if t.startswith(("raygex.export", "raygex.report", "raygex.evaluation",
                                                       "raygex.pipeline"))}
            assert not bad, f"{name} imports {bad}"
        if name.startswith(("raygex.export", "raygex.report", "raygex.evaluation", "raygex.status")):
            bad = {t for t in targets if t.startswith(("raygex.search", "raygex.pipeline"))}
            assert not bad, f"{name} imports {bad}"


def test_only_the_layout_names_the_experiment_files():
    """File names of the experiment folder appear as literals in the layout module only."""
    owned = ("leaderboard.parquet", "seeds.parquet", "stages.jsonl", "trial_state.pt",
             "summary.json", '"config.yaml"')
    for name, path in MODULES.items():
        if name == "raygex.layout":
            continue
        text = path.read_text()
        for literal in owned:
            quoted = literal if literal.startswith('"') else f'"{literal}"'
            assert quoted not in text, f"{name} names {literal}: ask raygex.layout"
