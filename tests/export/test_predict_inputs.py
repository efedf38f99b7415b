"""`raygex predict` and `LoadedModel` on the inputs users have: tables with label and clinical columns (ignored and
counted), a label column to score against (`--labels`, ``model.score``), and .h5ad files whose model was trained
on a layer or on ``.raw`` (the same matrix is read again)."""

from __future__ import annotations

import re

import anndata
import numpy as np
import pandas as pd
import pytest

import raygex
from raygex.data.canonical import read_dataset
from raygex.errors import InputFormatError
from raygex.export.winner import write_model
from raygex.metrics import classification_metrics
from tests.export.conftest import trained
from tests.search.conftest import write_config


@pytest.fixture(scope="module")
def exported(export_demo, tmp_path_factory):
    """(model path, raw TrialData) for a small MLP on the demo's subtype task."""
    config_path, _ = export_demo
    config, data, result, hparams = trained(config_path, "subtype", {"model": "mlp", "hidden": 16})
    path = tmp_path_factory.mktemp("model") / "subtype.pt"
    write_model(config, "subtype", result.model, data, hparams, path)
    return path, data


def _held_out(data) -> pd.DataFrame:
    """The test samples as a user's table: label and clinical columns first, then the genes (and one more)."""
    genes = pd.DataFrame(data.x_test, columns=data.genes, index=pd.Index(
        [f"s{i}" for i in range(len(data.x_test))], name="sample_id"))
    labels = [str(data.classes[i]) for i in data.y_test]
    labels[0], labels[1], labels[2] = "", "Normal", "Normal"  # one missing label, two of a class the model lacks
    front = pd.DataFrame({"subtype": labels, "er_status": ["positive", "negative"] * (len(labels) // 2)
                          + ["positive"] * (len(labels) % 2), "NOT_A_MODEL_GENE": "n/a"}, index=genes.index)
    return pd.concat([front, genes], axis=1)


def _one_line_error(code: int, err: str) -> None:
    assert code == 2 and err.startswith("raygex: error: ") and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_label_and_clinical_columns_are_ignored_and_counted(exported, tmp_path, run_cli):
    path, data = exported
    table = _held_out(data)
    source = tmp_path / "held_out.tsv.gz"
    table.to_csv(source, sep="\t")
    out = tmp_path / "pred.csv"
    code, stdout, err = run_cli("predict", path, source, "-o", out)
    assert code == 0, err
    assert "ignored 3 input column(s) that are not among the model's 150 genes: subtype, er_status, " \
           "NOT_A_MODEL_GENE" in stdout
    predictions = pd.read_csv(out)
    model = raygex.load_model(path)
    assert list(predictions["sample_id"]) == list(table.index)
    np.testing.assert_allclose(predictions.filter(like="p_").to_numpy(), model.predict_proba(data.x_test), atol=1e-5)


def test_the_python_api_ignores_and_counts_them_too(exported, raygex_messages):
    path, data = exported
    model = raygex.load_model(path)
    table = _held_out(data)
    np.testing.assert_array_equal(model.predict_proba(table), model.predict_proba(data.x_test))
    assert any(m.startswith("ignored 3 input column(s)") for m in raygex_messages), raygex_messages
    as_text = table.astype(object)  # numbers held as Python objects still are numbers
    np.testing.assert_array_equal(model.predict_proba(as_text), model.predict_proba(data.x_test))


def test_a_non_numeric_value_in_a_model_gene_is_a_one_line_error(exported, tmp_path, run_cli):
    path, data = exported
    table = _held_out(data).astype(object)
    gene = data.genes[7]
    table.iloc[4, table.columns.get_loc(gene)] = "high"
    source = tmp_path / "bad.tsv"
    table.to_csv(source, sep="\t")
    code, _, err = run_cli("predict", path, source, "-o", tmp_path / "out.csv", "--labels", "subtype")
    _one_line_error(code, err)
    assert str(source) in err and repr(gene) in err and "'high'" in err, err
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(InputFormatError, match=rf"non-numeric expression value 'high' in gene column '{gene}' "
                                               r"\(sample 's4'\)"):
        raygex.load_model(path).predict_proba(table)


def _expected_scores(model, data) -> dict:
    proba = model.predict_proba(data.x_test)[3:]  # rows 0-2: a missing label and two unknown classes
    return classification_metrics(np.asarray(data.y_test)[3:], proba, len(model.classes))


def test_predict_cli_scores_against_a_label_column(exported, tmp_path, run_cli):
    path, data = exported
    source = tmp_path / "held_out.csv"
    _held_out(data).to_csv(source)
    out = tmp_path / "pred.csv"
    code, stdout, err = run_cli("predict", path, source, "-o", out, "--labels", "subtype")
    assert code == 0, err
    assert len(pd.read_csv(out)) == len(data.x_test)  # every sample is predicted, scored or not
    lines = stdout.strip().splitlines()
    assert lines[1].startswith("ignored 2 input column(s)")  # the label column being scored is not ignored
    expected = _expected_scores(raygex.load_model(path), data)
    assert lines[2] == (f"scores against 'subtype': auc {expected['auc']:.4f}, accuracy {expected['accuracy']:.4f} "
                        f"on {len(data.x_test) - 3} samples")
    assert lines[3] == ("left out: 1 sample(s) without a label, 2 with a class the model does not know "
                        "('Normal' ×2)")


def test_model_score_returns_the_metrics_and_what_was_left_out(exported):
    path, data = exported
    model = raygex.load_model(path)
    table = _held_out(data)
    scores = model.score(table, labels="subtype")
    expected = _expected_scores(model, data)
    assert scores["auc"] == pytest.approx(expected["auc"]) and scores["accuracy"] == pytest.approx(
        expected["accuracy"])
    assert (scores["n_scored"], scores["n_missing_label"], scores["n_unknown_class"]) == (len(data.x_test) - 3, 1, 2)
    assert scores["unknown_classes"] == {"Normal": 2} and scores["label"] == "subtype"
    same = model.score(data.x_test, labels=table["subtype"].to_numpy())  # the labels themselves, NumPy input
    assert same["auc"] == pytest.approx(scores["auc"]) and same["n_scored"] == scores["n_scored"]
    with pytest.raises(InputFormatError, match="label column 'subtyp' not found in the DataFrame's columns"):
        model.score(table, labels="subtyp")


def test_a_label_column_that_does_not_exist_is_a_one_line_error_before_any_output(exported, tmp_path, run_cli):
    path, data = exported
    source = tmp_path / "held_out.tsv"
    _held_out(data).to_csv(source, sep="\t")
    code, _, err = run_cli("predict", path, source, "-o", tmp_path / "out.csv", "--labels", "pam50")
    _one_line_error(code, err)
    assert str(source) in err and "'pam50'" in err
    assert not (tmp_path / "out.csv").exists()


def test_the_layout_option_is_honoured(exported, tmp_path, run_cli):
    path, data = exported
    source = tmp_path / "held_out.tsv"
    _held_out(data).to_csv(source, sep="\t")
    code, _, err = run_cli("predict", path, source, "-o", tmp_path / "out.csv", "--layout", "samples-by-genes")
    assert code == 0, err
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(data.x_test)


# --------------------------------------------------------------------------------------------- .h5ad matrices
@pytest.fixture(scope="module")
def cells(export_demo, tmp_path_factory):
    """(folder, .h5ad path, signal): the demo cohort as an AnnData whose layer 'counts' and .raw hold the
    expression, and whose .X holds noise of the same scale."""
    _, demo = export_demo
    dataset = read_dataset(demo / "expression.parquet")
    folder = tmp_path_factory.mktemp("h5ad")
    signal = dataset.expression
    noise = np.random.default_rng(3).permutation(signal.ravel()).reshape(signal.shape).astype(np.float32)
    adata = anndata.AnnData(X=noise, obs=pd.DataFrame({"subtype": dataset.obs["subtype"].astype(str).to_numpy()},
                                                      index=dataset.sample_ids),
                            var=pd.DataFrame(index=dataset.genes), layers={"counts": signal.copy()})
    adata.raw = anndata.AnnData(X=signal.copy(), obs=adata.obs, var=adata.var)
    adata.write_h5ad(folder / "cells.h5ad")
    return folder, folder / "cells.h5ad", signal


def _model_from_h5ad(cells, export_demo, run_cli, *flags: str):
    folder, source, _ = cells
    name = "raw" if "--raw" in flags else "layer"
    dataset = folder / f"{name}.parquet"
    code, _, err = run_cli("data", "import", source, *flags, "--labels", "subtype", "-o", dataset)
    assert code == 0, err
    _, demo = export_demo
    config_path = write_config(folder / f"{name}.yaml", demo, data={"expression": str(dataset)},
                               tasks=[{"name": "subtype", "kind": "classify", "label": "subtype"}])
    config, data, result, hparams = trained(config_path, "subtype", {"model": "mlp", "hidden": 16})
    path = folder / f"{name}.pt"
    write_model(config, "subtype", result.model, data, hparams, path)
    return path


def test_a_model_trained_on_a_layer_reads_that_layer(cells, export_demo, run_cli, tmp_path):
    folder, source, signal = cells
    path = _model_from_h5ad(cells, export_demo, run_cli, "--layer", "counts")
    model = raygex.load_model(path)
    assert model.metadata["h5ad"] == {"layer": "counts", "raw": False}
    expected, from_x = model.predict_proba(signal), model.predict_proba(anndata.read_h5ad(source).X)
    assert not np.allclose(expected, from_x, atol=1e-3)  # .X and the layer really give different answers
    np.testing.assert_allclose(model.predict_proba(anndata.read_h5ad(source)), expected, atol=1e-6)
    code, stdout, err = run_cli("predict", path, source, "-o", tmp_path / "cells.csv", "--labels", "subtype")
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "cells.csv").filter(like="p_").to_numpy(), expected,
                               atol=1e-5)
    assert "scores against 'subtype'" in stdout
    # an AnnData without that layer: one line naming the input file, the layer and why it is needed
    bare = anndata.AnnData(X=signal, var=pd.DataFrame(index=model.genes))
    bare.write_h5ad(tmp_path / "bare.h5ad")
    code, _, err = run_cli("predict", path, tmp_path / "bare.h5ad", "-o", tmp_path / "bare.csv")
    _one_line_error(code, err)
    assert str(tmp_path / "bare.h5ad") in err and re.search(r"layer 'counts'.*trained on layer 'counts'", err), err
    assert not (tmp_path / "bare.csv").exists()
    with pytest.raises(InputFormatError, match="trained on layer 'counts' of an .h5ad, but the AnnData has no such"):
        model.predict(bare)


