"""What the repository ships and cites is true: every config in ``configs/`` loads as `raygex search` reads it
(and holds its start trials), and every config or cluster file that a command's help text or a README cites
exists. (``tests/test_paper_configs.py`` checks the paper configs' contents.)"""

from __future__ import annotations

import re

import click
import pytest

from raygex.config import load_config
from tests.conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
# a file cited as configs/x.yaml or cluster/x.yaml; an output (`-o configs/mine.yaml`) is not a citation
CITED = re.compile(r"(?<![\w/.-])(?<!-o )(?<!--output )((?:configs|cluster)/[\w.-]+\.ya?ml)")
DOCS = ["README.md", "configs/README.md", "cluster/README.md",
        *sorted(f"docs/{p.name}" for p in (REPO / "docs").glob("*.md"))]


def test_configs_are_shipped():
    assert len(CONFIGS) >= 5 and REPO / "configs" / "demo.yaml" in CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads_and_holds_its_start_trials(path):
    from raygex.search.space import choice_points, parse_space

    config = load_config(path)
    assert config.name and config.tasks
    # the first check `raygex search` makes (raygex.pipeline.run.check_inputs), before it reads any file
    choice_points(parse_space(config.search.space, config.graph_choices()), config.search.num_samples,
                  config.search.start_trials)


def help_texts() -> dict[str, str]:
    """Every command's and group's help, its options' help included, by command path ("raygex config new")."""
    from raygex.cli import cli

    texts: dict[str, str] = {}

    def walk(command: click.Command, path: str) -> None:
        parts = [command.help or "", command.epilog or ""]
        parts += [param.help or "" for param in command.params if isinstance(param, click.Option)]
        texts[path] = "\n".join(parts)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(cli, "raygex")
    return texts


def test_the_help_texts_cite_configs_that_exist():
    texts = help_texts()
    assert "configs/demo.yaml" in texts["raygex search"] and "raygex config new" in texts
    missing = {f"{where}: {cited}" for where, text in texts.items() for cited in CITED.findall(text)
               if not (REPO / cited).is_file()}
    assert not missing, f"help texts cite files the repository does not have: {sorted(missing)}"


def test_the_readmes_and_configs_cite_files_that_exist():
    sources = {doc: (REPO / doc).read_text() for doc in DOCS}
    sources.update({f"configs/{p.name}": p.read_text() for p in CONFIGS})
    missing = {f"{where}: {cited}" for where, text in sources.items() for cited in CITED.findall(text)
               if not (REPO / cited).is_file()}
    assert not missing, f"files cited that the repository does not have: {sorted(missing)}"


def test_the_citation_pattern_finds_citations_and_skips_outputs():
    text = "raygex search configs/demo.yaml; ray up cluster/local.yaml; raygex config new d -o configs/mine.yaml"
    assert CITED.findall(text) == ["configs/demo.yaml", "cluster/local.yaml"]
