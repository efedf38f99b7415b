"""Configs: the demo config validates, overrides apply, and bad keys are named in one line."""

from __future__ import annotations

import pytest

from raygex.config import load_config
from raygex.errors import ConfigError

DEMO = "configs/demo.yaml"


@pytest.fixture(autouse=True)
def _from_repo_root(monkeypatch):
    from tests.conftest import REPO

    monkeypatch.chdir(REPO)


def test_demo_config_validates_with_graph_named_true():
    config = load_config(DEMO)
    assert config.graph_choices() == ["true", "decoy", "true:random", "decoy:random", "empty"]
    assert config.task("sgi_G0001").inputs.mode == "all"
    # YAML reads an unquoted graph name `true` as a boolean; inputs.graph turns it back into the name
    import yaml

    from raygex.config.tasks import GeneInputs

    assert GeneInputs.model_validate(yaml.safe_load("{mode: bfs, size: 200, graph: true}")).graph == "true"


def test_overrides_set_nested_values_and_parse_yaml_scalars():
    config = load_config(DEMO, ["data.expression=/elsewhere/x.parquet", "search.num_samples=5",
                                "split.seeds=[1, 2, 3]", "tasks.0.label=response"])
    assert config.data.expression == "/elsewhere/x.parquet"
    assert config.search.num_samples == 5
    assert config.split.seeds == [1, 2, 3]
    assert config.tasks[0].label == "response"


@pytest.mark.parametrize("override,message", [
    ("search.num_sampels=3", "search.num_sampels: unknown key"),
    ("search.num_samples=0", "search.num_samples: Input should be greater than or equal to 1"),
    ("controls=[shuffled]", "controls.0"),
    ("tasks=[]", "tasks: List should have at least 1 item"),
    ("search.scheduler.max_epochs=0", "search.scheduler.max_epochs: Input should be greater than or equal to 1"),
    ("resources.memory_mb=-5", "resources.memory_mb"),
    ("resources.memory_mb=lots", "resources.memory_mb"),
])
def test_bad_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(DEMO, [override])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_cli_reports_unknown_key_with_exit_2(run_cli):
    code, _, err = run_cli("train", DEMO, "--set", "foo=1")
    assert code == 2
    assert err.strip() == "raygex: error: configs/demo.yaml: foo: unknown key"
