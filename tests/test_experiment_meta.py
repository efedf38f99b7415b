"""`raygex.json` in an experiment folder: written by the sweep, checked by resume/status/export/report."""

from __future__ import annotations

import json

import pytest

from raygex.version import __version__
from raygex.errors import ConfigError
from raygex.experiment_meta import FORMAT, META_FILE, check_experiment_meta, read_experiment_meta, \
    write_experiment_meta


def test_written_meta_names_the_version_and_passes_the_check(tmp_path):
    path = write_experiment_meta(tmp_path / "exp")
    assert path == tmp_path / "exp" / META_FILE
    assert json.loads(path.read_text()) == {"raygex_version": __version__, "format": FORMAT}
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")], "temporary file left behind"
    check_experiment_meta(tmp_path / "exp")
    assert read_experiment_meta(tmp_path / "exp")["raygex_version"] == __version__


def test_rewriting_replaces_the_file(tmp_path):
    (tmp_path / META_FILE).write_text('{"format": 0}')
    write_experiment_meta(tmp_path)
    check_experiment_meta(tmp_path)


def test_a_folder_without_meta_is_from_an_older_raygex(tmp_path):
    (tmp_path / "config.yaml").write_text("name: old\n")
    with pytest.raises(ConfigError) as info:
        check_experiment_meta(tmp_path)
    message = str(info.value)
    assert message.startswith(f"{tmp_path}: ")
    assert "older raygex" in message and META_FILE in message and "rerun the sweep" in message
    assert "\n" not in message


@pytest.mark.parametrize("text,words", [
    ('{"raygex_version": "0.0.1", "format": 0}', ["format must be 1, but got 0", "raygex 0.0.1"]),
    ('{"raygex_version": "9.0", "format": 2}', ["format must be 1, but got 2"]),
    ('{"raygex_version": "0.0.1"}', ["format must be 1, but got None"]),
    ("not json", ["not valid JSON"]),
    ("[1, 2]", ["must be a JSON object, but got list"]),
])
def test_unreadable_or_other_format_meta_is_a_config_error_naming_the_folder(tmp_path, text, words):
    (tmp_path / META_FILE).write_text(text)
    with pytest.raises(ConfigError) as info:
        check_experiment_meta(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "rerun the sweep" in message, message
    for word in words:
        assert word in message, message
