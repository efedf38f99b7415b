"""Bytes read from an object store, counted per Ray node by the tasks that read them (``raygex bench scale``).

Every node reaches an S3 server on a test machine at the same address, so the server cannot tell the nodes
apart; the reading tasks can. :func:`counted` wraps a pyarrow file system so that every file opened through it
adds the bytes read from it, when it is closed, to a named Ray actor (:class:`ReadCounter`, created by whoever
wants the figures), under the id of the node the reading process runs on. Only a run with the
``RAYGEX_COUNT_READS`` variable set to the actor's name is wrapped (:func:`read_counter_name`): the sweeps'
ordinary reads go straight to pyarrow.
"""

from __future__ import annotations

import os

import pyarrow as pa
from pyarrow import fs as pafs

COUNT_READS_ENV = "RAYGEX_COUNT_READS"
NAMESPACE = "raygex-bench"


def read_counter_name() -> str | None:
    """The counting actor's name when this process's reads are to be counted, else None."""
    return os.environ.get(COUNT_READS_ENV) or None


class ReadCounter:
    """A Ray actor's class: bytes read per node id (and the reports that added them)."""

    def __init__(self):
        self.bytes: dict[str, int] = {}
        self.reports: dict[str, int] = {}

    def add(self, node: str, n_bytes: int) -> None:
        self.bytes[node] = self.bytes.get(node, 0) + int(n_bytes)
        self.reports[node] = self.reports.get(node, 0) + 1

    def totals(self) -> dict:
        return {"bytes": dict(self.bytes), "reports": dict(self.reports)}


def start_counter(name: str):
    """The named, detached counting actor (a driver of another job reaches it by ``name``)."""
    import ray

    return ray.remote(num_cpus=0)(ReadCounter).options(name=name, namespace=NAMESPACE, lifetime="detached",
                                                       get_if_exists=True).remote()


def counted(filesystem, name: str):
    """``filesystem`` (pyarrow) whose opened files report their bytes read to the counter ``name``."""
    return pafs.PyFileSystem(_CountingHandler(filesystem, name))


class _CountedFile:
    """A pyarrow file read through Python: every byte handed out is counted and reported to the counter in
    steps of :data:`REPORT_EVERY` bytes and when the file is closed or dropped (a reader may never close it)."""

    REPORT_EVERY = 8 * 2**20

    def __init__(self, inner, counter: str):
        self.inner, self.counter, self.unreported, self.closed = inner, counter, 0, False

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read() if n is None or n < 0 else self.inner.read(n)
        self.unreported += len(data)
        if self.unreported >= self.REPORT_EVERY:
            self.report()
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.inner.seek(offset, whence)

    def tell(self) -> int:
        return self.inner.tell()

    def size(self) -> int:
        return self.inner.size()

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return False

    def report(self) -> None:
        if not self.unreported:
            return
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "driver"
        ray.get_actor(self.counter, namespace=NAMESPACE).add.remote(node, self.unreported)
        self.unreported = 0

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.inner.close()
            self.report()

    def __del__(self):
        try:
            self.report()
        except Exception:  # noqa: BLE001 -- at interpreter exit Ray may be gone: nothing to report to
            pass


class _CountingHandler(pafs.FileSystemHandler):
    """A pyarrow ``FileSystemHandler`` over another file system: reads counted, everything else passed on."""

    def __init__(self, inner, counter: str):
        self.inner, self.counter = inner, counter

    def __eq__(self, other):
        return isinstance(other, _CountingHandler) and other.inner.equals(self.inner)

    def __ne__(self, other):
        return not self == other

    def get_type_name(self) -> str:
        return f"counted-{self.inner.type_name}"

    def normalize_path(self, path: str) -> str:
        return self.inner.normalize_path(path)

    def get_file_info(self, paths):
        return self.inner.get_file_info(paths)

    def get_file_info_selector(self, selector):
        return self.inner.get_file_info(selector)

    def open_input_file(self, path: str):
        return pa.PythonFile(_CountedFile(self.inner.open_input_file(path), self.counter), mode="r")

    def open_input_stream(self, path: str):
        return self.open_input_file(path)

    def _refused(self, *_args, **_kwargs):
        raise OSError("a counted file system only reads")

    create_dir = delete_dir = delete_dir_contents = delete_root_dir_contents = delete_file = _refused
    move = copy_file = open_output_stream = open_append_stream = _refused
