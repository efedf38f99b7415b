"""Which raygex made an experiment folder: ``<experiment>/raygex.json`` beside the ``config.yaml`` snapshot.

`raygex search` writes it when it creates an experiment; `resume`, `status`, `export` and `report` check it
before reading anything else, so a folder from an older raygex (no ``raygex.json``, or another ``format``) is
one clear error instead of a failure deep inside Ray Tune's restore or a leaderboard read.
"""

from __future__ import annotations

import json
from pathlib import Path

from raygex import __version__
from raygex.errors import ConfigError
from raygex.fileio import atomic_path

META_FILE = "raygex.json"
FORMAT = 1  # bump when the experiment folder layout changes in a way older folders cannot be read


def write_experiment_meta(exp_dir: str | Path) -> Path:
    """Write ``<exp_dir>/raygex.json`` = {"raygex_version": ..., "format": FORMAT} (atomically)."""
    path = Path(exp_dir) / META_FILE
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps({"raygex_version": __version__, "format": FORMAT}, indent=2) + "\n")
    return path


def read_experiment_meta(exp_dir: str | Path) -> dict:
    """The folder's ``raygex.json``, checked; raises :class:`ConfigError` naming the folder if it is unusable."""
    exp_dir = Path(exp_dir)
    path = exp_dir / META_FILE
    rerun = "rerun the sweep with this version"
    if not path.is_file():
        raise ConfigError(f"experiment folder made by an older raygex (no {META_FILE}); {rerun} "
                          f"(raygex {__version__})", path=exp_dir)
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{META_FILE} is not valid JSON ({err.__class__.__name__}); {rerun}", path=exp_dir) \
            from None
    if not isinstance(meta, dict):
        raise ConfigError(f"{META_FILE} must be a JSON object, but got {type(meta).__name__}; {rerun}", path=exp_dir)
    made_by = meta.get("raygex_version", "unknown")
    if meta.get("format") != FORMAT:
        raise ConfigError(f"experiment folder format must be {FORMAT}, but got {meta.get('format')!r} "
                          f"(made by raygex {made_by}); {rerun} (raygex {__version__})", path=exp_dir)
    return meta


def check_experiment_meta(exp_dir: str | Path) -> None:
    """Raise :class:`ConfigError` naming ``exp_dir`` when it was not made by a raygex that writes this format."""
    read_experiment_meta(exp_dir)
