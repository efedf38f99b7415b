"""Training: one trial's loop (:mod:`~raygex.training.loop`, one split or k folds in lockstep) and its optimiser
(:mod:`~raygex.training.optimiser`). Knows nothing of Ray: the same loop runs in a Tune trial, in `raygex train`
and in the evaluation over split seeds."""
