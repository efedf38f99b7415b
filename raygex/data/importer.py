"""`raygex data import`: any supported expression file → the canonical Parquet dataset.

The reader yields blocks of samples; each block is harmonised to approved gene symbols (symbols, Entrez and
Ensembl ids mapped through raygex's shipped HGNC table or a ``--map`` table; duplicates merged by mean), checked
for missing or non-finite values (an error unless a ``fill`` policy is chosen), and streamed into the output, which
appears only when the whole import succeeded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from raygex.version import __version__
from raygex.data import canonical
from raygex.data.readers import open_source
from raygex.errors import ConfigError, InputFormatError
from raygex.files.fileio import sha256_file
from raygex.genes import ID_TYPES, GeneTable, Harmonised, harmonise

FILL_POLICIES = {
    "error": "missing or non-finite values are an error",
    "zero": "missing or non-finite values are set to 0",
    "gene-mean": "missing or non-finite values are set to the gene's mean over the finite values of all samples",
}


@dataclass
class ImportReport:
    """What an import did, for the CLI to print and for the dataset's provenance."""

    input: str
    output: str
    format: str
    samples: int = 0
    genes_in: int = 0
    genes_out: int = 0
    mapped: int = 0
    merged: int = 0
    dropped: int = 0
    filled: int = 0
    fill: str = "error"
    gene_ids: str = ""
    label_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0
    output_bytes: int = 0
    details: dict = field(default_factory=dict)

    def lines(self) -> list[str]:
        return [
            f"imported {self.input} ({self.format}) -> {self.output}",
            f"  samples: {self.samples}   genes: {self.genes_in} in, {self.genes_out} out "
            f"(mapped {self.mapped} to approved symbols, merged {self.merged} duplicates by mean, "
            f"dropped {self.dropped})",
            *([f"  {self.gene_ids}"] if self.gene_ids else []),
            f"  labels: {', '.join(self.label_columns) if self.label_columns else '(none)'}",
            f"  missing/non-finite values filled: {self.filled} (policy: {self.fill})",
            f"  {self.output_bytes / 2**20:.1f} MiB written in {self.seconds:.2f} s",
        ]


def _check_finite(block: np.ndarray, ids, genes, fill: str, path) -> int:
    bad = ~np.isfinite(block)
    count = int(bad.sum())
    if count and fill == "error":
        rows, cols = np.nonzero(bad)
        raise InputFormatError(
            f"missing or non-finite expression value ({block[rows[0], cols[0]]}) at sample {str(ids[rows[0]])!r}, "
            f"gene {genes[cols[0]]!r} ({count} in this block); choose --fill zero or --fill gene-mean to "
            "fill them", path=path)
    if count and fill == "zero":
        block[bad] = 0.0
    return count


def _gene_id_line(plan: Harmonised, table: GeneTable | None, id_type: str, drop_unknown: bool) -> str:
    """One line: how many gene ids mapped to approved symbols, what was unmapped, how the ids were read."""
    total = plan.inputs if plan.inputs is not None else plan.known + plan.unmapped + plan.empty
    kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(plan.kinds.items(), key=lambda kv: -kv[1]))
    read_as = f"read as {kinds} ids ({'auto-detected' if id_type == 'auto' else '--id-type'})"
    if table is None:
        return f"gene ids: {total} kept as written (--no-map); {read_as}"
    notes = ([f"{plan.ambiguous} ambiguous"] if plan.ambiguous else []) + \
        ([f"{plan.empty} empty dropped"] if plan.empty else [])
    notes_text = f" ({', '.join(notes)})" if notes else ""
    return (f"gene ids: {plan.known} of {total} mapped to approved symbols, {plan.unmapped} unmapped "
            f"{'dropped' if drop_unknown else 'kept'}{notes_text}; {read_as}; table: {table.label()}")


def _gene_table(symbol_map, map_genes: bool, drop_unknown: bool, id_type: str) -> GeneTable | None:
    if id_type not in ("auto", *ID_TYPES):
        raise ConfigError(f"id type must be one of auto, {', '.join(ID_TYPES)}, but got {id_type!r}")
    if map_genes:
        return GeneTable.read(symbol_map) if symbol_map else GeneTable.default()
    if symbol_map:
        raise ConfigError("--no-map and --map exclude each other: choose one")
    if drop_unknown:
        raise ConfigError("--drop-unknown needs a mapping table to know genes by; drop --no-map")
    return None


