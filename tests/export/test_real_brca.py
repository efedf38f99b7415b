"""Real data: TCGA breast tumours with their `pam50` and `er_status` columns first, as a new user would predict
them: `raygex predict` ignores the label columns (and counts them), and `--labels pam50` scores the predictions,
leaving out the tumours without a PAM50 call and those of a class the model was not trained on (Normal)."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import raygex
from raygex.export.winner import write_model
from tests.export.conftest import trained

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def test_brca_held_out_tumours_are_predicted_and_scored(shared_data, tmp_path, run_cli):
    source = shared_data / "expression" / "brca_pam50.tsv.gz"
    dataset = tmp_path / "brca.parquet"
    code, _, err = run_cli("data", "import", source, "--labels", "pam50,er_status", "-o", dataset)
    assert code == 0, err
    config = {"name": "brca", "data": {"expression": str(dataset)}, "graphs": {},
              # Normal (10 tumours) is dropped from the task: a class the model does not know
              "tasks": [{"name": "pam50", "kind": "classify", "label": "pam50", "min_samples_per_class": 11}],
              "split": {"train": 0.6, "valid": 0.2, "test": 0.2, "seeds": [0], "folds": None},
              "train": {"max_epochs": 3, "patience": 3, "batch_size": 32}, "storage": str(tmp_path / "results")}
    (tmp_path / "brca.yaml").write_text(yaml.safe_dump(config))
    config, data, result, hparams = trained(tmp_path / "brca.yaml", "pam50", {"model": "lr"})
    model_path = tmp_path / "pam50.pt"
    write_model(config, "pam50", result.model, data, hparams, model_path)
    model = raygex.load_model(model_path)
    assert model.classes == ["Basal", "Her2", "LumA", "LumB"]

    code, stdout, err = run_cli("predict", model_path, source, "-o", tmp_path / "all.csv")
    assert code == 0, err
    assert "ignored 2 input column(s) that are not among the model's 2598 genes: pam50, er_status" in stdout
    assert len(pd.read_csv(tmp_path / "all.csv")) == 520

    code, stdout, err = run_cli("predict", model_path, source, "-o", tmp_path / "scored.csv", "--labels", "pam50")
    assert code == 0, err
    table = pd.read_csv(source, sep="\t")
    scores = model.score(table, labels="pam50")
    assert (scores["n_scored"], scores["n_missing_label"], scores["n_unknown_class"]) == (497, 13, 10)
    lines = stdout.strip().splitlines()
    assert lines[1].startswith("ignored 1 input column(s)")
    assert lines[2] == (f"scores against 'pam50': auc {scores['auc']:.4f}, accuracy {scores['accuracy']:.4f} on "
                        "497 samples")
    assert lines[3] == "left out: 13 sample(s) without a label, 10 with a class the model does not know ('Normal' ×10)"
    assert scores["auc"] > 0.9  # PAM50 subtypes are expression-defined: even 3 epochs of LR separate them
    predictions = pd.read_csv(tmp_path / "scored.csv")
    assert list(predictions["sample_id"]) == list(table["sample_id"])
