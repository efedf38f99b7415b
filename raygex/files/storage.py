"""Where experiments live: a local (or shared-filesystem) folder, or an object store reached through ``pyarrow.fs``.

A storage string is one of

* a path (``results``, ``~/runs``, ``/shared/results``) or ``file://`` URI: a folder, exactly as before;
* ``s3://bucket/prefix``: Amazon S3 or any S3-compatible server. The endpoint comes from the standard
  ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL`` environment variables or the URI's ``?endpoint_override=`` query
  parameter (pyarrow's other S3 URI parameters work too: ``region``, ``scheme``, ``anonymous``, ...);
  credentials from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` or ``~/.aws``;
* ``gs://bucket/prefix``: Google Cloud Storage through pyarrow's ``GcsFileSystem`` (not tested against a server
  here);

anything else with a ``scheme://`` is refused with one line naming the supported schemes (never a local folder
named ``s3:``).

An experiment on an object store is worked on through a *working copy*: a private local folder per process
(under ``RAYGEX_CACHE`` or the system's temporary folder, removed at exit) that :class:`Mirror` pulls from the
URI when the experiment is opened (trial checkpoints only when one is read) and pushes file by file as the
pipeline's stages finish, oldest file first, so a stage's "done" marker never reaches the store before the files
written ahead of it. Ray Tune itself reads and writes the study folders on the store (``storage_path`` with
``storage_filesystem``), so a killed driver leaves there exactly what Tune had synced.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from raygex.errors import ConfigError
from raygex.files.names import LOCK_FILE

SUPPORTED = ("s3", "gs")
PROBE = ".raygex-write-test"


def is_uri(text: str | os.PathLike) -> bool:
    """Whether ``text`` names an object store (``scheme://``), not a local path or ``file://``."""
    text = str(text)
    return "://" in text and not text.startswith("file://")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= 300 else line[:297] + "..."


_AWS_ERRORS = {
    "NO_SUCH_BUCKET": "the bucket does not exist",
    "NETWORK_CONNECTION": "the endpoint cannot be reached",
    "ACCESS_DENIED": "access denied (the credentials may not write here)",
    "INVALID_ACCESS_KEY_ID": "the credentials were refused",
    "SIGNATURE_DOES_NOT_MATCH": "the credentials were refused",
}


def _credentials_found() -> bool:
    """Whether the AWS credential chain has a source besides instance metadata (which needs a cloud VM)."""
    env = os.environ
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return True
    if any(env.get(k) for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
                                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")):
        return True
    if env.get("RAYGEX_S3_INSTANCE_CREDENTIALS", "").lower() in ("1", "true", "yes"):
        return True
    shared = Path(env.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")).expanduser()
    return shared.is_file()


@dataclass(frozen=True)
class StoreFolder:
    """A folder in a file system, read and written the same way wherever it is: ``fs`` (a pyarrow FileSystem: an
    object store's, or the local one from :func:`local_folder`) and ``path`` (``bucket/prefix``, or a local
    folder) inside it; ``uri`` is what the user wrote (query parameters kept, so child URIs reach the same
    endpoint). Writes appear whole (an object store's PUT; a local rename)."""

    uri: str
    fs: object
    path: str

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name

    def child(self, name: str) -> "StoreFolder":
        return StoreFolder(_child_uri(self.uri, name), self.fs, f"{self.path.rstrip('/')}/{name}")

    def key(self, relative: str = "") -> str:
        return f"{self.path.rstrip('/')}/{relative}" if relative else self.path

    # -- object access, every failure one ConfigError line naming the URI -----------------------------------------
    def error(self, what: str, err: BaseException) -> ConfigError:
        line = _first_line(err)
        for code, meaning in _AWS_ERRORS.items():
            if code in line:
                return ConfigError(f"storage {what} failed: {meaning} ({line})", path=self.uri)
        return ConfigError(f"storage {what} failed: {line}", path=self.uri)

    def read_bytes(self, relative: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        from pyarrow import fs as pafs

        try:
            if self.fs.get_file_info(self.key(relative)).type != pafs.FileType.File:
                return None
            with self.fs.open_input_stream(self.key(relative)) as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as err:
            raise self.error(f"read of {relative}", err) from None

    @property
    def is_local(self) -> bool:
        return self.fs.type_name == "local"

    def write_bytes(self, relative: str, data: bytes) -> None:
        target = self.key(relative)
        # locally through a temporary sibling and a rename, so a reader never sees half a file
        written = f"{target}.{os.getpid()}.tmp" if self.is_local else target
        try:
            if self.is_local:
                self.fs.create_dir(str(PurePosixPath(target).parent), recursive=True)
            with self.fs.open_output_stream(written) as handle:
                handle.write(data)
            if written != target:
                self.fs.move(written, target)
        except OSError as err:
            raise self.error(f"write of {relative}", err) from None

    def copy(self, relative: str, to: str) -> None:
        """Copy one file to another path in the same folder."""
        try:
            if self.is_local:
                self.fs.create_dir(str(PurePosixPath(self.key(to)).parent), recursive=True)
            self.fs.copy_file(self.key(relative), self.key(to))
        except OSError as err:
            raise self.error(f"copy of {relative}", err) from None

    def remove_tree(self, relative: str) -> None:
        """Delete every file under ``relative`` (and, locally, the emptied folders)."""
        for name in self.files(relative):
            self.delete(name)
        if self.is_local:
            shutil.rmtree(self.key(relative), ignore_errors=True)

    def delete(self, relative: str) -> None:
        try:
            self.fs.delete_file(self.key(relative))
        except FileNotFoundError:
            pass
        except OSError as err:
            raise self.error(f"delete of {relative}", err) from None

    def files(self, relative: str = "") -> list[str]:
        """Every object under ``relative`` (recursively), as paths relative to this location."""
        from pyarrow import fs as pafs

        base = self.key(relative)
        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as err:
            raise self.error("listing", err) from None
        root = self.path.rstrip("/") + "/"
        return sorted(i.path[len(root):] for i in infos if i.type == pafs.FileType.File and i.path.startswith(root)
                      and not i.path.endswith("/"))

    def subfolders(self, relative: str = "") -> list[str]:
        """The names of the folders directly under ``relative``: a local folder's own (empty ones too); on an
        object store, which may list no folders at all (GCS), the first part of the names of the objects under it."""
        if not self.is_local:
            prefix = f"{relative.strip('/')}/" if relative.strip("/") else ""
            inside = [f[len(prefix):] for f in self.files(relative) if f.startswith(prefix)]
            return sorted({f.split("/")[0] for f in inside if "/" in f})
        from pyarrow import fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(self.key(relative), recursive=False,
                                                            allow_not_found=True))
        except OSError as err:
            raise self.error("listing", err) from None
        return sorted(PurePosixPath(i.path).name for i in infos if i.type == pafs.FileType.Directory)

    def download(self, relative: str, local: Path) -> bool:
        """Copy one object to ``local`` (atomically); False when it is gone."""
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.with_name(f".{local.name}.download.tmp")
        try:
            with self.fs.open_input_stream(self.key(relative)) as src, open(tmp, "wb") as dst:
                while block := src.read(8 * 2**20):
                    dst.write(block)
        except FileNotFoundError:
            tmp.unlink(missing_ok=True)
            return False
        except OSError as err:
            tmp.unlink(missing_ok=True)
            raise self.error(f"download of {relative}", err) from None
        os.replace(tmp, local)
        return True

    def upload(self, local: Path, relative: str) -> None:
        """One object, which appears whole or not at all (an S3 PUT is atomic)."""
        try:
            with open(local, "rb") as src, self.fs.open_output_stream(self.key(relative)) as dst:
                while block := src.read(8 * 2**20):
                    dst.write(block)
        except OSError as err:
            raise self.error(f"upload of {relative}", err) from None

    def probe(self) -> None:
        """Write, read back and delete a probe object: reachable, the bucket exists, writable, credentials good."""
        key = f"{PROBE}-{os.getpid()}"
        data = os.urandom(4096)
        self.write_bytes(key, data)
        if self.read_bytes(key) != data:
            raise ConfigError("storage probe object read back different bytes (is the store consistent?)",
                              path=self.uri)
        self.delete(key)


def check_scheme(uri: str) -> str:
    """The URI's scheme; one that is not supported is a one-line error naming the supported ones."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in SUPPORTED:
        raise ConfigError(f"storage scheme {scheme}:// is not supported; use a local or shared folder, file://, "
                          f"{', '.join(s + '://' for s in SUPPORTED)}", path=uri)
    return scheme


def open_remote(uri: str) -> StoreFolder:
    """A :class:`StoreFolder` for ``uri``: an unsupported scheme or missing S3 credentials are one-line errors."""
    scheme = check_scheme(uri)
    parts = urllib.parse.urlsplit(uri)
    if not parts.netloc:
        raise ConfigError(f"storage URI names no bucket ({scheme}://<bucket>/<prefix>)", path=uri)
    query = dict(urllib.parse.parse_qsl(parts.query))
    if scheme == "s3" and query.get("anonymous", "").lower() not in ("1", "true") and not _credentials_found():
        raise ConfigError("no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE "
                          "or ~/.aws/credentials (on a VM with an instance role, RAYGEX_S3_INSTANCE_CREDENTIALS=1)",
                          path=uri)
    from pyarrow import fs as pafs

    emulator = os.environ.get("STORAGE_EMULATOR_HOST") if scheme == "gs" else None
    try:
        if emulator:  # Google's variable for a GCS emulator: no credentials, its own endpoint
            where = urllib.parse.urlsplit(emulator if "://" in emulator else f"http://{emulator}")
            fs = pafs.GcsFileSystem(anonymous=True, endpoint_override=where.netloc, scheme=where.scheme or "http")
            path = f"{parts.netloc}{parts.path}"
        else:
            fs, path = pafs.FileSystem.from_uri(uri)
    except (OSError, ValueError) as err:  # ArrowInvalid is a ValueError
        raise ConfigError(f"storage URI is not usable: {_first_line(err)}", path=uri) from None
    return StoreFolder(uri.rstrip("/") if not parts.query else uri, fs, path.rstrip("/"))


def local_folder(path: str | os.PathLike) -> StoreFolder:
    """A local folder behind the same interface as an object store's (pyarrow's ``LocalFileSystem``)."""
    from pyarrow import fs as pafs

    folder = os.path.abspath(os.fspath(path))
    return StoreFolder(folder, pafs.LocalFileSystem(), folder)


def join(storage: str, name: str) -> str:
    """``<storage>/<name>`` for a URI (query parameters kept at the end)."""
    return _child_uri(storage, name) if is_uri(storage) else str(Path(storage) / name)


def _child_uri(uri: str, name: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + name))


def split(location: str) -> tuple[str, str]:
    """``(parent, last name)`` of a folder or a URI (query parameters kept on the parent URI)."""
    if not is_uri(location):
        return str(Path(location).parent), Path(location).name
    parts = urllib.parse.urlsplit(location)
    path = parts.path.rstrip("/")
    parent, _, name = path.rpartition("/")
    return urllib.parse.urlunsplit(parts._replace(path=parent)), name


def _skipped(relative: str) -> bool:
    """Files a working copy never pushes: the lock, probes, and the temporaries of atomic writes."""
    parts = PurePosixPath(relative).parts
    return (parts[-1] == LOCK_FILE or parts[-1].startswith(PROBE)
            or any(p.startswith(".") and p.endswith(".tmp") for p in parts))


def _is_checkpoint(relative: str) -> bool:
    return any(p.startswith("checkpoint_") for p in PurePosixPath(relative).parts[:-1])


class Mirror:
    """The working copy of one experiment on an object store (one per URI per process, see :func:`mirror`)."""

    def __init__(self, remote: StoreFolder):
        self.remote = remote
        base = os.environ.get("RAYGEX_CACHE") or None
        if base:
            Path(base).mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(prefix="raygex-", dir=base))
        atexit.register(shutil.rmtree, self._tmp, True)
        self.root = self._tmp / (remote.name or "experiment")
        self.root.mkdir()
        self._known: dict[str, tuple[int, int]] = {}  # relative path → (size, mtime_ns) as on the store

    def pull(self, relative: str = "", *, checkpoints: bool = False) -> int:
        """Copy the store's files under ``relative`` into the working copy (trial checkpoints only when asked);
        returns how many were copied."""
        count = 0
        for full in self.remote.files(relative):
            if _skipped(full) or (_is_checkpoint(full) and not checkpoints):
                continue
            local = self.root / full
            if not self.remote.download(full, local):
                continue  # deleted since the listing (Tune's marker files, a replaced checkpoint)
            stat = local.stat()
            self._known[full] = (stat.st_size, stat.st_mtime_ns)
            count += 1
        return count

    def push(self) -> int:
        """Upload every file of the working copy that is new or changed since it was pulled or pushed, oldest
        first (the order the stages wrote them in); returns how many."""
        changed = []
        for path in self.root.rglob("*"):
            if not path.is_file():
                continue
            rel = path.relative_to(self.root).as_posix()
            stat = path.stat()
            if _skipped(rel) or self._known.get(rel) == (stat.st_size, stat.st_mtime_ns):
                continue
            changed.append((stat.st_mtime_ns, rel, path, stat))
        for _, rel, path, stat in sorted(changed):
            self.remote.upload(path, rel)
            self._known[rel] = (stat.st_size, stat.st_mtime_ns)
        return len(changed)

    def relative(self, local: str | os.PathLike) -> str | None:
        try:
            return Path(local).relative_to(self.root).as_posix()
        except ValueError:
            return None


_MIRRORS: dict[str, Mirror] = {}


def mirror(uri: str) -> Mirror:
    """The process's working copy of the experiment at ``uri`` (pulled on first use)."""
    remote = open_remote(uri)
    key = f"{remote.fs.type_name}:{remote.path}"
    if key not in _MIRRORS:
        found = Mirror(remote)
        found.pull()
        _MIRRORS[key] = found
    return _MIRRORS[key]


def folder_of(local: str | os.PathLike) -> StoreFolder:
    """The folder ``local`` stands for: its place on the object store when it lies in a working copy (what Tune
    reads and writes), else the local folder itself."""
    found = mirror_of(local)
    return found.remote.child(found.relative(local)) if found else local_folder(local)


def mirror_of(local: str | os.PathLike) -> Mirror | None:
    """The working copy ``local`` lies in, if any: how code that only has a folder (Tune's set-up) finds the
    store it belongs to."""
    for found in _MIRRORS.values():
        if found.relative(local) is not None:
            return found
    return None
