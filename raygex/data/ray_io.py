"""Reading canonical datasets with Ray Data, the way sweeps do.

Ray Data hands ``fixed_size_list`` columns to NumPy as arrays of arrays; asking for Arrow batches and converting
with :func:`raygex.data.canonical.batch_to_arrays` gives one contiguous ``[rows, genes]`` float32 block per batch instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from raygex.data import canonical


def read_expression(path: str | Path, **read_kwargs):
    """A ``ray.data.Dataset`` over a canonical dataset (file or directory of parts), schema checked first."""
    canonical.read_schema(path)  # a clear RaygexError before Ray starts reading
    return canonical.read_with_ray(path, **read_kwargs)


def collect(path: str | Path, **read_kwargs) -> canonical.ExpressionDataset:
    """Read a whole canonical dataset through Ray Data into this process's memory.

    Sweeps never call it (the driver holds ids and labels only: :mod:`raygex.data.study_rows`;
    ``tests/data/test_streaming.py`` fails if a run's data stages do)."""
    genes = canonical.read_genes(path)
    ids, blocks, frames = [], [], []
    for batch in read_expression(path, **read_kwargs).iter_batches(batch_format="pyarrow", batch_size=None):
        i, x, obs = canonical.batch_to_arrays(batch, len(genes))
        ids.append(i), blocks.append(x), frames.append(obs)
    return canonical.ExpressionDataset(np.concatenate(ids), np.concatenate(blocks), genes,
                                       pd.concat(frames, ignore_index=True), canonical.read_provenance(path))
