"""Reading canonical datasets with Ray Data, the way sweeps do.

Ray Data hands ``fixed_size_list`` columns to NumPy as arrays of arrays; asking for Arrow batches and converting
with :func:`raygex.data.canonical.batch_to_arrays` gives one contiguous ``[rows, genes]`` float32 block per batch instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from raygex.data import canonical
from raygex.errors import ConfigError


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


def check_nodes_read(path: str | Path, *, timeout_s: float = 120.0) -> None:
    """Every alive node that can run Ray Data's read tasks (CPUs or GPUs offered) reads the dataset's schema from
    the store in a task of its own, before any trial starts: a node that cannot reach the endpoint, lacks the
    credentials or sees no bucket is one line naming the URI, the node and what failed (a ConfigError), not a
    read task's traceback in the middle of a sweep. Nodes started later by the autoscaler are not seen here."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and (n["Resources"].get("CPU", 0) > 0
                                                           or n["Resources"].get("GPU", 0) > 0)]
    probe = ray.remote(num_cpus=0, max_retries=0)(_read_schema_here)
    refs = {probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
        str(path)): n for n in nodes}
    ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout_s)
    for ref in ready:
        failure = ray.get(ref)
        if failure:
            node = refs[ref]
            raise ConfigError(f"data.expression cannot be read from the node at {node['NodeManagerAddress']} "
                              f"(id {node['NodeID'][:8]}): {failure}", path=str(path))
    if late:
        node = refs[late[0]]
        raise ConfigError(f"data.expression: the node at {node['NodeManagerAddress']} (id {node['NodeID'][:8]}) "
                          f"did not read the dataset's schema within {timeout_s:g} s (is the store reachable "
                          f"from it?)", path=str(path))


def _read_schema_here(path: str) -> str | None:
    """In a task: the first line of what failed reading the dataset's schema on this node, or None."""
    try:
        canonical.read_schema(path)
    except Exception as err:  # noqa: BLE001 -- every failure is reported to the driver as its one line
        text = (str(err).strip().splitlines() or [type(err).__name__])[0]
        where = getattr(err, "path", None)
        return text[len(where) + 2:] if where and text.startswith(f"{where}: ") else text
    return None
