"""`raygex.load_model` and `raygex predict`: gene order, missing genes, bad model files and bad input."""

from __future__ import annotations

import json
import zipfile

import anndata
import numpy as np
import pandas as pd
import pytest
import torch

import raygex
from raygex.errors import InputFormatError
from raygex.export.winner import write_model
from tests.export.conftest import trained


@pytest.fixture(scope="module")
def exported(export_demo, tmp_path_factory):
    """(model path, raw TrialData) for a small GCN on the demo's subtype task."""
    config_path, _ = export_demo
    config, data, result, hparams = trained(config_path, "subtype", {"model": "gcn", "graph": "true", "depth": 1,
                                                                     "channels": 8, "embedding": 2})
    path = tmp_path_factory.mktemp("model") / "subtype.pt"
    write_model(config, "subtype", result.model, data, hparams, path)
    return path, data


def _frame(data) -> pd.DataFrame:
    return pd.DataFrame(data.x_test, columns=data.genes, index=[f"s{i}" for i in range(len(data.x_test))])


def test_shuffled_gene_columns_give_identical_predictions(exported):
    path, data = exported
    model = raygex.load_model(path)
    frame = _frame(data)
    expected = model.predict_proba(data.x_test)
    shuffled = frame[list(np.random.default_rng(0).permutation(frame.columns))]
    shuffled["NOT_A_MODEL_GENE"] = 1.0  # extra genes are ignored
    np.testing.assert_array_equal(model.predict_proba(shuffled), expected)
    adata = anndata.AnnData(X=shuffled.to_numpy(dtype=np.float32), var=pd.DataFrame(index=shuffled.columns))
    np.testing.assert_array_equal(model.predict_proba(adata), expected)
    assert list(model.predict(shuffled)) == [model.classes[i] for i in expected.argmax(axis=1)]


def test_a_model_runs_on_the_device_asked_for(exported):
    path, data = exported
    on_cpu = raygex.load_model(path)
    assert raygex.load_model(path, device="auto").device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():  # the GPU's result is the CPU's, to float32 rounding
        on_gpu = raygex.load_model(path, device="cuda")
        np.testing.assert_allclose(on_gpu.predict_proba(data.x_test), on_cpu.predict_proba(data.x_test), atol=1e-5)
    else:
        with pytest.raises(InputFormatError, match="CUDA is not available on this machine"):
            raygex.load_model(path, device="cuda")


def test_missing_genes_error_unless_a_fill_policy_is_given(exported):
    path, data = exported
    model = raygex.load_model(path)
    frame = _frame(data)
    dropped = list(frame.columns[:: 10])  # 10 % of the genes
    partial = frame.drop(columns=dropped)
    with pytest.raises(InputFormatError, match=rf"{len(dropped)} of the model's {len(data.genes)} genes are missing"):
        model.predict_proba(partial)
    with pytest.warns(UserWarning, match=r"were missing and filled with their training mean"):
        filled = model.predict_proba(partial, allow_missing="mean")
    manual = frame.copy()
    manual[dropped] = model.module.mean.numpy()[[data.genes.index(g) for g in dropped]]
    np.testing.assert_allclose(filled, model.predict_proba(manual), atol=1e-6)


def test_predict_cli_writes_classes_and_probabilities(exported, tmp_path, run_cli):
    path, data = exported
    frame = _frame(data)
    frame.index.name = "sample_id"
    source = tmp_path / "new_samples.tsv"
    frame[frame.columns[::-1]].to_csv(source, sep="\t")
    out = tmp_path / "pred.csv"
    code, stdout, err = run_cli("predict", path, source, "-o", out)
    assert code == 0, err
    table = pd.read_csv(out)
    model = raygex.load_model(path)
    assert list(table.columns) == ["sample_id", "predicted", *[f"p_{c}" for c in model.classes]]
    assert list(table["sample_id"]) == list(frame.index)
    np.testing.assert_allclose(table[[f"p_{c}" for c in model.classes]].to_numpy(),
                               model.predict_proba(data.x_test), atol=1e-5)


