"""One registry per vocabulary: model families with their hyperparameters and defaults, read by the network
classes, the training loop, the search space and `raygex train`."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from raygex.graphs.align import AlignedGraph
from raygex.models import FAMILIES
from raygex.models.gcn import GCN, GCN_DEFAULTS
from raygex.models.registry import families_using, family_names, known_hyperparameters, model_defaults
from raygex.search.space import applies, parse_space
from raygex.training.loop import build_model, default_hyperparameters


def test_families_and_their_parameters_come_from_the_registry():
    assert family_names() == ("gcn", "mlp", "lr")
    assert families_using("depth") == ("gcn",) and families_using("hidden") == ("mlp",)
    assert families_using("dropout") == ("gcn", "mlp") and families_using("lr") == ("gcn", "mlp")
    # logistic regression is fitted by a convex solver: its inverse L2 strength C is its only parameter
    assert families_using("C") == ("lr",) and not applies("weight_decay", "lr") and not applies("batch_size", "lr")
    assert applies("graph", "gcn") and not applies("graph", "mlp") and not applies("depth", "lr")
    assert {"model", "lr", "weight_decay", "batch_size", "depth", "hidden"} <= known_hyperparameters()
    # the search space accepts exactly the registry's names
    parse_space({"model": ["mlp"], "mlp_layers": [1, 2]}, [])
    with pytest.raises(Exception, match="not a known hyperparameter"):
        parse_space({"model": ["mlp"], "layers": [1, 2]}, [])


def test_gcn_defaults_agree_everywhere():
    """The trial's defaults, the builder's and the class's are the registry's (they used to be 2/32/8 vs 3/64/32)."""
    trial = default_hyperparameters("gcn")
    signature = inspect.signature(GCN.__init__).parameters
    for name in ("depth", "channels", "embedding", "dropout"):
        assert trial[name] == GCN_DEFAULTS[name] == signature[name].default == FAMILIES["gcn"].hyperparameters[name]
    n = 12
    edges = np.array([[i, (i + 1) % n] for i in range(n)] + [[(i + 1) % n, i] for i in range(n)]).T
    graph = AlignedGraph(n, edges.astype(np.int64), None, [f"G{i}" for i in range(n)], "ring")
    built = build_model({"model": "gcn"}, n, 2, graph)
    assert (built.depth, built.channels, built.embedding) == (GCN_DEFAULTS["depth"], GCN_DEFAULTS["channels"],
                                                              GCN_DEFAULTS["embedding"])
    assert built(torch.randn(3, n)).shape == (3, 2)


def test_training_defaults_are_the_configs_and_the_optimisers():
    from raygex.config import TrainConfig

    trial = default_hyperparameters("mlp")
    assert {k: trial[k] for k in TrainConfig.model_fields} == TrainConfig().model_dump()
    assert trial["lr"] == model_defaults("lr")["lr"] and "depth" not in trial
    with pytest.raises(ValueError, match="model must be one of"):
        model_defaults("svm")
