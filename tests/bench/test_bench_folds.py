"""`raygex bench folds` through the CLI on one small case: every variant ran as it says (one split, k folds one
after another, k folds batched), with its time, memory and the ratios the README quotes."""

from __future__ import annotations

import json


def test_bench_folds_measures_each_variant(run_cli):
    code, out, err = run_cli("bench", "folds", "--case", "demo-mlp", "--epochs", "2", "--folds", "3", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    (row,) = result["results"]
    one, seq, bat = row["one_split"], row["folds_sequential"], row["folds_batched"]
    assert (one["folds"], seq["folds"], bat["folds"]) == (1, 3, 3)
    assert (one["batched"], seq["batched"], bat["batched"]) == (False, False, True)
    assert one["epochs"] == seq["epochs"] == bat["epochs"] == 2
    assert all(v["seconds"] > 0 and v["peak_growth_mb"] >= 0 for v in (one, seq, bat))
    # a fold trains on 2/3 of the labelled 80 %, the one split on 60 %: k folds are 3 x 0.533/0.6 the arithmetic
    assert abs(row["arithmetic_ratio"] - 3 * bat["train_rows"] / one["train_rows"]) < 1e-9
    assert 2.5 < row["arithmetic_ratio"] < 2.8
    assert abs(row["batched_over_one_split"] - bat["seconds"] / one["seconds"]) < 1e-9
    assert "bat/one" in out and "demo-mlp" in out


def test_bench_folds_file_case_needs_its_dataset(run_cli):
    code, _, err = run_cli("bench", "folds", "--case", "file")
    assert code == 2 and "--case file needs --expression and --label" in err
