"""`raygex bench lr`: the logistic-regression family beside scikit-learn's LogisticRegressionCV on PAM50."""

from __future__ import annotations

import json


def test_bench_lr_scores_the_family_beside_scikit_learn(run_cli, shared_data, tmp_path):
    code, out, err = run_cli("bench", "lr", "--shared", str(shared_data), "--size", "50", "--seeds", "1",
                             "--trials", "2", "--cs", "3", "--workdir", str(tmp_path), "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    (row,) = result["rows"]
    assert row["train"] == 50 and 1e-4 <= row["family"]["C"] <= 1e4 and 1e-4 <= row["sklearn"]["C"] <= 1e4
    assert 0.5 < row["family"]["test_auc"] <= 1 and 0.5 < row["sklearn"]["test_auc"] <= 1
    assert abs(row["delta"] - (row["family"]["test_auc"] - row["sklearn"]["test_auc"])) < 1e-12
    (summary,) = result["summary"]
    assert summary["within_target"] == (summary["delta_mean"] >= -0.005) and "LogisticRegressionCV" in out


def test_bench_lr_needs_its_matrix(run_cli, tmp_path):
    code, _, err = run_cli("bench", "lr", "--shared", str(tmp_path))
    assert code == 2 and "brca_pam50.tsv.gz is missing" in err