def import_expression(input_path: str | Path, output_path: str | Path, *, layout: str = "auto",
                      labels: list[str] | None = None, clinical: str | Path | None = None,
                      layer: str | None = None, raw: bool = False, symbol_map: str | Path | None = None,
                      drop_unknown: bool = False, fill: str = "error", id_type: str = "auto",
                      map_genes: bool = True, var_column: str | None = None) -> ImportReport:
    """Convert ``input_path`` into a canonical dataset at ``output_path`` and report what was done.

    Gene ids (``id_type``: symbol, entrez, ensembl, or auto: each id by its look) are mapped to approved symbols
    through ``symbol_map`` (any HGNC-style table) or, by default, raygex's shipped table; ``map_genes=False``
    keeps them as written. ``var_column`` takes an .h5ad file's gene ids from that ``.var`` column.
    """
    if fill not in FILL_POLICIES:
        raise InputFormatError(f"fill must be one of {', '.join(FILL_POLICIES)}, but got {fill!r}")
    started = time.perf_counter()
    table = _gene_table(symbol_map, map_genes, drop_unknown, id_type)
    source = open_source(input_path, layout=layout, labels=labels, clinical=clinical, layer=layer, raw=raw,
                         var_column=var_column)
    plan = harmonise(source.genes, table, drop_unknown=drop_unknown, id_type=id_type)
    if not plan.genes:
        known_by = f"; none of the {len(source.genes)} gene ids is in {table.label()}" if table else ""
        raise InputFormatError(f"no genes left after symbol mapping{known_by} (drop --drop-unknown to keep them)",
                               path=input_path)
    report = ImportReport(str(input_path), str(output_path), source.format, genes_in=len(source.genes),
                          genes_out=len(plan.genes), mapped=plan.mapped, merged=plan.merged, dropped=plan.dropped,
                          fill=fill, gene_ids=_gene_id_line(plan, table, id_type, drop_unknown),
                          label_columns=list(source.obs_schema.names), details=source.details)
    provenance = {"source": str(Path(input_path).resolve()), "source_sha256": sha256_file(input_path),
                  "format": source.format, "symbol_map": table.source if table else None,
                  "symbol_map_sha256": sha256_file(table.source) if table else None,
                  "gene_table": table.label() if table else None, "id_type": id_type, "var_column": var_column,
                  "fill": fill, "fill_rule": FILL_POLICIES[fill], "merge_rule": "mean of duplicate genes",
                  "raygex_version": __version__, **plan.report(), **source.details}

    seen_ids: set[str] = set()

    def checked_blocks():
        for ids, block, obs in source.blocks():
            ids = np.asarray(ids, dtype=object)
            if any(i is None or i == "" for i in ids):
                raise InputFormatError("empty sample id", path=input_path)
            ids = ids.astype(str)
            for sample in ids:
                if sample in seen_ids:
                    raise InputFormatError(f"duplicate sample id {str(sample)!r}", path=input_path)
                seen_ids.add(sample)
            block = plan.apply(np.asarray(block, dtype=np.float32))
            if not block.flags.writeable or not block.flags.c_contiguous:
                block = np.array(block, dtype=np.float32, order="C")
            yield ids, block, obs

    if fill == "gene-mean":
        # The mean needs every sample first: this policy holds the dataset in memory.
        parts = list(checked_blocks())
        if not parts:
            raise InputFormatError("no samples", path=input_path)
        matrix = np.concatenate([p[1] for p in parts])
        bad = ~np.isfinite(matrix)
        report.filled = int(bad.sum())
        if report.filled:
            finite = np.where(bad, 0.0, matrix)
            counts = (~bad).sum(axis=0)
            means = np.divide(finite.sum(axis=0), counts, out=np.zeros(matrix.shape[1]), where=counts > 0)
            matrix[bad] = np.broadcast_to(means.astype(np.float32), matrix.shape)[bad]
        offsets = np.cumsum([0] + [len(p[0]) for p in parts])
        parts = [(ids, matrix[lo:hi], obs) for (ids, _, obs), lo, hi in zip(parts, offsets[:-1], offsets[1:])]
    else:
        parts = checked_blocks()

    with canonical.DatasetWriter(output_path, plan.genes, source.obs_schema, provenance) as writer:
        for ids, block, obs in parts:
            if fill != "gene-mean":
                report.filled += _check_finite(block, ids, plan.genes, fill, input_path)
            writer.write(ids, block, obs)
        if writer.n_rows == 0:
            raise InputFormatError("no samples (the file has a header but no data rows)", path=input_path)
        report.samples = writer.n_rows
    report.seconds = time.perf_counter() - started
    out = Path(output_path)
    report.output_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) if out.is_dir() \
        else out.stat().st_size
    return report
