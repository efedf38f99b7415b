"""The experiment folder: where every file of a sweep lives, and the only module that knows.

::

    <storage>/<name>/
      config.yaml              the validated config (what `raygex resume` reruns)
      raygex.json              which raygex made the folder, and its format version
      .raygex.lock             held by the one driver working on the experiment
      stages.jsonl             one line per stage run: study, stage, seconds, when, driver peak MiB
      <study>/                 Ray Tune's experiment (tuner.pkl, experiment_state-*.json, searcher state)
        <trial>/               a trial: params.json, result.json, checkpoint_*/trial_state.pt, error.txt
        leaderboard.parquet    every trial ranked, the winner marked          (stage: leaderboard)
        optuna.db              the study's Optuna study (SQLite), for optuna-dashboard  (stage: leaderboard)
        seeds.parquet          each choice on every split seed (baselines' bests, the best GCN per graph)  (stage: evaluation)
        graphs.json            aligned edge and node count of every graph and control (search split)
        swap.parquet           the best GCN with every graph swapped in, per seed  (stage: swap)
        swap_predictions.parquet  those runs' test-set probabilities
        verdicts.parquet       each real graph against each of its controls        (stage: verdict)
      retrainings/<study>/     one record per later-stage training, written as it ends (raygex.analysis.retrain)
      models/<study>.pt(.pt2)  the exported winner                              (stage: export)
      report/<study>/          figures (PNG) and summary.json                   (stage: summary)
      report.html              the experiment's report                          (stage: report)
      wandb/                   W&B runs (offline ones are synced from here)

Every reader and writer goes through :class:`ExperimentLayout`; stage outputs are written atomically, so "the file
exists" means "the stage finished". Storage is the path the user gave (absolute, never ``resolve()``-d). A URI
storage (:mod:`raygex.files.storage`) is worked on in a local copy (``root``), pulled when the layout is made and pushed
back oldest file first after every stage; ``where`` is the URI (Tune writes the study folders on the store).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pandas as pd
import yaml

from raygex.config import ExperimentConfig, load_config
from raygex.config.config_file import read_config_file
from raygex.errors import ConfigError
from raygex.files.fileio import atomic_path, table_to_arrow, read_parquet as _read_parquet, write_parquet as _write_parquet
from raygex.files.lock import ExperimentLock, LeaseLock
from raygex.files.names import (CHECKPOINT_FILE, CONFIG_SNAPSHOT, EXPERIMENT_FORMAT, GRAPHS_FILE, JOURNAL_FILE,
                                LEADERBOARD_FILE, LOG_FILE, META_FILE, MODELS_DIR, OPTUNA_FILE, PARAMS_FILE, REPORT_DIR,
                                REPORT_FILE, RESULT_FILE, SEEDS_FILE, SUMMARY_FILE, SWAP_FILE, SWAP_PREDICTIONS_FILE,
                                VERDICTS_FILE, WANDB_DIR)
from raygex.files.storage import check_scheme, is_uri, join, mirror
from raygex.runtime.memory import peak_rss_mb
from raygex.search.tune_compat.tune_files import newest_searcher_state, trial_epochs, trial_states
from raygex.version import __version__

__all__ = ["ExperimentLayout", "storage_root"]


def storage_root(storage: str | os.PathLike) -> Path:
    """A local storage folder as an absolute path (``~`` expanded, symlinks kept); an object-store URI is an error
    here (see :func:`raygex.files.storage.is_uri`), an unsupported scheme one line naming the supported ones."""
    text = str(storage)
    if is_uri(text):
        check_scheme(text)  # an unsupported scheme: one line naming the supported ones
        raise ConfigError("an object-store URI has no local folder; open it with ExperimentLayout", path=text)
    return Path(os.path.abspath(os.path.expanduser(text.removeprefix("file://"))))


def load_snapshot(path) -> ExperimentConfig:
    """An experiment's saved config (``config.yaml``, every key written out). A snapshot saved before
    ``search.family_budget`` existed swept with one TPE over the study, which its pickled searcher still is:
    it reads as ``tpe``, not today's default, so ``status`` and a resume say what the sweep does."""
    return load_config(path, ["search.family_budget=tpe"] if saved_before_family_shares(path) else None)


