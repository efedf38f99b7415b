"""`raygex data info`: what a canonical dataset holds, read block by block (never all at once)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raygex.data import canonical

MAX_CLASSES_SHOWN = 12


def summarise(path: str | Path) -> dict:
    """Samples, genes, value range and, per label column, class counts (text) or range (numbers)."""
    sch = canonical.read_schema(path)
    genes = canonical.read_genes(path)
    n = 0
    lo, hi, total = np.inf, -np.inf, 0.0
    frames = []
    for _, block, obs in canonical.iter_batches(path):
        n += len(block)
        if block.size:
            lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
            total += float(block.sum(dtype=np.float64))
        frames.append(obs)
    obs = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    labels = {}
    for column in canonical.label_columns(sch):
        values = obs[column]
        missing = int(values.isna().sum())
        if pd.api.types.is_float_dtype(values) or (pd.api.types.is_numeric_dtype(values)
                                                  and values.nunique() > MAX_CLASSES_SHOWN):
            labels[column] = {"kind": "numeric", "min": float(values.min()), "max": float(values.max()),
                              "missing": missing}
        else:
            counts = values.dropna().astype(str).value_counts()
            counts = counts.sort_index().sort_values(ascending=False, kind="stable")
            labels[column] = {"kind": "classes", "n_classes": int(len(counts)), "missing": missing,
                              "counts": {k: int(v) for k, v in counts.items()}}
    return {"path": str(path), "samples": n, "genes": len(genes), "first_genes": genes[:5],
            "min": lo if n else None, "max": hi if n else None,
            "mean": total / (n * len(genes)) if n and genes else None,
            "labels": labels, "provenance": canonical.read_provenance(path)}


def format_summary(info: dict) -> list[str]:
    lines = [f"{info['path']}: {info['samples']} samples x {info['genes']} genes "
             f"(first: {', '.join(info['first_genes'])})"]
    if info["samples"]:
        lines.append(f"  values: min {info['min']:.4g}, max {info['max']:.4g}, mean {info['mean']:.4g}")
    for column, label in info["labels"].items():
        if label["kind"] == "numeric":
            lines.append(f"  label {column}: numeric, {label['min']:.4g} .. {label['max']:.4g}, "
                         f"{label['missing']} missing")
        else:
            shown = list(label["counts"].items())[:MAX_CLASSES_SHOWN]
            more = f", +{label['n_classes'] - len(shown)} more" if label["n_classes"] > len(shown) else ""
            counts = ", ".join(f"{k}: {v}" for k, v in shown)
            lines.append(f"  label {column}: {label['n_classes']} classes ({counts}{more}), "
                         f"{label['missing']} missing")
    return lines
