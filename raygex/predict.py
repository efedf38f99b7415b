"""`raygex predict`: stream any expression file through an exported model into a CSV of classes and probabilities.

Inputs are read in blocks by the same readers as `raygex data import` (so a 10 GB matrix never sits in memory
at once); with ``address`` a Parquet dataset is read with Ray Data instead. The CSV appears only when complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raygex.fileio import atomic_path
from raygex.inference import load_model


def _blocks(input_path: Path, layout: str, batch_size: int, address: str | None):
    """(sample ids, float32 block, gene names) per batch."""
    if address is not None or input_path.is_dir():  # a directory of Parquet parts: Ray Data reads them in parallel
        from raygex.data import canonical
        from raygex.data.ray_io import read_expression
        from raygex.ray_session import connect

        genes = canonical.read_genes(input_path)  # a bad dataset is an error before Ray starts
        connect(None if address in (None, "auto") else address)
        for batch in read_expression(input_path).iter_batches(batch_size=batch_size, batch_format="pyarrow"):
            ids, block, _ = canonical.batch_to_arrays(batch, len(genes))
            yield ids, block, genes
        return
    from raygex.data.readers import open_source

    source = open_source(input_path, layout=layout)
    for ids, block, _ in source.blocks():
        for start in range(0, len(ids), batch_size):
            yield ids[start:start + batch_size], block[start:start + batch_size], source.genes


def predict_file(model_path, input_path, output, *, allow_missing: str | None = None, layout: str = "auto",
                 batch_size: int = 4096, address: str | None = None, device: str | None = "cpu") -> dict:
    """Predict every sample of ``input_path`` on ``device`` (cpu, cuda, auto); returns {"samples", "classes"}.
    ``model_path``, ``input_path`` and ``output`` may be object-store URIs (``s3://``, ``gs://``): the model and
    the input (a file, or a folder of Parquet parts) are fetched first, the CSV uploaded once complete."""
    from raygex.storage import fetch_file, is_uri, local_input, put_file

    if is_uri(output):
        import tempfile

        from raygex.storage import open_remote

        open_remote(str(output))  # an unsupported scheme or missing credentials: before any work
        with tempfile.TemporaryDirectory(prefix="raygex-predict-") as folder:
            local = Path(folder) / str(output).rstrip("/").rsplit("/", 1)[-1].split("?")[0]
            report = predict_file(model_path, input_path, local, allow_missing=allow_missing, layout=layout,
                                  batch_size=batch_size, address=address, device=device)
            put_file(local, str(output))
        return report
    model = load_model(fetch_file(str(model_path)) if is_uri(model_path) else model_path, device)
    if is_uri(input_path):
        input_path = local_input(str(input_path), "INPUT")
    columns = ["sample_id", "predicted", *[f"p_{c}" for c in model.classes]]
    plan, plan_genes, samples = None, None, 0
    with atomic_path(output) as tmp:
        with open(tmp, "w", newline="") as handle:
            handle.write(",".join(columns) + "\n")
            for ids, block, genes in _blocks(Path(input_path), layout, batch_size, address):
                if plan is None or genes is not plan_genes:
                    plan = model.column_plan(list(genes), allow_missing, f"input {input_path}",
                                             fill_hint="pass --allow-missing mean or zero to fill them")
                    plan_genes = genes
                proba = model.predict_proba(plan.apply(block, ids))
                frame = pd.DataFrame(proba, columns=columns[2:])
                frame.insert(0, "predicted", np.asarray(model.classes, dtype=object)[proba.argmax(axis=1)])
                frame.insert(0, "sample_id", np.asarray(ids).astype(str))
                frame.to_csv(handle, header=False, index=False, float_format="%.6g")
                samples += len(frame)
    return {"samples": samples, "classes": model.classes}
