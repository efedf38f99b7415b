"""`raygex bench ...`: speed and memory measurements (never timed unit tests: machines are noisy)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from raygex.bench import folds as folds_bench
from raygex.bench import gcn as gcn_bench
from raygex.bench import hpo as hpo_bench
from raygex.bench import lr_family as lr_bench
from raygex.bench.memory import format_memory, run_memory_benchmark
from raygex.bench import memory_estimates as estimates_bench
from raygex.bench import predict as predict_bench
from raygex.bench import scale as scale_bench
from raygex.bench import scale_cluster
from raygex.bench.soak import run_soak
from raygex.errors import ConfigError
from raygex.files.storage import open_remote


@click.group()
def bench() -> None:
    """Benchmarks: import throughput, GCN step speed and memory, search memory and throughput, prediction speed."""


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
        click.echo(json.dumps({"samples": samples, "genes": genes, "results": results}))
        return
    click.echo(f"import of a {samples} x {genes} matrix ({samples * genes * 4 / 1e6:.0f} MB float32 output)")
    click.echo(f"{'layout':8} {'input MB':>9} {'import s':>9} {'MB/s':>7} {'peak MB':>8} {'peak/out':>9}")
    for r in results:
        click.echo(f"{r['layout']:8} {r['input_mb']:9.0f} {r['import_s']:9.2f} {r['mb_per_s']:7.1f} "
                   f"{r['peak_rss_mb']:8.0f} {r['peak_over_output']:9.2f}")


def graph_options(default: str):
    """--graph/--nodes/--edges: a graph file, or the size of a synthetic one (GeneMANIA's by default)."""
    def decorate(command):
        for option in reversed([
            click.option("--graph", "graph_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help=f"Graph file (.adjlist.gz, an edge list, or a raygex .parquet); default: {default}."),
            click.option("--nodes", default=16_300, show_default=True,
                         help="Nodes of the synthetic graph (GeneMANIA: 16300)."),
            click.option("--edges", default=265_000, show_default=True,
                         help="Undirected edges of the synthetic graph."),
        ]):
            command = option(command)
        return command
    return decorate


def _run_and_print(run, format_table, as_json: bool) -> None:
    """Run a benchmark (a ValueError from it is a bad option: one line, exit 2), print its table, then its JSON."""
    try:
        result = run()
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for line in format_table(result):
        click.echo(line)
    if as_json:
        click.echo(json.dumps(result))


def _print_fields(result: dict, width: int, as_json: bool) -> None:
    """A benchmark's result as one JSON object, or one ``name value`` line per field."""
    if as_json:
        click.echo(json.dumps(result))
        return
    for key, value in result.items():
        click.echo(f"{key:{width}} {value}")


@bench.command("gcn")
@graph_options("a synthetic graph")
@click.option("--batch", default=64, show_default=True, help="Samples per step.")
@click.option("--embedding", default=32, show_default=True, help="Gene embedding size.")
@click.option("--depth", default=3, show_default=True, help="Graph-convolution layers.")
@click.option("--channels", default=32, show_default=True, help="Channels per layer.")
@click.option("--repeats", default=5, show_default=True, help="Timed steps per variant (median reported).")
@click.option("--variant", "variants", multiple=True,
              type=click.Choice(["ours", "pyg_spmm", "pyg_static", "pyg_batch"]),
              help="Variants to run (default: all four; each PyG one is first checked against ours).")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic graph, inputs and weights.")
@click.option("--tune-malloc", is_flag=True,
              help="Run every variant with glibc told to keep freed memory: fewer page faults, larger peaks.")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def gcn_cmd(graph_path, nodes, edges, batch, embedding, depth, channels, repeats, variants, seed, tune_malloc,
            as_json):
    """Time a GCN training step and its peak memory: ours vs PyG GCNConv (sparse adj_t, gather-scatter static,
    disjoint batch), each checked to compute ours' function first, vs the floor max(bytes / bandwidth,
    FLOPs / matmul rate).

    \b
    Examples:
      raygex bench gcn
      raygex bench gcn --graph genemania.adjlist.gz --json
      raygex bench gcn --nodes 2000 --edges 30000 --variant ours --repeats 10
    """
    _run_and_print(lambda: gcn_bench.run_gcn_benchmark(
        graph_path, nodes, edges, batch, embedding, depth, channels, repeats, variants or gcn_bench.VARIANTS, seed,
        tune_malloc, log=lambda m: click.echo(m, err=True)), gcn_bench.format_table, as_json)


@bench.command("folds")
@click.option("--case", "cases", multiple=True, type=click.Choice(folds_bench.CASES + ("file",)),
              help="Cases to measure (default: the demo's three families and a GeneMANIA-size GCN).")
@click.option("--folds", default=5, show_default=True, help="Folds of the cross-validated variants.")
@click.option("--epochs", default=10, show_default=True, help="Epochs every variant trains (patience = epochs).")
@click.option("--batch", default=32, show_default=True, help="Training batch size.")
@click.option("--threads", default=1, show_default=True, help="torch threads per run (a trial's CPU share).")
@click.option("--repeats", default=1, show_default=True, help="Runs per variant (the median is reported).")
@click.option("--expression", type=click.Path(), default=None, help="With --case file: a canonical dataset.")
@click.option("--label", default=None, help="With --case file: the label column to classify.")
@click.option("--train", type=float, default=50, show_default=True,
              help="With --case file: training samples of the one-split variant (a count, or a fraction).")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def folds_cmd(cases, folds, epochs, batch, threads, repeats, expression, label, train, as_json):
    """What cross-validation costs a trial: one split, k folds one after another, k folds as one batched model,
    side by side (wall time and peak memory growth, each run in a fresh process).

    \b
    Examples:
      raygex bench folds
      raygex bench folds --case demo-mlp --case demo-gcn --repeats 3
      raygex bench folds --case file --expression data/brca.parquet --label PAM50 --train 50
    """
    file_case = None
    if "file" in cases:
        if not expression or not label:
            raise ConfigError("--case file needs --expression and --label")
        file_case = {"expression": expression, "label": label, "train": int(train) if train >= 1 else train}
    _run_and_print(lambda: folds_bench.run_folds_benchmark(
        cases or folds_bench.CASES, folds=folds, epochs=epochs, batch=batch, threads=threads, repeats=repeats,
        file_case=file_case, log=lambda m: click.echo(m, err=True)), folds_bench.format_table, as_json)


@bench.command("predict")
@graph_options("GeneMANIA from the benchmark data folder ($RAYGEX_BENCH_DATA) when present, else a synthetic graph")
@click.option("--synthetic", is_flag=True, help="Use a synthetic graph even when GeneMANIA is available.")
@click.option("--depth", default=2, show_default=True, help="Graph-convolution layers.")
@click.option("--channels", default=32, show_default=True, help="Channels per layer.")
@click.option("--embedding", default=8, show_default=True, help="Gene embedding size.")
@click.option("--batch", default=256, show_default=True, help="Samples per call for the throughput.")
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's own, all cores).")
@click.option("--repeats", default=5, show_default=True, help="Timed batch calls per predictor (median reported).")
@click.option("--calls", default=200, show_default=True, help="Timed single-sample calls per predictor (p50, p99).")
@click.option("--seed", default=0, show_default=True, help="Seed of the synthetic graph, data and weights.")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def predict_cmd(graph_path, synthetic, nodes, edges, depth, channels, embedding, batch, repeats, calls, threads,
                seed, as_json):
    """Samples/s and single-sample latency (p50, p99) of an exported GCN on the CPU vs the in-memory network.

    \b
    Examples:
      raygex bench predict
      raygex bench predict --threads 1 --batch 64 --json
      raygex bench predict --synthetic --nodes 2000 --edges 30000 --depth 1
    """
    _run_and_print(lambda: predict_bench.run_predict_benchmark(
        graph_path, synthetic, nodes, edges, depth, channels, embedding, batch, repeats, calls, threads, seed,
        log=lambda m: click.echo(m, err=True)), predict_bench.format_table, as_json)


@bench.command("search")
@click.option("--samples", default=2000, show_default=True, help="Samples in the generated dataset.")
@click.option("--genes", default=16000, show_default=True, help="Genes in the generated dataset.")
@click.option("--trials", default=8, show_default=True, help="Configurations, each run once by the sweep and by the loop.")
@click.option("--workdir", type=click.Path(path_type=Path), default=None,
              help="Parent of the fresh temporary folder each run works in (default: the system's temp folder).")
@click.option("--concurrent", default=2, show_default=True, help="Trials at a time in the sweep.")
@click.option("--epochs", default=20, show_default=True, help="Epochs per trial.")
@click.option("--cpus-per-trial", default=1.0, show_default=True, help="Ray CPUs (and torch threads, at least 1) per trial.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (last line).")
def search_cmd(samples, genes, trials, concurrent, epochs, cpus_per_trial, workdir, as_json):
    """Zero-copy check (per-trial memory growth / dataset size) and the sweep's trial phase vs a sequential loop
    over the same configurations.

    \b
    Example:
      raygex bench search --samples 2000 --genes 16000 --trials 8 --concurrent 2
    """
    from raygex.bench.search import run_search_benchmark

    _print_fields(run_search_benchmark(workdir, samples, genes, trials, concurrent, epochs, cpus_per_trial), 45,
                  as_json)


@bench.command("memory")
@click.argument("config", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--estimates", is_flag=True, help="Instead: each configuration's memory estimate (resources.memory_mb: "
              "auto) beside the peak its training measured, the demo's families and a GeneMANIA-size MLP and GCN.")
@click.option("--storage", type=click.Path(path_type=Path), default=None,
              help="Where the run's experiment goes (default: the config's storage).")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Config overrides, as for `raygex search`.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between samples.")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def memory_cmd(config, estimates, storage, overrides, interval, as_json):
    """A whole `raygex search CONFIG` run's peak memory per kind of process (driver, trial actors, retraining
    tasks, idle workers, Ray's own), proportional set sizes sampled every INTERVAL seconds.

    \b
    Example:
      raygex bench memory configs/demo.yaml --storage /tmp/raygex-memory
      raygex bench memory --estimates
    """
    if estimates == (config is not None):
        raise ConfigError("bench memory needs a CONFIG or --estimates (one of them)")
    if estimates:
        return _run_and_print(estimates_bench.run_estimates_benchmark, estimates_bench.format_table, as_json)
    result = run_memory_benchmark(config, storage, list(overrides), interval=interval)
    for line in format_memory(result):
        click.echo(line)
    if as_json:
        click.echo(json.dumps(result))
    if result["exit_code"] != 0:
        raise SystemExit(result["exit_code"])


@bench.command("soak")
@click.option("--trials", default=200, show_default=True, help="Trials in the sweep.")
@click.option("--concurrent", default=4, show_default=True, help="Trials at a time.")
@click.option("--kills", default=3, show_default=True, help="Times the driver is SIGKILLed and resumed.")
@click.option("--epochs", default=3, show_default=True, help="Epochs per trial.")
@click.option("--seed", default=0, show_default=True, help="Seed of the kill times.")
@click.option("--baseline/--no-baseline", default=True, show_default=True,
              help="Also run the same sweep uninterrupted, for the wall-time overhead.")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("results/bench-soak"), show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (last line).")
def soak_cmd(trials, concurrent, kills, epochs, seed, baseline, workdir, as_json):
    """Kill the driver of a long sweep several times and resume: trials lost, run twice, time overhead.

    \b
    Example:
      raygex bench soak --trials 200 --concurrent 4 --kills 3
    """
    _print_fields(run_soak(workdir, trials, concurrent, kills, epochs, seed, baseline,
                           log=lambda m: click.echo(m, err=True)), 28, as_json)


@bench.command("baselines")
@click.argument("experiment", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (last line).")
def baselines_cmd(experiment, as_json):
    """Each study's exported winner against scikit-learn's CV-tuned logistic regression and MLP, fitted on the
    same labelled samples and scored on the same fixed test set (test AUC).

    \b
    Example:
      raygex bench baselines results/brca-pam50
    """
    from raygex.bench.baselines import winner_against_sklearn

    rows = winner_against_sklearn(experiment)
    if as_json:
        click.echo(json.dumps({"studies": rows}, default=str))
        return
    for row in rows:
        click.echo(f"{row['study']:24} labelled {row['labelled']:4d}  test {row['test']:4d}  winner {row['winner']:22} "
                   f"{row['winner_auc']:.4f}  sklearn LR-CV {row['sklearn_lr_auc']:.4f}  sklearn MLP-CV "
                   f"{row['sklearn_mlp_auc']:.4f}  gap to LR {row['gap_to_sklearn_lr']:+.4f}")


@bench.command("lr")
@click.option("--shared", type=click.Path(path_type=Path), default=None, envvar="RAYGEX_BENCH_DATA",
              help="The benchmark data folder, holding expression/brca_pam50.tsv.gz and "
                   "graphs/hgnc_symbol_map_Feb2019.txt (default: $RAYGEX_BENCH_DATA).")
@click.option("--size", "sizes", multiple=True, type=int, help="Training sizes (default: 50 and 200).")
@click.option("--seeds", default=5, show_default=True, help="Split seeds per size.")
@click.option("--trials", default=3, show_default=True, help="The LR family's trials per study (its best counts).")
@click.option("--workdir", type=click.Path(path_type=Path), default=None, help="Where the imported data is kept.")
@click.option("--train-only", is_flag=True, help="Also fit LogisticRegressionCV on the training rows alone.")
@click.option("--cs", default=10, show_default=True, help="LogisticRegressionCV's grid of C values (its default).")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def lr_cmd(shared, sizes, seeds, trials, workdir, train_only, cs, as_json):
    """The logistic-regression family's best of its first trials beside scikit-learn's LogisticRegressionCV on
    the same PAM50 samples (target: within 0.005 test AUC).

    \b
    Examples:
      raygex bench lr --shared /data/raygex            # n = 50 and 200, 5 split seeds, best of 3 trials
      raygex bench lr --size 50 --seeds 2 --trials 1   # a quick look
    """
    shared = shared or predict_bench.BENCH_DATA
    source = Path(shared) / "expression" / "brca_pam50.tsv.gz"
    if not source.exists():
        raise ConfigError(f"--shared {shared}: {source} is missing (the TCGA BRCA PAM50 matrix this bench reads)")
    result = lr_bench.run_lr_benchmark(shared, sizes=tuple(sizes) or (50, 200), seeds=tuple(range(seeds)),
                                       trials=trials, workdir=workdir, train_only=train_only, cs=cs)
    click.echo(lr_bench.format_table(result))
    if as_json:
        click.echo(json.dumps(result, default=str))


@bench.command("hpo")
@click.option("--dataset", "datasets", multiple=True,
              type=click.Choice(["demo", "brca-n50", "brca-n200", "demo-tiny"]),
              help="Data sets (default: demo, brca-n50, brca-n200; demo-tiny is a seconds-long smoke test).")
@click.option("--seeds", default=5, show_default=True, help="Searcher seeds per method (at least 3 for a verdict).")
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("results/bench-hpo"), show_default=True,
              help="Where the tables (and curves) are kept between runs.")
@click.option("--shared", type=click.Path(path_type=Path), default=None, envvar="RAYGEX_BENCH_DATA",
              help="The benchmark data folder, holding expression/brca_pam50.tsv.gz (BRCA is skipped when it is "
                   "absent; default: $RAYGEX_BENCH_DATA).")
@click.option("--plot", type=click.Path(path_type=Path), default=None,
              help="PNG of the curves [default: WORKDIR/hpo.png].")
@click.option("--workers", default=2, show_default=True, help="Processes training the table (0: in this process).")
@click.option("--build-minutes", type=float, default=None,
              help="Stop starting table trials after this long (rerun to continue the build).")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def hpo_cmd(datasets, seeds, workdir, shared, plot, workers, build_minutes, as_json):
    """Search quality: compute (epochs summed over trials) that TPE + ASHA, random + ASHA, TPE, random and a grid
    need to come within 0.01 AUC of the grid's best, replayed over a table of every configuration.

    \b
    Examples:
      raygex bench hpo --dataset demo --seeds 5
      raygex bench hpo --build-minutes 9          # build the tables in pieces, then rerun
    """
    shared = shared or predict_bench.BENCH_DATA
    result = hpo_bench.run_hpo_benchmark(datasets or hpo_bench.REAL_DATASETS, workdir, shared, seeds, plot or workdir / "hpo.png",
                               workers=workers, build_minutes=build_minutes, log=lambda m: click.echo(m, err=True))
    for line in hpo_bench.format_table(result):
        click.echo(line)
    if as_json:
        click.echo(json.dumps(result, default=str))


@bench.command("scale")
@click.option("--size", "sizes", multiple=True, metavar="SAMPLESxGENES",
              help="Dataset sizes (default: 25000x5000 and 50000x20000, ~0.5 GB and ~4 GB of float32).")
@click.option("--nodes", default=3, show_default=True, help="Nodes of the simulated cluster (head + workers).")
@click.option("--cpus-per-node", default=2, show_default=True, help="Logical CPUs per simulated node.")
@click.option("--store-mb", default=2560, show_default=True,
              help="Object-store MiB per node (spills beyond; keep it above the 1.5 x dataset / nodes target, so "
                   "the target is measured, not enforced by the capacity).")
@click.option("--epochs", default=2, show_default=True, help="Epochs per trial.")
@click.option("--trials", default=2, show_default=True, help="Trials per study.")
@click.option("--occupancy-studies", default=6, show_default=True,
              help="Studies of the occupancy experiment (side by side vs one after another); 0 skips it.")
@click.option("--occupancy-trials", default=12, show_default=True, help="Trials per study of the occupancy experiment.")
@click.option("--occupancy-epochs", default=80, show_default=True,
              help="Epochs per trial of the occupancy experiment (80: ~5 s trials on a 2-core machine).")
@click.option("--workdir", type=click.Path(path_type=Path), default=None,
              help="Where the temporary datasets go (default: the system's temporary folder); deleted after.")
@click.option("--address", default=None,
              help="Measure on this running cluster instead of a simulated one (with --store-uri).")
@click.option("--store-uri", default=None, metavar="URI",
              help="With --address: where the datasets and the experiment go (s3://bucket/prefix); the nodes read "
                   "the data there, and the bytes each node reads are counted.")
@click.option("--out", "out_json", type=click.Path(path_type=Path), default=None, help="Write the results as JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Also print one JSON object as the last line.")
def scale_cmd(sizes, nodes, cpus_per_node, store_mb, epochs, trials, occupancy_studies, occupancy_trials,
              occupancy_epochs, address, store_uri, workdir, out_json, as_json):
    """Driver memory and object-store bytes per node of a search on a simulated multi-node cluster, per dataset
    size (targets: driver growth <= 5 % of the dataset; each node's store <= 1.5 x dataset / nodes), and the
    occupancy of the trial slots.

    \b
    Examples:
      raygex bench scale                                   # ~0.5 GB and ~4 GB
      raygex bench scale --size 2000x1000 --nodes 2 --occupancy-studies 0   # a smoke test, seconds
      raygex bench scale --address auto --store-uri s3://my-bucket/raygex-bench --size 50000x20000
    """
    if (address is None) != (store_uri is None):
        raise ConfigError("--address and --store-uri go together (a running cluster and the store its nodes read)")
    if address is not None:
        open_remote(store_uri).probe()  # one line before anything is generated
        result = scale_cluster.run_on_cluster(address, store_uri, scale_bench.sizes_option(sizes) if sizes else
                                scale_bench.DEFAULT_SIZES, epochs=epochs, trials=trials, workdir=workdir)
    else:
        result = scale_bench.run_scale_benchmark(
            workdir, scale_bench.sizes_option(sizes) if sizes else scale_bench.DEFAULT_SIZES, nodes=nodes,
            cpus_per_node=cpus_per_node, store_mb=store_mb, epochs=epochs, trials=trials,
            occupancy_studies=occupancy_studies, occupancy_trials=occupancy_trials, occupancy_epochs=occupancy_epochs)
    click.echo(scale_bench.format_table(result))
    if out_json is not None:
        Path(out_json).write_text(scale_bench.json_line(result))
    if as_json:
        click.echo(scale_bench.json_line(result))
