"""Downloading public inputs (TCGA expression from UCSC Xena, the GeneMANIA graph) into a local cache.

Standard library only, so a fetch works before any heavy dependency is importable. A download streams into
``<dest>.part`` (resumed with an HTTP ``Range`` request after an interruption), is checked against a SHA-256 when
one is known, and is renamed onto ``<dest>`` only when complete: the destination is never half-written. The
observed digest is kept in a ``<dest>.sha256`` sidecar and in the cache's ``manifest.json`` so a later run can
tell a good file from a damaged one without the network.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import posixpath
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from raygex.version import __version__
from raygex.errors import ConfigError, DownloadError, InputFormatError
from raygex.files.fileio import atomic_path, sha256_file

XENA_DEFAULT_URL = "https://tcga.xenahubs.net/download"
# GeneMANIA's combined human network (Ensembl gene ids, weighted edges). Its contents change between GeneMANIA
# releases, so no checksum is pinned: the first download's digest is recorded and checked afterwards.
GENEMANIA_DEFAULT_URL = ("https://genemania.org/data/current/Homo_sapiens.COMBINED/"
                         "COMBINED.DEFAULT_NETWORKS.BP_COMBINING.txt")
# Cohorts on the Xena TCGA hub, for hints only: names outside this list are still tried (the hub has more).
KNOWN_COHORTS = (
    "ACC", "BLCA", "BRCA", "CESC", "CHOL", "COAD", "COADREAD", "DLBC", "ESCA", "GBM", "GBMLGG", "HNSC", "KICH",
    "KIRC", "KIRP", "LAML", "LGG", "LIHC", "LUAD", "LUNG", "LUSC", "MESO", "OV", "PAAD", "PANCAN", "PCPG",
    "PRAD", "READ", "SARC", "SKCM", "STAD", "TGCT", "THCA", "THYM", "UCEC", "UCS", "UVM",
)
COHORT_PATTERN = re.compile(r"[A-Z][A-Z0-9]{0,31}")
CHUNK = 1 << 20
MANIFEST = "manifest.json"

Progress = Callable[[int, "int | None"], None]


def default_cache_dir() -> Path:
    """``$RAYGEX_CACHE`` or ``~/.cache/raygex``: one place so repeated fetches reuse what is already there."""
    env = os.environ.get("RAYGEX_CACHE", "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "raygex"


def _check_url(url: str, what: str = "url") -> str:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigError(f"{what} must start with http:// or https://, but got {url!r}")
    return url


def _check_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ConfigError(f"sha256 must be 64 hexadecimal digits, but got {value!r}")
    return digest


def sidecar_path(dest: str | os.PathLike) -> Path:
    """Where the digest observed for ``dest`` is recorded (``sha256sum -c`` format)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".sha256")


def read_sidecar(dest: str | os.PathLike) -> str | None:
    """The digest recorded for ``dest``, or None when there is none (or it is unreadable)."""
    try:
        text = sidecar_path(dest).read_text().split()
    except OSError:
        return None
    return text[0].lower() if text and re.fullmatch(r"[0-9a-fA-F]{64}", text[0]) else None


def _write_sidecar(dest: Path, digest: str) -> None:
    with atomic_path(sidecar_path(dest)) as tmp:
        tmp.write_text(f"{digest}  {dest.name}\n")


class _Restart(Exception):
    """The ``.part`` file cannot be continued: start again from byte 0 (does not count as a failure)."""


def _transient(err: BaseException) -> bool:
    if isinstance(err, urllib.error.HTTPError):
        return err.code >= 500 or err.code in (408, 429)
    return isinstance(err, (urllib.error.URLError, OSError, http.client.HTTPException))


def _describe(err: BaseException, url: str, timeout: float) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} for {url}"
    reason = err.reason if isinstance(err, urllib.error.URLError) else err
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"no response from {url} within {timeout:g} s"
    if isinstance(err, http.client.IncompleteRead):
        return f"connection to {url} closed before the file was complete"
    return f"cannot download {url} ({reason or type(reason).__name__})"


