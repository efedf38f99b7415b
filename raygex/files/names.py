"""Names of everything raygex writes, in one place: the canonical expression dataset's and the edge list's
columns and metadata keys, and the files of an experiment folder (what each holds:
:mod:`raygex.experiment.layout`). Every reader and writer takes its names from here, never from bare strings.
"""

from __future__ import annotations

FORMAT_VERSION = "1"

# Canonical expression dataset (Parquet).
SAMPLE_ID = "sample_id"
EXPRESSION = "expression"
META_GENES = b"raygex.genes"  # JSON list of HGNC symbols: the order of the expression vector
META_PROVENANCE = b"raygex.provenance"  # JSON dict: source file, hash, import options, counts
META_FORMAT = b"raygex.format"  # "expression/<version>" or "graph/<version>"
# Hex SHA-256 of the dataset's content (ids, expression bytes, labels, in row order), computed while the dataset
# is written and stored in the last part's footer: the dataset's hash in every exported model's provenance.
META_CONTENT_SHA256 = b"raygex.content_sha256"
EXPRESSION_FORMAT = f"expression/{FORMAT_VERSION}"

# Rows per Parquet row group / per part file: about 64 MiB of float32 at 16k genes. Ray Data reads files in
# parallel, so datasets bigger than one part are written as a directory of part files.
TARGET_ROW_GROUP_BYTES = 64 * 2**20
TARGET_PART_BYTES = 256 * 2**20

# Gene interaction graph (Parquet edge list, undirected, each edge once with source < target).
GRAPH_SOURCE = "source"
GRAPH_TARGET = "target"
GRAPH_WEIGHT = "weight"
META_GRAPH_NAME = b"raygex.graph_name"
META_GRAPH_ISOLATED = b"raygex.graph_isolated"  # JSON list of nodes without edges (kept so node counts are true)
GRAPH_FORMAT = f"graph/{FORMAT_VERSION}"

# The experiment folder (see raygex.experiment.layout for what each file holds).
CONFIG_SNAPSHOT, META_FILE = "config.yaml", "raygex.json"
EXPERIMENT_FORMAT = 2  # bumped when older folders cannot be read (2: per-graph controls, fixed test set, swap / verdict)
JOURNAL_FILE = "stages.jsonl"
LEADERBOARD_FILE = "leaderboard.parquet"
SEEDS_FILE = "seeds.parquet"
OPTUNA_FILE = "optuna.db"
GRAPHS_FILE = "graphs.json"
SWAP_FILE = "swap.parquet"
SWAP_PREDICTIONS_FILE = "swap_predictions.parquet"
RETRAININGS_DIR = "retrainings"  # one record per later-stage training (raygex.experiment.retrainings)
VERDICTS_FILE = "verdicts.parquet"
MODELS_DIR = "models"
REPORT_DIR = "report"
REPORT_FILE = "report.html"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "trial_state.pt"
PARAMS_FILE = "params.json"
RESULT_FILE = "result.json"
WANDB_DIR = "wandb"
LOG_FILE = "logs/driver.log"
LOCK_FILE = ".raygex.lock"  # held by the one driver working on the experiment (raygex.files.lock)
MODEL_METADATA_FILE = "raygex.json"  # the metadata inside an exported model (raygex.export.archive)
