"""What a trial compares: its *choice* — a baseline family (``mlp``, ``lr``) or the GCN on one graph
(``gcn/<graph>``) — and whether that graph is a real one or a control (``<graph>:random``, ``empty``,
``coexpression``: :func:`raygex.graphs.controls.parse_control`).

Every module that groups trials by choice or tells graphs from controls asks here.
"""

from __future__ import annotations

import pandas as pd

from raygex.graphs.controls import RANDOM_SUFFIX, parse_control

CHOICE_KINDS = ("graph", "control", "baseline")


def choice_of(row) -> str:
    """A leaderboard row's choice: ``gcn/<graph>`` for GCNs, else the model family."""
    model = str(row.get("config/model"))
    return f"gcn/{row.get('config/graph')}" if model == "gcn" else model


def choice_kind(choice: str) -> str:
    """"graph", "control" or "baseline": how a choice is coloured and compared."""
    if not choice.startswith("gcn/"):
        return "baseline"
    return "control" if parse_control(choice.split("/", 1)[1]) is not None else "graph"


def graph_of(choice: str) -> str | None:
    """The graph name of a GCN choice (None for a baseline)."""
    return choice.split("/", 1)[1] if choice.startswith("gcn/") else None


def controls_of(graph: str, graph_choices) -> list[str]:
    """The controls a real graph is compared with: its own randomisation, the empty graph, co-expression (those
    among ``graph_choices``)."""
    wanted = [f"{graph}{RANDOM_SUFFIX}", "empty", "coexpression"]
    return [name for name in wanted if name in graph_choices]


def best_per_choice(board: pd.DataFrame) -> pd.DataFrame:
    """The best finished trial of each choice (the leaderboard is ranked on validation), with a ``choice`` column."""
    finished = board[board["status"] != "ERROR"].copy()
    finished["choice"] = [choice_of(row) for _, row in finished.iterrows()]
    return finished.drop_duplicates("choice", keep="first")