def test_a_model_trained_on_raw_reads_raw(cells, export_demo, run_cli, tmp_path):
    folder, source, signal = cells
    path = _model_from_h5ad(cells, export_demo, run_cli, "--raw")
    model = raygex.load_model(path)
    assert model.metadata["h5ad"] == {"layer": None, "raw": True}
    expected = model.predict_proba(signal)
    np.testing.assert_allclose(model.predict_proba(anndata.read_h5ad(source)), expected, atol=1e-6)
    code, _, err = run_cli("predict", path, source, "-o", tmp_path / "cells.csv")
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "cells.csv").filter(like="p_").to_numpy(), expected,
                               atol=1e-5)
    bare = anndata.AnnData(X=signal, var=pd.DataFrame(index=model.genes))
    bare.write_h5ad(tmp_path / "bare.h5ad")
    code, _, err = run_cli("predict", path, tmp_path / "bare.h5ad", "-o", tmp_path / "bare.csv")
    _one_line_error(code, err)
    assert "trained on .raw.X" in err and "drop --raw" not in err, err


def test_a_model_trained_on_a_table_records_no_h5ad_matrix(exported):
    path, _ = exported
    assert raygex.load_model(path).metadata["h5ad"] is None


@pytest.fixture(scope="module")
def symbol_model(export_demo, tmp_path_factory):
    """(model path, TrialData) for an MLP whose genes are approved HGNC symbols, and each symbol's Ensembl and
    Entrez ids from raygex's gene table."""
    import dataclasses

    from raygex.genes import GeneTable
    from raygex.training.loop import run_trial

    config_path, _ = export_demo
    config, data, _, hparams = trained(config_path, "subtype", {"model": "mlp", "hidden": 16})
    table = GeneTable.default()
    by_symbol: dict[str, dict[str, str]] = {}
    for kind in ("ensembl", "entrez"):
        for ident, symbol in table.maps[kind].items():
            by_symbol.setdefault(symbol, {})[kind] = ident
    symbols = sorted(s for s, ids in by_symbol.items() if len(ids) == 2)[:len(data.genes)]
    data = dataclasses.replace(data, genes=symbols, graph=None)
    path = tmp_path_factory.mktemp("symbols") / "subtype.pt"
    write_model(config, "subtype", run_trial(hparams, data).model, data, hparams, path)
    return path, data, {s: by_symbol[s] for s in symbols}


