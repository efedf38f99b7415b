"""The reference pages (docs/reference/): every config field documented, the committed pages what the code renders
now, and the pages holding what a reader looks for."""

from __future__ import annotations

import difflib
import typing
from pathlib import Path

import click
from pydantic import BaseModel, Field

from raygex.cli import cli
from raygex.config import ExperimentConfig
from raygex.reference import PAGES, cli_reference, config_reference, config_sections, main

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reference"
REGENERATE = "python -m raygex.reference docs/reference"


def models_in(annotation) -> list[type[BaseModel]]:
    """Every model an annotation names, through list, dict, Union, Optional and Annotated."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in typing.get_args(annotation) for model in models_in(arg)]


def reachable(root: type[BaseModel]) -> list[type[BaseModel]]:
    """``root`` and every model reachable from its fields (walked here, independently of raygex.reference)."""
    found, todo = [], [root]
    while todo:
        model = todo.pop(0)
        if model not in found:
            found.append(model)
            todo += [m for field in model.model_fields.values() for m in models_in(field.annotation)]
    return found


def undocumented(root: type[BaseModel]) -> list[str]:
    return [f"{model.__name__}.{name}" for model in reachable(root) for name, field in model.model_fields.items()
            if not (field.description or "").strip()]


def test_every_config_field_has_a_description():
    missing = undocumented(ExperimentConfig)
    assert not missing, (f"config fields without a description (Field(..., description=...)): {missing}; then run "
                         f"`{REGENERATE}`")


def test_the_walk_reaches_every_model():
    """The description check sees nested models, lists and the tasks' union (it is not vacuous)."""
    names = {model.__name__ for model in reachable(ExperimentConfig)}
    assert {"ExperimentConfig", "DataConfig", "SplitConfig", "TrainConfig", "SearchConfig", "SchedulerConfig",
            "ResourcesConfig", "WandbConfig", "ClassifyTask", "SingleGeneTask", "GeneInputs"} <= names
    assert {section.model for section in config_sections()} == set(reachable(ExperimentConfig)), \
        "config.md leaves out a model the config reaches"


def test_the_check_names_a_field_without_description():
    class Inner(BaseModel):
        documented: int = Field(1, description="One.")
        bare: int = 2

    class Outer(BaseModel):
        inner: list[Inner | None] = Field(default_factory=list, description="Inners.")

    assert undocumented(Outer) == ["Inner.bare"]


def test_the_committed_pages_are_what_the_code_renders():
    for name, render in PAGES.items():
        path = DOCS / name
        assert path.is_file(), f"{path} is missing: run `{REGENERATE}`"
        committed, now = path.read_text(), render()
        diff = "".join(list(difflib.unified_diff(committed.splitlines(True), now.splitlines(True),
                                                 f"docs/reference/{name}", "generated"))[:30])
        assert committed == now, f"docs/reference/{name} is out of date: run `{REGENERATE}`\n{diff}"


def test_config_page_rows():
    page = config_reference()
    assert "| `search.scheduler.grace_period` | int ≥ 1 | `5` |" in page
    assert '| `search.start_trials` | "choices" \\| "families" | `choices` |' in page
    assert "| `split.seeds` | list[int] (at least 1) | `[0, 1, 2, 3, 4]` |" in page
    assert "| `data.expression` | str | required |" in page
    assert '| `tasks[].kind` | "single_gene" | required |' in page  # the union's tag: required in YAML
    assert "| `tasks[].inputs.size` | int ≥ 1 \\| null | `null` |" in page
    assert '| `controls` | list["random" \\| "empty" \\| "coexpression"] | `[]` |' in page
    assert "[SchedulerConfig](#search-scheduler)" in page and '<a id="search-scheduler"></a>' in page
    # folds' description says the numbers the code uses
    assert "`auto`: 5 folds below 500 labelled samples" in page
    for model in reachable(ExperimentConfig):
        for name in model.model_fields:
            assert f".{name}` |" in page or f"| `{name}` |" in page, f"{model.__name__}.{name} is not in config.md"


def command_paths(command: click.Command, path: str = "raygex") -> list[str]:
    paths = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            if not sub.hidden:
                paths += command_paths(sub, f"{path} {name}")
    return paths


def test_cli_page_covers_every_command():
    page = cli_reference()
    paths = command_paths(cli)
    assert {"raygex search", "raygex bench memory", "raygex data import", "raygex graph fetch"} <= set(paths)
    for path in paths:
        assert f" `{path}`\n" in page, f"`{path}` has no section in cli.md"


def test_cli_page_content():
    page = cli_reference()
    assert "```text\nraygex search [OPTIONS] CONFIG\n```" in page
    # a \b block keeps its lines: the examples are a code block
    assert "Examples:\n\n```bash\nraygex search configs/demo.yaml\n" in page
    # a choice option shows its choices and its default
    assert "| `--fill` | `error` \\| `zero` \\| `gene-mean` | `error` |" in page
    assert "| `--set` | `KEY=VALUE` (repeatable) |" in page
    assert "Environment: `RAYGEX_DEBUG`." in page
    assert "&lt;task>.pt" in page  # no raw <task> for Markdown to take for an HTML tag


def test_main_writes_both_pages(tmp_path, capsys):
    main([str(tmp_path / "reference")])
    assert (tmp_path / "reference" / "config.md").read_text() == config_reference()
    assert (tmp_path / "reference" / "cli.md").read_text() == cli_reference()
    assert "cli.md" in capsys.readouterr().out
