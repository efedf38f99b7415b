"""Ray's private node statistics, for the benchmarks that measure each node's object store (Ray has no public
API for another node's store bytes)."""

from __future__ import annotations


def object_store_stats(ip: str, port: int):
    """The node's object-store statistics (``object_store_bytes_used``, ``object_store_bytes_primary_copy``,
    ``spilled_bytes_total``) from its raylet at ``ip:port``; raises when the node does not answer."""
    from ray._private.internal_api import node_stats  # Ray's private API, imported only where a bench samples it

    return node_stats(ip, port, include_memory_info=False).store_stats