def test_inputs_named_by_ensembl_or_entrez_ids_are_mapped_to_the_models_symbols(symbol_model, tmp_path, run_cli,
                                                                                 raygex_messages):
    """A held-out cohort whose columns are Ensembl ids (with version suffixes) or Entrez ids, as raw downloads
    have them: predict maps them with the gene table `raygex data import` uses, for the file and the Python API."""
    path, data, ids = symbol_model
    model = raygex.load_model(path)
    expected = model.predict_proba(data.x_test)
    for kind, suffix in (("ensembl", ".7"), ("ensembl", ""), ("entrez", "")):
        names = [ids[g][kind] + suffix for g in data.genes]
        frame = pd.DataFrame(data.x_test[:, ::-1], columns=names[::-1],  # in another order, as files come
                             index=pd.Index([f"s{i}" for i in range(len(data.x_test))], name="sample_id"))
        np.testing.assert_allclose(model.predict_proba(frame), expected, atol=1e-6)
        source = tmp_path / f"held_out_{kind}{suffix}.tsv"
        frame.assign(stage="ii").to_csv(source, sep="\t")  # and a clinical column, ignored
        out = tmp_path / f"pred_{kind}{suffix}.csv"
        code, stdout, err = run_cli("predict", path, source, "-o", out)
        assert code == 0, err
        np.testing.assert_allclose(pd.read_csv(out).filter(like="p_").to_numpy(), expected, atol=1e-5)
        assert "ignored 1 input column(s)" in stdout and "stage" in stdout
    assert any(f"{len(data.genes)} gene id(s) mapped to the model's symbols with raygex's HGNC table" in m
               for m in raygex_messages), raygex_messages


def test_previous_symbols_map_and_positional_columns_do_not(symbol_model, raygex_messages):
    """A gene's previous symbol names it too; columns 0..n-1 of a DataFrame made from an array are positions, not
    Entrez ids: nothing is mapped from them (every gene missing: filled, with a warning, when asked)."""
    from raygex.genes import GeneTable

    path, data, _ = symbol_model
    model = raygex.load_model(path)
    table = GeneTable.default()
    previous = {old: new for old, new in table.maps["symbol"].items() if new in set(data.genes)
                and old not in table.ambiguous.get("symbol", ()) and old not in table.approved}
    assert previous, "some of the model's genes have a previous symbol"
    for old, new in previous.items():
        assert model.mapped_gene(old) == new
    positional = pd.DataFrame(data.x_test)  # columns 0, 1, 2, ...
    with pytest.warns(UserWarning, match=f"{len(data.genes)} of {len(data.genes)} genes"):
        model.predict_proba(positional, allow_missing="mean")
    assert not any("mapped to the model's symbols" in m for m in raygex_messages), raygex_messages