def _hash_prefix(part: Path) -> "hashlib._Hash":
    digest = hashlib.sha256()
    with open(part, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """Parse ``bytes START-END/TOTAL`` (or ``bytes */TOTAL``) into (START, TOTAL); None where absent."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)


def _attempt(url: str, part: Path, timeout: float, progress: Progress | None) -> str:
    """One HTTP request continuing ``part``; returns the hex digest of the complete file or raises."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": f"raygex/{__version__}", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            # Nothing left to send: either the part is already whole (crash before the rename) or stale.
            _, total = _content_range(err.headers.get("Content-Range"))
            err.close()
            if total == offset:
                return _hash_prefix(part).hexdigest()
            raise _Restart from None
        raise
    with response:
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and response.status == 206:
            start, _ = _content_range(response.headers.get("Content-Range"))
            if start != offset:
                raise _Restart
            digest, mode = _hash_prefix(part), "ab"
        else:  # a fresh download, or a server that ignored Range and sends the whole file again
            offset, digest, mode = 0, hashlib.sha256(), "wb"
        total = None if length is None else offset + length
        done = offset
        try:
            handle = open(part, mode)
        except OSError as err:
            raise DownloadError(f"cannot write the download ({err.strerror or err})", path=part) from None
        with handle:
            while block := response.read(CHUNK):
                try:
                    handle.write(block)
                except OSError as err:  # disk full, quota: not a network problem, so not retried
                    raise DownloadError(f"cannot write the download ({err.strerror or err})", path=part) from None
                digest.update(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)
    return digest.hexdigest()


def download(url: str, dest: str | os.PathLike, *, sha256: str | None = None, timeout: float = 60.0,
             retries: int = 3, backoff: float = 1.0, progress: Progress | None = None) -> Path:
    """Fetch ``url`` to ``dest`` (resumable, checksum-verified, atomically renamed) and return ``dest``.

    An existing ``dest`` is kept when it matches ``sha256`` (or, without one, its recorded sidecar digest).
    Connection failures, timeouts and HTTP 5xx are retried ``retries`` times, continuing the ``.part`` file;
    HTTP 4xx and a checksum mismatch fail at once with :class:`DownloadError` (the bad ``.part`` is deleted).
    ``timeout`` bounds every connect and read; ``progress(bytes_done, bytes_total_or_None)`` is called per chunk.
    """
    _check_url(url)
    expected = _check_sha256(sha256)
    if retries < 0:
        raise ConfigError(f"retries must be >= 0, but got {retries}")
    dest = Path(dest)
    if dest.is_dir():
        raise DownloadError("destination is a directory", path=dest)
    if dest.is_file():
        wanted = expected or read_sidecar(dest)
        actual = sha256_file(dest)
        if wanted is None or actual == wanted:
            if read_sidecar(dest) != actual:
                _write_sidecar(dest, actual)
            return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures, restarts, last = 0, 0, None
    while True:
        resumed = part.exists() and part.stat().st_size > 0
        try:
            digest = _attempt(url, part, timeout, progress)
        except _Restart:
            part.unlink(missing_ok=True)
            restarts += 1
            if restarts > 2:
                raise DownloadError(f"server keeps answering range requests wrongly for {url}") from None
            continue
        except Exception as err:  # noqa: BLE001 - classified below, re-raised if not a network error
            if not _transient(err) and not isinstance(err, urllib.error.HTTPError):
                raise
            if isinstance(err, urllib.error.HTTPError):
                err.close()  # it holds the open response
            last = err
            if not _transient(err) or failures >= retries:
                break
            failures += 1
            time.sleep(min(backoff * 2 ** (failures - 1), 30.0))
            continue
        if expected is not None and digest != expected:
            part.unlink(missing_ok=True)
            if resumed and restarts == 0:
                restarts += 1  # the old .part may belong to an older version of the file: try once from scratch
                continue
            raise DownloadError(f"checksum mismatch for {url}: expected sha256 {expected}, but got {digest}")
        os.replace(part, dest)
        _write_sidecar(dest, digest)
        return dest
    message = _describe(last, url, timeout)
    if failures:
        message += f" (after {failures + 1} attempts"
        message += "; the partial download is kept to resume)" if part.exists() else ")"
    raise DownloadError(message) from None


# --------------------------------------------------------------------------------------------- the catalogue


def check_cohort(cohort: str) -> str:
    """A Xena cohort code (``BRCA``, ``PANCAN``): upper-case letters and digits, so it is safe in a URL and path."""
    if not isinstance(cohort, str) or not COHORT_PATTERN.fullmatch(cohort):
        hint = ""
        if isinstance(cohort, str) and COHORT_PATTERN.fullmatch(cohort.strip().upper()):
            hint = f" (did you mean {cohort.strip().upper()!r}?)"
        raise ConfigError(f"cohort must be upper-case letters and digits like BRCA or PANCAN, but got "
                          f"{cohort!r}{hint}")
    return cohort


def xena_base_url(base_url: str | None = None) -> str:
    """The Xena hub download root: the argument, else ``$RAYGEX_XENA_URL``, else the public TCGA hub."""
    url = base_url or os.environ.get("RAYGEX_XENA_URL", "").strip() or XENA_DEFAULT_URL
    return _check_url(url, "Xena base URL").rstrip("/")


def xena_urls(cohort: str, base_url: str | None = None) -> dict[str, str]:
    """URLs of a cohort's ``HiSeqV2`` expression matrix and clinical matrix (``PANCAN`` for pan-cancer)."""
    cohort = check_cohort(cohort)
    root = f"{xena_base_url(base_url)}/TCGA.{cohort}.sampleMap"
    return {"expression": f"{root}/HiSeqV2.gz", "clinical": f"{root}/{cohort}_clinicalMatrix"}


def genemania_url(url: str | None = None) -> str:
    """The GeneMANIA network URL: the argument, else ``$RAYGEX_GENEMANIA_URL``, else GeneMANIA's own."""
    return _check_url(url or os.environ.get("RAYGEX_GENEMANIA_URL", "").strip() or GENEMANIA_DEFAULT_URL,
                      "GeneMANIA URL")


def _file_name(url: str, fallback: str) -> str:
    name = posixpath.basename(urllib.parse.unquote(urllib.parse.urlsplit(url).path))
    return name if name and name not in (".", "..") and "\\" not in name else fallback


def record(cache: str | os.PathLike, dest: str | os.PathLike, *, url: str, source: str) -> dict:
    """Add ``dest`` (URL, bytes, digest, time) to ``<cache>/manifest.json`` and return its entry.

    The manifest is the audit trail for inputs that have no published checksum: what was fetched, from where,
    and what it hashed to.
    """
    cache, dest = Path(cache), Path(dest)
    manifest_path = cache / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        files = manifest["files"] if isinstance(manifest.get("files"), dict) else {}
    except (OSError, ValueError, AttributeError, KeyError):
        files = {}
    try:
        key = dest.resolve().relative_to(cache.resolve()).as_posix()
    except ValueError:
        key = str(dest.resolve())
    entry = {"source": source, "url": url, "sha256": read_sidecar(dest) or sha256_file(dest),
             "bytes": dest.stat().st_size, "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    files[key] = entry
    with atomic_path(manifest_path) as tmp:
        tmp.write_text(json.dumps({"version": 1, "files": files}, indent=2, sort_keys=True) + "\n")
    return entry


def fetch_xena(cohort: str, *, cache: str | os.PathLike | None = None, base_url: str | None = None,
               sha256: dict[str, str] | None = None, progress_for: Callable[[str], Progress | None] | None = None,
               **options) -> dict[str, Path]:
    """Download a TCGA cohort's expression and clinical matrices into ``<cache>/xena/<COHORT>/``.

    ``sha256`` maps ``expression``/``clinical`` to expected digests; ``progress_for(kind)`` gives each file's
    progress callback; other ``options`` go to :func:`download`.
    """
    urls = xena_urls(cohort, base_url)
    sha256 = dict(sha256 or {})
    unknown = sorted(set(sha256) - set(urls))
    if unknown:
        raise ConfigError(f"sha256 keys must be expression or clinical, but got {unknown[0]!r}")
    cache = Path(cache) if cache is not None else default_cache_dir()
    folder = cache / "xena" / cohort
    paths = {}
    for kind, url in urls.items():
        dest = folder / _file_name(url, kind)
        try:
            progress = progress_for(kind) if progress_for is not None else None
            paths[kind] = download(url, dest, sha256=sha256.get(kind), progress=progress, **options)
        except DownloadError as err:
            if " 404 " in f" {err} " and cohort not in KNOWN_COHORTS:
                raise DownloadError(f"{err} (is {cohort!r} a cohort on this Xena hub? known TCGA cohorts include "
                                    "BRCA, LGG, LUAD, PANCAN)") from None
            raise
        record(cache, dest, url=url, source=f"xena:{cohort}:{kind}")
    return paths


def fetch_genemania(*, url: str | None = None, cache: str | os.PathLike | None = None,
                    sha256: str | None = None, **options) -> Path:
    """Download the GeneMANIA network into ``<cache>/genemania/`` and record its observed digest."""
    url = genemania_url(url)
    cache = Path(cache) if cache is not None else default_cache_dir()
    dest = download(url, cache / "genemania" / _file_name(url, "genemania.txt"), sha256=sha256, **options)
    record(cache, dest, url=url, source="genemania")
    return dest


def graph_import_options(path: str | os.PathLike) -> dict:
    """How ``raygex graph import`` reads a fetched graph file, from its first lines: ``id_type`` and
    ``weight_column``.

    GeneMANIA's own network files are edge lists ``Gene_A  Gene_B  Weight`` keyed by Ensembl gene ids (mapped to
    symbols through raygex's shipped HGNC table); adjacency lists such as ``genemania.adjlist.gz`` name symbols.
    """
    path = Path(path)
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows = []
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip() and not line.lstrip().startswith("#"):
                    rows.append(line.split())
                if len(rows) == 2:
                    break
    except (OSError, EOFError) as err:
        raise InputFormatError(f"cannot read the downloaded graph ({err})", path=path) from None
    if not rows:
        raise InputFormatError("the downloaded graph is empty (no lines outside '#' comments)", path=path)
    weight = next((t for t in rows[0] if t.lower() == "weight"), None)
    data = rows[1] if weight is not None and len(rows) > 1 else rows[0]
    first = data[0] if data else ""
    id_type = ("ensembl" if re.fullmatch(r"ENS[A-Z]*G\d+(\.\d+)?", first)
               else "entrez" if re.fullmatch(r"\d+", first) else "symbol")
    return {"id_type": id_type, "weight_column": None if ".adjlist" in path.name.lower() else weight}
