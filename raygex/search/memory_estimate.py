"""What one trial's process needs in memory, from its configuration and its study's shape
(``resources.memory_mb: auto``): Ray then reserves that much for each trial and each later-stage training, so a
node runs only as many at once as its memory holds and queues the rest instead of its OOM monitor killing them.

The estimate, in MiB: :data:`WORKER_MB` (a Ray worker with torch and raygex imported, before any trial) plus
:data:`MARGIN` × (:data:`TRIAL_MB` + state + workspace):

* state: the network's parameters and buffers, counted on the network itself (built once per shape on the CPU),
  times 6: weights, gradients, Adam's two moments, the best epoch's copy and a checkpoint's copy;
* workspace, the larger of
  - training, one batch: a GCN keeps per layer its ``(genes × batch × channels)`` output, node-dropout mask and
    their gradient (3 per layer); an MLP ``(batch × width)`` per layer; a convex fit (logistic regression) its
    float64 copy of the rows it fits (one split: the refit's training and validation rows), the L-BFGS history
    and SciPy's optimiser (:data:`SCIPY_MB`);
  - evaluation, without gradients, a batch of ``min(256, rows)`` of the validation or test rows (the training
    rows are scored from their own batches, never evaluated again): 6 tensors of
    ``(genes × batch × channels)`` for a GCN (measured: the sparse product's operands and result, the layer's
    output and its activation are alive at once);
* a family registered elsewhere (no arithmetic here): the floats per row autograd keeps of one training step on
  its network (:func:`_saved_floats_per_row`, plain tensor operations' results included), times 3 per training
  row of a batch plus 2 per evaluated row;
* with k folds: k networks' state, and k workspaces only when the folds train as one batched model;
* a split's rows are mapped from Ray's object store (not private); a streamed study's batches are counted as
  workspace, and its logistic regression trains by minibatch Adam (workspace as an MLP's).

The trial's part (all but :data:`WORKER_MB`) is checked against the memory a configuration's training adds,
measured (``tests/search/test_memory_estimate.py``: each measured growth stays below it, and it is not far above;
``raygex bench memory --estimates`` prints the table for the demo's and a GeneMANIA-size shape); the worker's own
figure is what a trial actor's private memory measures at its first trial (~245 MiB) plus torch's libraries.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass

logger = logging.getLogger(__name__)

WORKER_MB = 500.0  # a Ray worker process with torch and raygex imported (RSS), before a trial's networks
MARGIN = 1.5  # above the counted state and workspace: allocator slack, autograd's temporaries, Python objects
EVAL_BATCH = 256  # raygex.training.loop.predict_proba's batch
EVAL_TENSORS = 6  # (genes × batch × channels) tensors alive at once while a GCN evaluates (measured)
SCIPY_MB = 40.0  # SciPy's optimiser, imported by a convex fit
TRIAL_MB = 20.0  # a trial's fixed costs: autograd's and the optimiser's first use
STEP_MB = 256  # reservations are whole steps of this
_BYTES = 4  # float32
_SHAPE_FREE = ("lr", "weight_decay", "dropout", "C", "seed", "max_epochs", "patience", "metric")


@dataclass(frozen=True)
class StudyShape:
    """What the estimate needs of a study: input genes, classes, rows per split, folds (1: one split)."""

    n_genes: int
    n_classes: int
    rows: dict  # split -> rows ("train", "valid", "test")
    folds: int = 1
    batched_folds: bool = False  # the folds' networks train at once (k working sets), else one after another
    streaming: bool = False  # the rows stream in batches (a convex family then trains by minibatch Adam)


def study_shape(plan, *, batched_folds: bool = False, streaming: bool = False) -> StudyShape:
    """A :class:`StudyShape` from a study's split plan (:class:`raygex.data.study_rows.StudyPlan`) or its arrays
    (:class:`raygex.data.trial_data.TrialData`)."""
    if hasattr(plan, "labels"):
        rows = {split: len(labels) for split, labels in plan.labels.items()}
    else:
        rows = {"train": len(plan.y_train), "valid": len(plan.y_valid), "test": len(plan.y_test)}
    return StudyShape(len(plan.genes), len(plan.classes), rows, len(plan.folds) if plan.folds else 1,
                      batched_folds=batched_folds, streaming=streaming)


_state_cache: dict[str, tuple[object, int]] = {}  # key -> (the graph, kept so its id is not reused; floats)


def _state_floats(hparams: dict, shape: StudyShape, graph) -> int:
    """Parameters and buffers of the configuration's network (floats), counted on the network built once."""
    from raygex.training.loop import build_model

    key = json.dumps({k: v for k, v in sorted(hparams.items()) if k not in _SHAPE_FREE}, default=str)
    key += f"|{shape.n_genes}|{shape.n_classes}|{id(graph)}"
    if key not in _state_cache:
        model = build_model(hparams, shape.n_genes, shape.n_classes, graph)
        _state_cache[key] = (graph, sum(t.numel() for t in [*model.parameters(), *model.buffers()]))
    return _state_cache[key][1]


