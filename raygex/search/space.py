"""The search space: config syntax → an Optuna define-by-run function with conditional parameters.

Syntax (``search.space`` in a config):

* ``[a, b, c]`` or ``{choice: [...]}``: categorical;
* ``{int: [lo, hi]}``, ``{float: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{logint: [lo, hi]}``;
* a scalar: a constant; ``graph: all``: every configured graph and control.

Parameters belong to model families (``depth`` exists only for GCNs, ``hidden`` only for MLPs, logistic
regression has only the optimiser's), which the define-by-run space expresses directly: a parameter is sampled
only when the sampled ``model`` uses it, so TPE never models values that had no effect.
"""

from __future__ import annotations

import itertools
from typing import Any

from raygex.errors import ConfigError
from raygex.models.registry import families_using, family_names, known_hyperparameters

KINDS = ("choice", "int", "float", "loguniform", "logint")


def _number(value: Any, where: str) -> float:
    try:
        return float(value)  # YAML 1.1 reads 1e-3 (no dot) as a string
    except (TypeError, ValueError):
        raise ConfigError(f"search.space.{where} must be numbers, but got {value!r}") from None


def parse_param(name: str, spec: Any, graph_choices: list[str]) -> tuple[str, Any]:
    """One parameter as (kind, argument): ('const', v), ('choice', [...]), ('int', (lo, hi)), ..."""
    if name == "graph" and spec == "all":
        if not graph_choices:
            raise ConfigError("search.space.graph is 'all' but the config has no graphs")
        return "choice", list(graph_choices)
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"search.space.{name} is an empty list")
        return "choice", list(spec)
    if isinstance(spec, dict):
        if len(spec) != 1 or next(iter(spec)) not in KINDS:
            raise ConfigError(f"search.space.{name} must be a list, a scalar or one of "
                              f"{{{', '.join(k + ': ...' for k in KINDS)}}}, but got {spec!r}")
        kind, arg = next(iter(spec.items()))
        if kind == "choice":
            if not isinstance(arg, list) or not arg:
                raise ConfigError(f"search.space.{name}.choice must be a non-empty list, but got {arg!r}")
            return "choice", list(arg)
        if not isinstance(arg, list) or len(arg) != 2:
            raise ConfigError(f"search.space.{name}.{kind} must be [low, high], but got {arg!r}")
        lo, hi = (_number(v, f"{name}.{kind}") for v in arg)
        if not lo < hi or (kind in ("loguniform", "logint") and lo <= 0):
            raise ConfigError(f"search.space.{name}.{kind} must have 0 < low < high (low > 0 for log scales), "
                              f"but got {arg!r}")
        return kind, (lo, hi)
    return "const", spec


def parse_space(space: dict, graph_choices: list[str]) -> dict[str, tuple[str, Any]]:
    """Validate ``search.space``; unknown parameters and empty spaces are errors naming the key."""
    if not space:
        raise ConfigError("search.space is empty: give at least `model: [gcn, mlp, lr]`")
    known = known_hyperparameters()
    unknown = sorted(set(space) - known)
    if unknown:
        raise ConfigError(f"search.space.{unknown[0]} is not a known hyperparameter (known: {sorted(known)})")
    parsed = {name: parse_param(name, spec, graph_choices) for name, spec in space.items()}
    families = family_names()
    parsed.setdefault("model", ("choice", list(families)))
    models = sampled_models(parsed)
    bad = [m for m in models if m not in families]
    if bad:
        raise ConfigError(f"search.space.model must be among {list(families)}, but got {bad[0]!r}")
    if "gcn" in models and "graph" not in parsed:
        if not graph_choices:
            raise ConfigError("search.space.model includes gcn but the config has no graphs")
        parsed["graph"] = ("choice", list(graph_choices))
    if "graph" in parsed and parsed["graph"][0] == "choice":
        missing = [g for g in parsed["graph"][1] if g not in graph_choices]
        if missing:
            raise ConfigError(f"search.space.graph {missing[0]!r} is not a configured graph or control "
                              f"(choices: {graph_choices})")
    return parsed


def applies(name: str, model: str) -> bool:
    """Whether hyperparameter ``name`` exists for family ``model`` (the model registry says)."""
    return model in families_using(name)


class DefineByRun:
    """An Optuna define-by-run space: samples ``model`` first, then only that family's parameters.

    A class rather than a closure because Tune pickles the searcher (with this space) into its checkpoints.
    """

    def __init__(self, parsed: dict[str, tuple[str, Any]]):
        self.parsed = parsed

    def __call__(self, trial) -> dict:
        constants = {}
        kind, arg = self.parsed["model"]
        model = trial.suggest_categorical("model", arg) if kind == "choice" else arg
        if kind != "choice":
            constants["model"] = model
        for name, (kind, arg) in self.parsed.items():
            if name == "model" or not applies(name, model):
                continue
            if kind == "const":
                constants[name] = arg
            elif kind == "choice":
                trial.suggest_categorical(name, arg)
            elif kind == "int":
                trial.suggest_int(name, int(arg[0]), int(arg[1]))
            elif kind == "logint":
                trial.suggest_int(name, int(arg[0]), int(arg[1]), log=True)
            elif kind == "float":
                trial.suggest_float(name, arg[0], arg[1])
            else:
                trial.suggest_float(name, arg[0], arg[1], log=True)
        return constants


def define_by_run(parsed: dict[str, tuple[str, Any]]) -> DefineByRun:
    return DefineByRun(parsed)