def saved_before_family_shares(path) -> bool:
    """Whether a snapshot was written before ``search.family_budget`` existed (its sweep ran one TPE)."""
    search = read_config_file(path).get("search")
    return isinstance(search, dict) and "family_budget" not in search


class ExperimentLayout:
    """One experiment folder. ``ExperimentLayout.open(path)`` for an existing one (checked), or
    ``ExperimentLayout.for_config(config, storage, name)`` for one a sweep is about to create."""

    def __init__(self, root: str | os.PathLike, config: ExperimentConfig | None = None):
        if is_uri(root):
            self.mirror = mirror(str(root))  # reachable, credentials, then pulled (checkpoints when read)
            self.root = self.mirror.root
        else:
            self.mirror = None
            self.root = storage_root(root)
        self._config = config

    def __repr__(self) -> str:
        return f"ExperimentLayout({self.where!r})"

    @property
    def where(self) -> str:
        """The experiment as the user names it: its URI on an object store, else its folder."""
        return self.mirror.remote.uri if self.mirror else str(self.root)

    def shown(self, path: str | os.PathLike) -> str:
        """A path of the experiment as the user reaches it: on an object store its URI, else the path."""
        relative = self.mirror.relative(path) if self.mirror else None
        return join(self.where, relative) if relative else str(path)

    def push(self) -> None:
        """On an object store: upload what changed in the working copy (nothing to do for a folder)."""
        if self.mirror:
            self.mirror.push()

    def pull(self, study: str) -> None:
        """On an object store: refresh the study's files from the store (Tune wrote them there)."""
        if self.mirror:
            self.mirror.pull(study)

    @property
    def name(self) -> str:
        return self.root.name

    # -- the experiment as a whole ------------------------------------------------------------------------------
    @classmethod
    def for_config(cls, config: ExperimentConfig, storage: str | None = None,
                   name: str | None = None) -> "ExperimentLayout":
        storage = str(storage or config.storage)
        if is_uri(storage):
            return cls(join(storage, name or config.name), config)
        return cls(storage_root(storage) / (name or config.name), config)

    @classmethod
    def open(cls, experiment: str | os.PathLike) -> "ExperimentLayout":
        """An existing experiment, checked: a raygex experiment folder, in a format this raygex reads."""
        layout = cls(experiment)
        if not layout.snapshot_path.is_file():
            raise ConfigError(f"not a raygex experiment folder (no {CONFIG_SNAPSHOT})", path=layout.where)
        layout.read_meta()
        layout._config = load_snapshot(layout.snapshot_path)
        return layout

    @property
    def config(self) -> ExperimentConfig:
        if self._config is None:
            self._config = load_snapshot(self.snapshot_path)
        return self._config

    def use_config(self, config: ExperimentConfig) -> None:
        """Work with ``config`` from now on (the snapshot is not rewritten): the same config with its input URIs
        replaced by local copies (:func:`raygex.files.remote_files.localize_inputs`)."""
        self._config = config

    @property
    def snapshot_path(self) -> Path:
        return self.root / CONFIG_SNAPSHOT

    def exists(self) -> bool:
        return self.snapshot_path.exists()

    def check_writable(self) -> None:
        """Fail before anything starts when the folder cannot be created or written (permissions, full disk)."""
        if self.mirror:
            self.mirror.remote.probe()
            return
        probe = self.root / ".raygex-write-test"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"\0" * 65536)
            probe.unlink()
        except OSError as err:
            raise ConfigError(f"storage is not writable: {err.strerror or err}", path=self.root) from None

    def create(self) -> None:
        """Write the config snapshot and ``raygex.json`` (atomically): the folder is now an experiment."""
        with atomic_path(self.snapshot_path) as tmp:
            Path(tmp).write_text(yaml.safe_dump(json.loads(self.config.model_dump_json()), sort_keys=False))
        self.write_meta()
        self.push()

    def write_meta(self) -> Path:
        path = self.root / META_FILE
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps({"raygex_version": __version__, "format": EXPERIMENT_FORMAT}, indent=2) + "\n")
        return path

    def read_meta(self) -> dict:
        """``raygex.json``, checked; a :class:`ConfigError` naming the folder when this raygex cannot read it."""
        path = self.root / META_FILE
        rerun = "rerun the sweep with this version"
        if not path.is_file():
            raise ConfigError(f"experiment folder made by an older raygex (no {META_FILE}); {rerun} "
                              f"(raygex {__version__})", path=self.root)
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ConfigError(f"{META_FILE} is not valid JSON ({err.__class__.__name__}); {rerun}",
                              path=self.root) from None
        if not isinstance(meta, dict):
            raise ConfigError(f"{META_FILE} must be a JSON object, but got {type(meta).__name__}; {rerun}",
                              path=self.root)
        if meta.get("format") != EXPERIMENT_FORMAT:
            raise ConfigError(f"experiment folder format must be {EXPERIMENT_FORMAT}, but got {meta.get('format')!r} (made by "
                              f"raygex {meta.get('raygex_version', 'unknown')}); {rerun} (raygex {__version__})",
                              path=self.root)
        return meta

    def lock(self) -> ExperimentLock | LeaseLock:
        return LeaseLock(self.mirror.remote) if self.mirror else ExperimentLock(self.root)

    @property
    def wandb_dir(self) -> Path:
        return self.root / WANDB_DIR

    @property
    def driver_log(self) -> Path:
        """Ray's, Tune's, Ray Data's and Python warnings' messages from the driver (the console shows progress)."""
        return self.root / LOG_FILE

    @property
    def report_path(self) -> Path:
        return self.root / REPORT_FILE

    # -- the journal of stage runs ------------------------------------------------------------------------------
    def record_stage(self, study: str | None, stage: str, seconds: float) -> None:
        """Append one line to ``stages.jsonl``: which stage ran for which study, for how long, and the driver's
        peak resident memory when it ended (a peak so far: the stage that raised it is the one where it grew)."""
        line = {"study": study, "stage": stage, "seconds": round(seconds, 3), "driver_peak_mb": round(peak_rss_mb(), 1),
                "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
        with open(self.root / JOURNAL_FILE, "a") as handle:
            handle.write(json.dumps(line) + "\n")
        self.push()  # on an object store: the stage's outputs, then this journal line

    def journal(self) -> list[dict]:
        path = self.root / JOURNAL_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    # -- studies and their trials -------------------------------------------------------------------------------
    def study_dir(self, study: str) -> Path:
        """The study's folder, which is also Ray Tune's experiment folder (storage ``root``, name ``study``)."""
        return self.root / study

    def trial_dirs(self, study: str) -> list[Path]:
        """Every trial folder of the study (those holding a ``params.json``), in name order."""
        folder = self.study_dir(study)
        return sorted(p.parent for p in folder.glob(f"*/{PARAMS_FILE}")) if folder.is_dir() else []

    def trial_dir(self, study: str, row) -> Path:
        """A leaderboard row's trial folder, found by name under the study (the stored path breaks on moves)."""
        recorded = Path(str(row["path"]))
        folder = self.study_dir(study) / recorded.name
        return folder if folder.is_dir() else recorded

    def trial_params(self, study: str, row) -> dict:
        path = self.trial_dir(study, row) / PARAMS_FILE
        if not path.is_file():
            raise ConfigError(f"trial {row['trial_id']}: its folder has no {PARAMS_FILE}", path=path.parent)
        return json.loads(path.read_text())

    def trial_history(self, study: str, row) -> pd.DataFrame:
        """Per-epoch metrics of one trial, from the ``result.json`` Tune wrote (:func:`raygex.search.tune_compat.tune_files.trial_epochs`)."""
        path = self.trial_dir(study, row) / RESULT_FILE
        if not path.exists():
            return pd.DataFrame()
        return pd.DataFrame(trial_epochs(path.read_text().splitlines()))

    def latest_checkpoint(self, folder: Path) -> dict | None:
        """The newest ``checkpoint_*/trial_state.pt`` of a trial folder, loaded as data only (no code runs)."""
        import torch

        if self.mirror and self.mirror.relative(folder) is not None:
            self.mirror.pull(self.mirror.relative(folder), checkpoints=True)
        found = sorted(Path(folder).glob(f"checkpoint_*/{CHECKPOINT_FILE}"))
        return torch.load(found[-1], map_location="cpu", weights_only=True) if found else None

    def trial_states(self, study: str) -> dict[str, str]:
        """Trial id → Tune status, from the experiment state Tune writes (readable while the sweep runs)."""
        return trial_states(self.study_dir(study))

    # -- stage outputs ------------------------------------------------------------------------------------------
    def leaderboard_path(self, study: str) -> Path:
        return self.study_dir(study) / LEADERBOARD_FILE

    def optuna_storage(self, study: str) -> str:
        """Where the study's Optuna study is kept: ``search.optuna_storage`` (an RDB URL) or SQLite in the study."""
        url = self.config.search.optuna_storage
        return url or f"sqlite:///{self.study_dir(study) / OPTUNA_FILE}"

    def searcher_state(self, study: str) -> Path | None:
        """Tune's newest saved searcher state of the study (the Optuna study lives inside), or None."""
        return newest_searcher_state(self.study_dir(study))

    def read_leaderboard(self, study: str) -> pd.DataFrame | None:
        """The study's leaderboard (None before its sweep finished); a damaged file is an error naming it."""
        return _read_parquet(self.leaderboard_path(study), "leaderboard")

    def write_leaderboard(self, study: str, board: pd.DataFrame) -> Path:
        return _write_parquet(table_to_arrow(board), self.leaderboard_path(study))

    def seeds_path(self, study: str) -> Path:
        return self.study_dir(study) / SEEDS_FILE

    def read_seeds(self, study: str, *, winner_rows: bool = False) -> pd.DataFrame | None:
        """The evaluation over split seeds (None before it ran): each choice's best configuration per seed, plus
        (``winner_rows``) the winner's runs when the selection rule took it from below its choice's best."""
        table = _read_parquet(self.seeds_path(study), "seed-run table")
        if table is None or winner_rows or "role" not in table:
            return table
        return table[table["role"] == "best"].reset_index(drop=True)

    def write_seeds(self, study: str, table: pd.DataFrame) -> Path:
        import pyarrow as pa

        return _write_parquet(pa.Table.from_pandas(table, preserve_index=False), self.seeds_path(study))

    def write_graph_counts(self, study: str, counts: dict) -> Path:
        path = self.study_dir(study) / GRAPHS_FILE
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(counts, indent=2) + "\n")
        return path

    def read_graph_counts(self, study: str) -> dict | None:
        path = self.study_dir(study) / GRAPHS_FILE
        return json.loads(path.read_text()) if path.exists() else None

    def swap_path(self, study: str) -> Path:
        return self.study_dir(study) / SWAP_FILE

    def write_swap(self, study: str, table: pd.DataFrame, predictions: pd.DataFrame) -> None:
        """The graph swap: predictions first, the table last (the table's presence means both are complete)."""
        import pyarrow as pa

        _write_parquet(pa.Table.from_pandas(predictions, preserve_index=False),
                       self.study_dir(study) / SWAP_PREDICTIONS_FILE)
        _write_parquet(pa.Table.from_pandas(table, preserve_index=False), self.swap_path(study))

    def read_swap(self, study: str) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
        return (_read_parquet(self.swap_path(study), "graph-swap table"),
                _read_parquet(self.study_dir(study) / SWAP_PREDICTIONS_FILE, "graph-swap prediction table"))

    def verdicts_path(self, study: str) -> Path:
        return self.study_dir(study) / VERDICTS_FILE

    def write_verdicts(self, study: str, table: pd.DataFrame) -> Path:
        import pyarrow as pa

        return _write_parquet(pa.Table.from_pandas(table, preserve_index=False), self.verdicts_path(study))

    def read_verdicts(self, study: str) -> pd.DataFrame | None:
        return _read_parquet(self.verdicts_path(study), "verdict table")

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    def model_path(self, study: str) -> Path:
        return self.models_dir / f"{study}.pt"

    def figures_dir(self, study: str) -> Path:
        return self.root / REPORT_DIR / study

    def size_figure_path(self, task: str) -> Path:
        """A task's metric-against-training-size figure (it spans the task's studies)."""
        return self.root / REPORT_DIR / f"{task}-sizes.png"

    def summary_path(self, study: str) -> Path:
        return self.figures_dir(study) / SUMMARY_FILE

    def write_summary(self, study: str, summary: dict) -> Path:
        path = self.summary_path(study)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        return path

    def read_summary(self, study: str) -> dict | None:
        path = self.summary_path(study)
        try:
            return json.loads(path.read_text()) if path.exists() else None
        except (OSError, json.JSONDecodeError):
            return None

