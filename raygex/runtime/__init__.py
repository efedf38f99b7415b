"""Runtime: the surroundings of a raygex process — joining Ray (:mod:`~raygex.runtime.ray_session`), the driver's
console and log (:mod:`~raygex.runtime.console`), the W&B switch (:mod:`~raygex.runtime.wandb_guard`), a trial's
share of a GPU and its memory allocator."""
