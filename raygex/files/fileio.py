"""Atomic writes and content hashes shared by every writer.

Outputs are written to a temporary sibling and renamed into place, so a crash or a bad input never leaves a
half-written file where a user (or a later stage) would find it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from raygex.errors import ConfigError


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, directory: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    target = tmp / final.name
    if directory:
        target.mkdir()
    try:
        yield target
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(target, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike, chunk: int = 4 * 2**20) -> str:
    """Hex SHA-256 of a file's bytes (or of a directory's files in name order)."""
    path = Path(path)
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        with open(file, "rb") as handle:
            while block := handle.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def read_parquet(path: Path, what: str):
    """The Parquet table at ``path`` as a DataFrame, None when absent; unreadable: one line naming ``what``."""
    import pandas as pd

    if not path.exists():
        return None
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:  # pyarrow's ArrowInvalid is a ValueError
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ConfigError(f"not a readable {what} ({first})", path=path) from None


def write_parquet(table, path: Path) -> Path:
    """``table`` (Arrow) written to ``path`` atomically."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return path


def table_to_arrow(board):
    """A table of results as Arrow; mixed config values (None, numbers, names) are stored as text."""
    import pyarrow as pa

    board = board.copy()
    for column in board.columns:
        if board[column].dtype == object:
            board[column] = board[column].map(lambda v: None if v is None or v != v else str(v))
    return pa.Table.from_pandas(board, preserve_index=False)


def sha256_stream(name: str, filesystem) -> str:
    """sha256 of one file of ``filesystem`` (a pyarrow FileSystem), streamed."""
    digest = hashlib.sha256()
    with filesystem.open_input_stream(name) as handle:
        while block := handle.read(8 * 2**20):
            digest.update(block)
    return digest.hexdigest()
