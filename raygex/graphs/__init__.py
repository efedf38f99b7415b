"""Gene interaction graphs: import (ids mapped to HGNC symbols), storage, alignment to a dataset, controls."""

from raygex.graphs.align import AlignedGraph, adjacency_csr, align_graph
from raygex.graphs.controls import (CONTROL_KINDS, build_control, coexpression_control, empty_control,
                                    random_control)
from raygex.graphs.io import import_graph
from raygex.graphs.store import Graph, read_graph, write_graph

__all__ = ["AlignedGraph", "CONTROL_KINDS", "Graph", "adjacency_csr", "align_graph", "build_control",
           "coexpression_control", "empty_control", "import_graph", "random_control", "read_graph",
           "write_graph"]
