"""`raygex bench ...`: speed and memory measurements (never timed unit tests: machines are noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def bench() -> None:
    """Benchmarks: import throughput and memory (more arrive with the model issue)."""


@bench.command("import")
@click.option("--samples", default=10_000, show_default=True, help="Samples in the generated matrix.")
@click.option("--genes", default=20_000, show_default=True, help="Genes in the generated matrix.")
@click.option("--layout", "layouts", multiple=True, type=click.Choice(["xena", "table", "h5ad"]),
              help="Input layouts to measure (default: all three).")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("results/bench-import"),
              show_default=True, help="Where generated inputs are kept between runs.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
def import_cmd(samples, genes, layouts, workdir, as_json):
    """Throughput (MB/s of float32 output) and peak memory of `raygex data import`.

    \b
    Example:
      raygex bench import --samples 10000 --genes 20000 --layout xena
    """
    from raygex.bench.importing import LAYOUTS, run_import_benchmark

    results = run_import_benchmark(workdir, layouts or LAYOUTS, samples, genes)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(f"import of a {samples} x {genes} matrix ({samples * genes * 4 / 1e6:.0f} MB float32 output)")
    click.echo(f"{'layout':8} {'input MB':>9} {'import s':>9} {'MB/s':>7} {'peak MB':>8} {'peak/out':>9}")
    for r in results:
        click.echo(f"{r['layout']:8} {r['input_mb']:9.0f} {r['import_s']:9.2f} {r['mb_per_s']:7.1f} "
                   f"{r['peak_rss_mb']:8.0f} {r['peak_over_output']:9.2f}")