def trial_memory_mb(hparams: dict, shape: StudyShape, graph=None) -> float:
    """The MiB one trial of ``hparams`` (search and training hyperparameters) needs on ``shape``'s study,
    rounded up to 10 MiB; ``graph``: the GCN's aligned graph choice."""
    from raygex.models.registry import solver_of

    family = str(hparams.get("model", "gcn"))
    state = 6 * _state_floats(hparams, shape, graph)
    genes, train = shape.n_genes, max(shape.rows.get("train", 1), 1)
    batch = min(int(hparams.get("batch_size", 32)), train)
    evaluated = min(EVAL_BATCH, max([n for split, n in shape.rows.items() if split != "train"], default=1) or 1)
    convex = solver_of(family) == "lbfgs" and not shape.streaming  # streamed: minibatch Adam, as an MLP
    if convex:  # float64 rows (one split: refitted on training + validation rows), L-BFGS history
        fitted = train + (shape.rows.get("valid", 0) if shape.folds == 1 else 0)
        workspace = 2 * fitted * genes * 2 + 20 * genes * shape.n_classes * 2
    elif family == "gcn":
        depth, channels = int(hparams.get("depth", 2)), int(hparams.get("channels", 32))
        embedding = int(hparams.get("embedding", 1))
        training = genes * batch * (3 * depth * channels + 2 * embedding)
        evaluation = EVAL_TENSORS * genes * evaluated * max(channels, embedding)
        workspace = max(training, evaluation)
    elif family not in ("mlp", "lr") and _saved_floats_per_row(hparams, shape, graph) is not None:
        # a family registered elsewhere: what autograd keeps of a training step, measured per row; training holds
        # it, its gradients and a temporary, evaluation two per evaluated row, and both count, as the training
        # step's freed blocks need not fit evaluation's larger ones (measured: 3 and 1.5)
        workspace = _saved_floats_per_row(hparams, shape, graph) * (3 * batch + 2 * evaluated)
    else:  # an MLP, a streamed logistic regression (one layer), or a family that could not be measured
        widths = [genes, *_hidden(hparams), shape.n_classes]
        workspace = 3 * max(batch, evaluated) * sum(widths)
    # k fold networks are kept either way; their working sets are alive at once only when batched
    working_sets = shape.folds if shape.batched_folds else 1
    need = TRIAL_MB + (state * shape.folds + workspace * working_sets) * _BYTES / 2**20
    if convex:
        need += SCIPY_MB
    return math.ceil((WORKER_MB + MARGIN * need) / 10) * 10


def reservation_mb(hparams: dict, shape: StudyShape, graph=None, largest_node_mb: float | None = None) -> float:
    """What Ray reserves for the trial: :func:`trial_memory_mb` rounded up to :data:`STEP_MB` (Tune reuses a
    worker only for a trial of the same request: few distinct requests keep workers reused), and no more than the
    largest node's memory (a request no node holds would wait forever; said once per size in the log)."""
    mb = math.ceil(trial_memory_mb(hparams, shape, graph) / STEP_MB) * STEP_MB
    if largest_node_mb is None or mb <= largest_node_mb:
        return mb
    if mb not in _capped:
        _capped.add(mb)
        logger.warning(f"a {hparams.get('model')} trial's memory estimate ({mb} MiB) exceeds the largest node's "
                       f"{largest_node_mb:.0f} MiB: it reserves the whole node and may run out of memory")
    return largest_node_mb


_capped: set = set()


_saved_cache: dict[str, tuple[object, float | None]] = {}
_MEASURE_ROWS = (2, 4)  # two small batches: their difference per row leaves out what does not grow with rows
_OPTIMISER_ONLY = ("lr", "weight_decay", "C", "seed", "max_epochs", "patience", "metric", "batch_size")
_unmeasured: set = set()  # families whose measurement failed (warned once each)


def _saved_floats_per_row(hparams: dict, shape: StudyShape, graph) -> float | None:
    """Float32-equivalents per input row that autograd keeps for the backward pass of the configuration's network
    (every strided tensor saved by a forward, each storage once; intermediate results of plain tensor operations
    included), for a family whose working set has no arithmetic here: measured at two small batches, so tensors
    that do not grow with the rows (weights, a graph) cancel out. None when the network cannot be measured so
    (said once per family)."""
    import torch

    from raygex.training.loop import build_model

    key = json.dumps({k: v for k, v in sorted(hparams.items()) if k not in _OPTIMISER_ONLY}, default=str)
    key += f"|{shape.n_genes}|{shape.n_classes}|{id(graph)}"
    if key not in _saved_cache:
        try:
            model = build_model(hparams, shape.n_genes, shape.n_classes, graph).train()
            first = next(model.parameters(), None)
            device = None if first is None else first.device
            kept = []
            for rows in _MEASURE_ROWS:
                seen: dict = {}

                def pack(tensor, seen=seen):
                    if tensor.layout == torch.strided:
                        storage = tensor.untyped_storage()
                        seen[storage.data_ptr()] = storage.nbytes() / _BYTES
                    return tensor

                with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
                    logits = model(torch.zeros(rows, shape.n_genes, device=device))
                kept.append(sum(seen.values()) + logits.numel())
                del logits
            per_row = max(0.0, (kept[1] - kept[0]) / (_MEASURE_ROWS[1] - _MEASURE_ROWS[0]))
        except Exception as error:  # a family this cannot run (a device it needs, an input it refuses)
            per_row = None
            if hparams.get("model") not in _unmeasured:
                _unmeasured.add(hparams.get("model"))
                logger.warning(f"the {hparams.get('model')} family's working set could not be measured ({error}); "
                               "its memory estimate counts it as an MLP's")
        _saved_cache[key] = (graph, per_row)
    return _saved_cache[key][1]


def _hidden(hparams: dict) -> list[int]:
    from raygex.models.mlp import MLP_DEFAULTS

    p = {**MLP_DEFAULTS, **hparams}
    hidden = p["hidden"]
    return [int(hidden)] * int(p["mlp_layers"]) if isinstance(hidden, (int, float)) else [int(h) for h in hidden]
