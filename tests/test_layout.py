"""`raygex.json` in an experiment folder (the layout's format record): written by the sweep, checked by resume/status/export/report."""

from __future__ import annotations

import json

import pytest

from raygex.version import __version__
from raygex.errors import ConfigError
from raygex.experiment.layout import ExperimentLayout
from raygex.files.names import EXPERIMENT_FORMAT as FORMAT, META_FILE


def write_experiment_meta(folder):
    return ExperimentLayout(folder).write_meta()


def read_experiment_meta(folder):
    return ExperimentLayout(folder).read_meta()


check_experiment_meta = read_experiment_meta


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
    ('{"raygex_version": "0.0.1", "format": 1}', ["format must be 2, but got 1", "raygex 0.0.1"]),
    ('{"raygex_version": "9.0", "format": 3}', ["format must be 2, but got 3"]),
    ('{"raygex_version": "0.0.1"}', ["format must be 2, but got None"]),
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


def test_checkpoints_load_as_data_only(tmp_path):
    """A checkpoint is loaded with torch.load(weights_only=True): a file that would run code is refused."""
    import pickle

    import torch

    import numpy as np

    from raygex.files.names import CHECKPOINT_FILE
    from raygex.training.loop import TrialData, run_trial

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((20, 5)).astype(np.float32), np.arange(20) % 2
    data = TrialData(x[:12], y[:12], x[12:], y[12:], x[:0], y[:0], list("abcde"), ["0", "1"])
    saved = {}
    run_trial({"model": "mlp", "hidden": 4, "max_epochs": 1}, data,
              lambda row, state: saved.update(checkpoint=state.checkpoint()))
    good = tmp_path / "good" / "checkpoint_000000" / CHECKPOINT_FILE
    good.parent.mkdir(parents=True)
    torch.save(saved["checkpoint"], good)
    layout = ExperimentLayout(tmp_path)
    loaded = layout.latest_checkpoint(good.parent.parent)
    assert [row["epoch"] for row in loaded["history"]] == [1] and len(loaded["folds"]) == 1

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    bad = tmp_path / "bad" / "checkpoint_000000" / CHECKPOINT_FILE
    bad.parent.mkdir(parents=True)
    torch.save({"model": Payload()}, bad)
    with pytest.raises(pickle.UnpicklingError):
        layout.latest_checkpoint(bad.parent.parent)
    assert not marker.exists()


def test_an_unsupported_storage_scheme_is_one_line_never_a_local_folder(tmp_path, monkeypatch):
    """s3:// and gs:// go through pyarrow.fs (tests/storage/); any other scheme is refused, naming the supported."""
    from raygex.experiment.layout import ExperimentLayout, storage_root

    monkeypatch.chdir(tmp_path)
    for call in (storage_root, ExperimentLayout):
        with pytest.raises(ConfigError, match=r"^ftp://host/results: storage scheme ftp:// is not supported; use "
                                              r"a local or shared folder, file://, s3://, gs://$"):
            call("ftp://host/results")
    with pytest.raises(ConfigError, match="has no local folder"):
        storage_root("s3://bucket/results")
    assert list(tmp_path.iterdir()) == []


def test_storage_paths_are_not_resolved(tmp_path):
    """A symlinked storage keeps the name the user gave (shared mounts are often symlinks)."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert ExperimentLayout(tmp_path / "link" / "exp").root == tmp_path / "link" / "exp"