def test_predict_cli_streams_a_canonical_dataset_through_ray_data(exported, export_demo, tmp_path, run_cli):
    path, _ = exported
    _, folder = export_demo
    out = tmp_path / "all.csv"
    code, _, err = run_cli("predict", path, folder / "expression.parquet", "-o", out, "--address", "auto",
                           "--batch-size", "64")
    assert code == 0, err
    assert len(pd.read_csv(out)) == 160


def _scripted_without_metadata(path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(path))


def _with_metadata(source, path, drop: str):
    module = torch.jit.load(str(source), _extra_files=(files := {"raygex.json": ""}))
    metadata = json.loads(files["raygex.json"])
    del metadata[drop]
    torch.jit.save(module, str(path), _extra_files={"raygex.json": json.dumps(metadata)})


@pytest.mark.parametrize("make, message", [
    (lambda src, p: p.write_bytes(b"not a model at all"), "not a TorchScript model file"),
    (lambda src, p: p.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]), "not a TorchScript model file"),
    (lambda src, p: _scripted_without_metadata(p), "not a raygex model"),
    (lambda src, p: _with_metadata(src, p, "classes"), r"missing field\(s\) \['classes'\]"),
])
def test_bad_model_files_are_one_line_errors(exported, tmp_path, run_cli, make, message):
    path, data = exported
    bad = tmp_path / "bad.pt"
    make(path, bad)
    source = tmp_path / "x.tsv"
    _frame(data).to_csv(source, sep="\t")
    code, _, err = run_cli("predict", bad, source, "-o", tmp_path / "out.csv")
    assert code == 2
    assert err.startswith("raygex: error: ") and str(bad) in err and len(err.strip().splitlines()) == 1
    assert pytest.importorskip("re").search(message, err), err
    assert not (tmp_path / "out.csv").exists()


def test_predict_cli_runs_on_the_device_asked_for(exported, tmp_path, run_cli):
    path, data = exported
    source = tmp_path / "x.tsv"
    _frame(data).to_csv(source, sep="\t")
    code, _, err = run_cli("predict", path, source, "-o", tmp_path / "auto.csv", "--device", "auto")
    assert code == 0, err
    np.testing.assert_allclose(pd.read_csv(tmp_path / "auto.csv").filter(like="p_").to_numpy(),
                               raygex.load_model(path).predict_proba(data.x_test), atol=1e-5)
    if not torch.cuda.is_available():
        code, _, err = run_cli("predict", path, source, "-o", tmp_path / "gpu.csv", "--device", "cuda")
        assert code == 2 and "CUDA is not available" in err and len(err.strip().splitlines()) == 1
        assert not (tmp_path / "gpu.csv").exists()


def test_non_numeric_input_is_a_one_line_error(exported, tmp_path, run_cli):
    path, data = exported
    frame = _frame(data).astype(object)
    frame.iloc[2, 5] = "high"
    source = tmp_path / "x.csv"
    frame.to_csv(source)
    code, _, err = run_cli("predict", path, source, "-o", tmp_path / "out.csv")
    assert code == 2 and err.startswith("raygex: error: ") and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "out.csv").exists()
    with pytest.raises(InputFormatError, match="non-numeric"):
        raygex.load_model(path).predict_proba(frame)


def test_metadata_is_json_with_provenance(exported):
    path, _ = exported
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("extra/raygex.json"))
        metadata = json.loads(archive.read(name))
    for key in ("genes", "classes", "task", "graph", "hyperparameters", "metrics", "dataset", "versions",
                "exported_at", "split"):
        assert key in metadata, key
    assert metadata["graph"]["name"] == "true" and len(metadata["graph"]["edges_sha256"]) == 64
    assert len(metadata["dataset"]["sha256"]) == 64
    assert metadata["versions"]["torch"] == torch.__version__
