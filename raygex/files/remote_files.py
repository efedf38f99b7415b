"""Files outside an experiment given as object-store URIs: a model or an output file (`raygex predict`), and the
graphs of a config, fetched once per process into a private temporary folder."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from raygex.errors import ConfigError
from raygex.files.storage import StoreFolder, is_uri, open_remote


def cache_dir() -> str | None:
    """Where private copies go: ``RAYGEX_CACHE`` (made when missing), else the system's temporary folder."""
    base = os.environ.get("RAYGEX_CACHE") or None
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    return base


# -- single files given as URIs (raygex predict's model and output) --------------------------------------------------
def fetch_file(uri: str) -> Path:
    """A local copy of the object at ``uri`` (same file name, in a private temporary folder removed at exit)."""
    remote = open_remote(uri)
    folder = Path(tempfile.mkdtemp(prefix="raygex-file-", dir=cache_dir()))
    atexit.register(shutil.rmtree, folder, True)
    local = folder / (remote.name or "file")
    parent = StoreFolder(remote.uri, remote.fs, str(PurePosixPath(remote.path).parent))
    if parent.read_bytes(remote.name) is None:
        raise ConfigError("no such object", path=uri)
    parent.download(remote.name, local)
    return local


def put_file(local: Path, uri: str) -> None:
    remote = open_remote(uri)
    StoreFolder(remote.uri, remote.fs, str(PurePosixPath(remote.path).parent)).upload(local, remote.name)


# -- inputs given as URIs (data.expression, graphs) -------------------------------------------------------------------
_LOCAL_INPUTS: dict[str, Path] = {}


def local_input(uri: str, key: str) -> Path:
    """A local copy of an input on an object store: one file, or a folder of files (a dataset of Parquet parts);
    fetched once per process into a private temporary folder removed at exit. ``key`` names the config field in
    errors."""
    if uri in _LOCAL_INPUTS:
        return _LOCAL_INPUTS[uri]
    remote = open_remote(uri)
    folder = Path(tempfile.mkdtemp(prefix="raygex-input-", dir=cache_dir()))
    atexit.register(shutil.rmtree, folder, True)
    local = folder / (remote.name or "input")
    parent = StoreFolder(remote.uri, remote.fs, str(PurePosixPath(remote.path).parent))
    try:
        if not parent.download(remote.name, local):  # not one object: a folder of them (Parquet parts)
            files = remote.files()
            for rel in files:
                remote.download(rel, local / rel)
            if not files:
                raise ConfigError(f"{key}: no such object or folder", path=uri)
    except IsADirectoryError:  # a store that lists a folder as an object
        for rel in remote.files():
            remote.download(rel, local / rel)
    except ConfigError as err:
        raise err if str(err).startswith(key) else ConfigError(f"{key}: {err}") from None
    _LOCAL_INPUTS[uri] = local
    return local


def localize_inputs(config):
    """``config`` with every graph given as a URI replaced by a local copy (:func:`local_input`: the driver
    reads graphs whole); the expression dataset keeps its URI, read where it is by whoever reads it
    (:func:`raygex.data.canonical.parquet_parts`). The config itself (and the experiment's snapshot) keeps the
    URIs."""
    changes = {}
    if any(is_uri(path) for path in config.graphs.values()):
        changes["graphs"] = {name: str(local_input(path, f"graphs.{name}")) if is_uri(path) else path
                             for name, path in config.graphs.items()}
    return config.model_copy(update=changes) if changes else config
