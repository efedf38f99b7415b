"""`raygex data ...`: import expression files, describe datasets (demo and fetch are wired in from their modules)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import click

from raygex.data.importer import FILL_POLICIES, import_expression
from raygex.data.info import format_summary, summarise
from raygex.errors import ConfigError


def check_output(path: str | Path, option: str = "-o", *, kind: str = "file") -> None:
    """Fail before any work when an output cannot be written, or would replace a folder that is not ours.

    ``kind``: "file" (a model, CSV or graph: an existing folder there is refused), "dataset" (a canonical
    dataset, which may be a folder of part files: only such a folder may be replaced) or "folder".
    Writers replace their output atomically, so without this check ``-o results/`` would delete a folder.
    """
    path = Path(path)
    if path.is_dir() and kind == "file":
        raise ConfigError(f"{option} names an existing folder; give a file name", path=path)
    if path.is_dir() and kind == "dataset" and any(not (p.is_file() and p.name.startswith("part-")
                                                        and p.suffix == ".parquet") for p in path.iterdir()):
        raise ConfigError(f"{option} names a folder that is not a raygex dataset (it holds other files); "
                          "refusing to replace it", path=path)
    if path.exists() and not path.is_dir() and kind == "folder":
        raise ConfigError(f"{option} must be a folder, but got an existing file", path=path)
    existing = path.parent if kind != "folder" else path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option}: cannot write here, {str(existing)!r} is a file, not a folder", path=path)
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise ConfigError(f"{option}: cannot write in {str(existing)!r} ({err.strerror or err})", path=path) from None


def _split_columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


@click.group()
def data() -> None:
    """Import, describe, generate and fetch expression datasets."""


@data.command("import")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=True, path_type=str))
@click.option("-o", "--output", required=True, type=click.Path(path_type=str), help="Output .parquet path.")
@click.option("--layout", type=click.Choice(["auto", "xena", "table", "h5ad", "parquet"]), default="auto",
              show_default=True, help="Input layout; auto decides from the suffix and header.")
@click.option("--labels", help="Comma-separated label columns (table/.h5ad obs/Xena clinical columns).")
@click.option("--clinical", type=click.Path(path_type=str), help="Xena clinical matrix to join (first column sampleID).")
@click.option("--layer", help="AnnData layer to read instead of .X.")
@click.option("--raw", is_flag=True, help="Read AnnData .raw.X instead of .X.")
@click.option("--id-type", type=click.Choice(["auto", "symbol", "entrez", "ensembl"]), default="auto",
              show_default=True, help="What the gene ids are; auto reads each id by its look (ENSG... Ensembl, "
              "a whole number Entrez, anything else a symbol).")
@click.option("--map", "--symbol-map", "gene_map", type=click.Path(path_type=str),
              help="Mapping table (HGNC-style: Approved symbol and any of Previous symbols, NCBI Gene ID, Ensembl "
              "gene ID columns) instead of raygex's shipped HGNC table.")
@click.option("--no-map", is_flag=True, help="Keep gene ids as written (no mapping to approved symbols).")
@click.option("--var-column", help=".h5ad: take gene ids from this .var column (e.g. gene_symbols) instead of "
              "var_names.")
@click.option("--drop-unknown", is_flag=True, help="Drop genes the mapping table does not know (default: keep).")
@click.option("--fill", type=click.Choice(list(FILL_POLICIES)), default="error", show_default=True,
              help="Policy for missing/NaN/inf expression values.")
def import_cmd(input_path, output, layout, labels, clinical, layer, raw, id_type, gene_map, no_map, var_column,
               drop_unknown, fill):
    """Convert an expression file to raygex's canonical Parquet dataset.

    Gene ids (symbols, previous symbols, Entrez or Ensembl ids, versioned or not) are mapped to approved HGNC
    symbols through the HGNC table raygex ships (or --map FILE); the report says how many mapped.

    \b
    Examples:
      raygex data import HiSeqV2.gz --clinical LGG_clinicalMatrix -o lgg.parquet
      raygex data import tissues.tsv.gz --labels tissue -o tissues.parquet
      raygex data import counts_ensembl.tsv --labels tissue --drop-unknown -o counts.parquet
      raygex data import pbmc.h5ad --raw --labels bulk_labels --var-column gene_symbols -o pbmc.parquet
    """
    check_output(output, kind="dataset")
    report = import_expression(input_path, output, layout=layout, labels=_split_columns(labels), clinical=clinical,
                               layer=layer, raw=raw, symbol_map=gene_map, drop_unknown=drop_unknown, fill=fill,
                               id_type=id_type, map_genes=not no_map, var_column=var_column)
    click.echo("\n".join(report.lines()))


@data.command("info")
@click.argument("path", type=click.Path(path_type=str))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(path, as_json):
    """Describe a canonical dataset: samples, genes, labels with class counts, value range.

    \b
    Example:
      raygex data info tissues.parquet
    """
    info = summarise(path)
    click.echo(json.dumps(info, indent=2, default=str) if as_json else "\n".join(format_summary(info)))
