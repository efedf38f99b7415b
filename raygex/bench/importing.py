"""`raygex bench import`: throughput and peak memory of `raygex data import` on a generated matrix.

The matrix is generated once per (layout, size, seed) in a work directory, then imported in a fresh child
process so its peak resident memory is the import's own. Throughput is float32 output bytes per second of
import wall time (the issue's target: >= 100 MB/s, peak memory <= 3x the output size).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

LAYOUTS = ("xena", "table", "h5ad")

# Peak memory is the child's own ``VmHWM`` (reset at exec); ``ru_maxrss`` would carry the parent's peak over.
_CHILD = r"""
import json, resource, sys, time
def peak_kib():
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from raygex.data.importer import import_expression
base = peak_kib()
t = time.perf_counter()
report = import_expression(sys.argv[1], sys.argv[2])
seconds = time.perf_counter() - t
peak = peak_kib()
print(json.dumps({"seconds": seconds, "peak_rss_kib": peak, "baseline_rss_kib": base,
                  "samples": report.samples, "genes": report.genes_out}))
"""


def _matrix(n_samples: int, n_genes: int, seed: int) -> np.ndarray:
    """log2(RSEM+1)-like values with three decimals, as Xena writes them."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_samples, n_genes), dtype=np.float32)
    for lo in range(0, n_samples, 1000):
        block = rng.gamma(2.0, 2.0, size=(min(1000, n_samples - lo), n_genes)).astype(np.float32)
        out[lo:lo + len(block)] = np.round(block, 3)
    return out


def generate_input(workdir: Path, layout: str, n_samples: int, n_genes: int, seed: int = 0) -> Path:
    """Write (once) a matrix of the given layout; returns its path."""
    workdir.mkdir(parents=True, exist_ok=True)
    suffix = {"xena": "tsv", "table": "tsv", "h5ad": "h5ad"}[layout]
    path = workdir / f"{layout}_{n_samples}x{n_genes}_s{seed}.{suffix}"
    if path.exists():
        return path
    matrix = _matrix(n_samples, n_genes, seed)
    genes = [f"GENE{i:05d}" for i in range(n_genes)]
    samples = [f"TCGA-{i:06d}-01" for i in range(n_samples)]
    tmp = path.with_name(path.name + ".tmp")
    if layout == "h5ad":
        import anndata
        import pandas as pd

        anndata.AnnData(X=matrix, obs=pd.DataFrame(index=samples), var=pd.DataFrame(index=genes)).write_h5ad(tmp)
    else:
        options = pcsv.WriteOptions(delimiter="\t", quoting_style="none", batch_size=256, include_header=False)
        table_schema = _table_schema(layout, samples, genes)
        tmp.write_text("\t".join(table_schema.names) + "\n")
        with open(tmp, "ab") as handle, pcsv.CSVWriter(handle, table_schema, write_options=options) as writer:
            if layout == "xena":
                for lo in range(0, n_genes, 1000):
                    cols = [pa.array(genes[lo:lo + 1000])] + [pa.array(matrix[s, lo:lo + 1000]) for s in range(n_samples)]
                    writer.write_table(pa.table(cols, schema=table_schema))
            else:
                for lo in range(0, n_samples, 500):
                    part = matrix[lo:lo + 500]
                    cols = [pa.array(samples[lo:lo + 500])] + [pa.array(part[:, j]) for j in range(n_genes)]
                    writer.write_table(pa.table(cols, schema=table_schema))
    tmp.rename(path)
    return path


def _table_schema(layout: str, samples: list[str], genes: list[str]) -> pa.Schema:
    if layout == "xena":
        return pa.schema([pa.field("sample", pa.string())] + [pa.field(s, pa.float32()) for s in samples])
    return pa.schema([pa.field("sample_id", pa.string())] + [pa.field(g, pa.float32()) for g in genes])


def run_import_benchmark(workdir: Path, layouts=LAYOUTS, n_samples: int = 10_000, n_genes: int = 20_000,
                         seed: int = 0) -> list[dict]:
    """Generate each layout's input, import it in a child process, and measure time and peak memory."""
    results = []
    for layout in layouts:
        started = time.perf_counter()
        source = generate_input(workdir, layout, n_samples, n_genes, seed)
        generated = time.perf_counter() - started
        out = workdir / f"{source.stem}.parquet"
        proc = subprocess.run([sys.executable, "-c", _CHILD, str(source), str(out)], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"import of {source} failed:\n{proc.stderr[-2000:]}")
        child = json.loads(proc.stdout.strip().splitlines()[-1])
        output_bytes = n_samples * n_genes * 4
        peak = child["peak_rss_kib"] * 1024
        results.append({
            "layout": layout, "input": str(source), "input_mb": source.stat().st_size / 1e6,
            "generate_s": round(generated, 1), "import_s": round(child["seconds"], 2),
            "output_mb": output_bytes / 1e6, "mb_per_s": round(output_bytes / 1e6 / child["seconds"], 1),
            "peak_rss_mb": round(peak / 1e6, 1), "peak_over_output": round(peak / output_bytes, 2),
            "baseline_rss_mb": round(child["baseline_rss_kib"] * 1024 / 1e6, 1),
        })
        shutil.rmtree(out) if out.is_dir() else out.unlink(missing_ok=True)
    return results