START_TRIALS = ("choices", "families")  # search.start_trials: what the sweep tries first, before TPE samples


def choice_points(parsed: dict[str, tuple[str, Any]], limit: int, start: str = "choices") -> list[dict]:
    """The trials enqueued before TPE samples (:func:`start_points`): the other parameters are still sampled; only
    ``choice`` parameters are pinned.

    A trial budget (``limit``, the study's ``num_samples``) below the number of start trials is refused:
    truncating would silently drop the controls, which are listed last.
    """
    points = start_points(parsed, start)
    if len(points) > limit:
        raise ConfigError(f"search.num_samples must be at least the number of start trials ({len(points)}: "
                          f"{', '.join(describe_point(p) for p in points)}), but got {limit}; each is tried once "
                          f"before TPE samples (search.start_trials: {start})")
    return points


def start_points(parsed: dict[str, tuple[str, Any]], start: str = "choices") -> list[dict]:
    """``choices``: one trial per choice (each baseline family, and the GCN on every graph and control), so every
    study's sweep holds its baselines and controls whatever TPE would have sampled. ``families``: one trial per
    model family (the GCN on the first graph): the baselines' figures still come from their own trials, and every
    graph's and control's from the graph swap, which retrains the best GCN with each."""
    if start not in START_TRIALS:
        raise ConfigError(f"search.start_trials must be one of {', '.join(START_TRIALS)}, but got {start!r}")
    points = all_choices(parsed)
    if start == "families":
        families: dict[Any, dict] = {}
        for point in points:
            families.setdefault(point.get("model", "gcn"), point)
        points = list(families.values())
    return points


def all_choices(parsed: dict[str, tuple[str, Any]]) -> list[dict]:
    """The pinned part of every choice: baselines first, then the GCN on each graph and control."""
    kind = parsed["model"][0]
    models = sampled_models(parsed)
    points: list[dict] = []
    for model in [m for m in models if m != "gcn"] + (["gcn"] if "gcn" in models else []):
        pinned = {"model": model} if kind == "choice" else {}
        graph_kind, graphs = parsed.get("graph", ("const", None))
        if model == "gcn" and graph_kind == "choice":
            points += [{**pinned, "graph": graph} for graph in graphs]
        else:
            points.append(pinned)
    return [p for p in points if p]


def describe_point(point: dict) -> str:
    return "/".join(str(v) for v in point.values())


def sampled_models(parsed: dict[str, tuple[str, Any]]) -> list:
    """The model families the space can sample (one when ``model`` is a constant)."""
    kind, models = parsed["model"]
    return list(models) if kind == "choice" else [models]


def _sampled_params(parsed: dict[str, tuple[str, Any]], model: str):
    """(name, kind, argument) of every parameter sampled for family ``model`` (constants are not sampled)."""
    for name, (kind, arg) in parsed.items():
        if name != "model" and applies(name, model) and kind != "const":
            yield name, kind, arg


def family_dimensions(parsed: dict[str, tuple[str, Any]]) -> dict[str, int]:
    """How many parameters each family of the space searches (``model`` aside; a GCN's ``graph`` counts)."""
    return {model: sum(1 for _ in _sampled_params(parsed, model)) for model in sampled_models(parsed)}


def family_sizes(parsed: dict[str, tuple[str, Any]]) -> dict[str, int | None]:
    """Each family's number of distinct configurations, counted, not listed (None when it has a continuous
    parameter)."""
    sizes: dict[str, int | None] = {}
    for model in sampled_models(parsed):
        count: int | None = 1
        for _, kind, arg in _sampled_params(parsed, model):
            if kind == "choice":
                count *= len(arg)
            elif kind in ("int", "logint"):
                count *= int(arg[1]) - int(arg[0]) + 1
            else:
                count = None
                break
        sizes[model] = count
    return sizes


def _finite_values(kind: str, arg) -> list | None:
    """Every value of a finite parameter (a choice or an integer range), None for a continuous one."""
    if kind == "choice":
        return list(arg)
    if kind in ("int", "logint"):
        return list(range(int(arg[0]), int(arg[1]) + 1))
    return None


def family_points(parsed: dict[str, tuple[str, Any]], model: str) -> list[dict] | None:
    """Every distinct sampled-parameter set of family ``model`` (the ``model`` choice included when it is sampled),
    or None when the family has a continuous parameter."""
    names, values = [], []
    for name, kind, arg in _sampled_params(parsed, model):
        finite = _finite_values(kind, arg)
        if finite is None:
            return None
        names.append(name)
        values.append(finite)
    base = {"model": model} if parsed["model"][0] == "choice" else {}
    return [{**base, **dict(zip(names, combo))} for combo in itertools.product(*values)]


def space_size(parsed: dict[str, tuple[str, Any]]) -> int | None:
    """How many distinct configurations the space holds (counted, not listed), None when any sampled family has
    a continuous parameter."""
    sizes = family_sizes(parsed).values()
    return None if None in sizes else sum(sizes)


def study_budget(config) -> tuple[int, str | None]:
    """Trials per study: ``search.num_samples``, capped at the space's size when the space is finite (no
    configuration runs twice), with the line that says so."""
    parsed = parse_space(config.search.space, config.graph_choices())
    size = space_size(parsed)
    if size is not None and size < config.search.num_samples:
        return size, (f"search.num_samples is {config.search.num_samples}, but the space holds only {size} distinct "
                      f"configurations: each runs once ({size} trials per study)")
    return config.search.num_samples, None
