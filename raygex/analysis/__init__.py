"""Analysis: what a finished sweep says — choices and leaderboards, the evaluation over split seeds, the
equal-budget graph swap, the verdicts (bootstrap + Holm) and a running sweep's status. Reads the experiment
folder; never drives Ray Tune."""
