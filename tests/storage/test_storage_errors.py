"""Bad storage URIs fail before anything starts: one line, exit 2, naming the URI, and nothing created (no
object in the bucket, no local folder named after the URI). No Ray."""

from __future__ import annotations

import pytest

from tests.search.conftest import write_config, write_demo
from tests.storage.conftest import free_port, list_keys


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return write_demo(tmp_path_factory.mktemp("demo"))


@pytest.fixture
def config(demo, tmp_path):
    return write_config(tmp_path / "tiny.yaml", demo, tasks=[{"name": "subtype", "kind": "classify",
                                                               "label": "subtype"}])


def refused(run_cli, args, *, names: str) -> str:
    code, out, err = run_cli(*args)
    lines = err.strip().splitlines()
    assert code == 2, (out, err)
    assert len(lines) == 1, err
    assert names in lines[0], lines[0]
    return lines[0]


def nothing_here(folder) -> None:
    made = [p.name for p in folder.iterdir() if p.name not in ("tiny.yaml", "demo")]
    assert not [name for name in made if ":" in name or name.startswith(("s3", "gs", "ftp"))], made


def test_an_unknown_scheme_is_one_line_not_a_local_folder(run_cli, config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = refused(run_cli, ["search", config, "--storage", "ftp://host/results"], names="ftp://host/results")
    assert "ftp:// is not supported" in line and "s3://" in line
    refused(run_cli, ["status", "hdfs://namenode/results/tiny"], names="hdfs:// is not supported")
    nothing_here(tmp_path)


def test_an_unreachable_endpoint_is_one_line(run_cli, config, tmp_path, monkeypatch, s3_env):
    monkeypatch.chdir(tmp_path)
    uri = f"s3://bucket/results?endpoint_override=http://127.0.0.1:{free_port()}"
    line = refused(run_cli, ["search", config, "--storage", uri], names="s3://bucket/results")
    assert "cannot be reached" in line
    nothing_here(tmp_path)


def test_a_bucket_that_does_not_exist_is_one_line_and_nothing_is_created(run_cli, config, tmp_path, monkeypatch,
                                                                         s3_server, bucket):
    monkeypatch.chdir(tmp_path)
    line = refused(run_cli, ["search", config, "--storage", "s3://no-such-bucket-here/results"],
                   names="s3://no-such-bucket-here/results/tiny")
    assert "bucket does not exist" in line
    nothing_here(tmp_path)


def test_missing_credentials_are_one_line_and_nothing_is_created(run_cli, config, tmp_path, monkeypatch, s3_server,
                                                                 bucket):
    monkeypatch.chdir(tmp_path)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    line = refused(run_cli, ["search", config, "--storage", f"s3://{bucket}/results"], names=f"s3://{bucket}/results")
    assert "no S3 credentials" in line
    assert list_keys(s3_server, bucket) == []
    nothing_here(tmp_path)


def test_a_missing_experiment_on_the_store_is_one_line(run_cli, tmp_path, monkeypatch, s3_server, bucket):
    monkeypatch.chdir(tmp_path)
    for command in ("resume", "status", "export", "report"):
        refused(run_cli, [command, f"s3://{bucket}/results/none"], names="not a raygex experiment")
    assert list_keys(s3_server, bucket) == []


def test_a_search_that_fails_its_checks_leaves_the_bucket_empty(run_cli, demo, tmp_path, monkeypatch, s3_server,
                                                               bucket):
    """A bad config is refused before the probe and before any experiment file is written to the store."""
    monkeypatch.chdir(tmp_path)
    config = write_config(tmp_path / "tiny.yaml", demo, tasks=[{"name": "subtype", "kind": "classify",
                                                                 "label": "no_such_column"}])
    code, _, err = run_cli("search", config, "--storage", f"s3://{bucket}/results")
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert list_keys(s3_server, bucket) == []


def test_predict_with_a_model_uri_that_does_not_exist_is_one_line(run_cli, demo, tmp_path, monkeypatch, bucket):
    monkeypatch.chdir(tmp_path)
    refused(run_cli, ["predict", f"s3://{bucket}/models/none.pt", demo / "expression.parquet", "-o", "out.csv"],
            names="no such object")
    assert not (tmp_path / "out.csv").exists()


def test_export_to_an_unknown_scheme_is_one_line_not_a_local_folder(run_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    refused(run_cli, ["export", tmp_path / "results" / "tiny", "-o", "ftp://host/models"], names="ftp:// is not supported")
    nothing_here(tmp_path)


def test_predict_from_an_input_uri_that_does_not_exist_is_one_line(run_cli, demo, tmp_path, monkeypatch, bucket):
    from raygex.export.winner import write_model
    from tests.export.conftest import trained

    monkeypatch.chdir(tmp_path)
    config, data, result, hparams = trained(write_config(tmp_path / "model.yaml", demo), "subtype",
                                            {"model": "lr", "max_epochs": 1})
    model = tmp_path / "subtype.pt"
    write_model(config, "subtype", result.model, data, hparams, model)
    refused(run_cli, ["predict", model, f"s3://{bucket}/data/none.parquet", "-o", "out.csv"], names="none.parquet")
    assert not (tmp_path / "out.csv").exists()


def test_an_input_uri_that_cannot_be_read_is_one_line_before_any_trial(run_cli, demo, tmp_path, monkeypatch,
                                                                        s3_server, bucket):
    """A dataset URI naming nothing, or on an endpoint nobody answers: one line naming the URI, exit 2, nothing
    made (the check runs in the driver before Ray starts)."""
    monkeypatch.chdir(tmp_path)
    missing = write_config(tmp_path / "missing.yaml", demo, tasks=[{"name": "subtype", "kind": "classify",
                                                                     "label": "subtype"}],
                           data={"expression": f"s3://{bucket}/no/such/expression.parquet"})
    line = refused(run_cli, ["search", missing], names=f"s3://{bucket}/no/such/expression.parquet")
    assert "data.expression" in line and "no such object" in line
    unreachable = f"s3://{bucket}/data/expression.parquet?endpoint_override=http://127.0.0.1:{free_port()}"
    cut_off = write_config(tmp_path / "unreachable.yaml", demo, tasks=[{"name": "subtype", "kind": "classify",
                                                                         "label": "subtype"}],
                           data={"expression": unreachable})
    line = refused(run_cli, ["search", cut_off], names=unreachable)
    assert "cannot be reached" in line, line
    nothing_here(tmp_path)
