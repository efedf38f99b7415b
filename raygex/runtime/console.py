"""The driver's console: progress and results for people; Ray's, Tune's, Ray Data's and Python warnings' messages
(torch's among them) go to the experiment's ``logs/driver.log`` instead, and to the console too with ``-v``.

raygex's own progress, results and notes are ``logging`` records of the ``raygex`` logger (each module logs under
its own name): the CLI shows them (:func:`show_messages`, info on stdout, warnings on stderr, the message alone);
a program that uses raygex as a library configures logging as it likes.

Trial workers' output never reaches the console (Ray is started with ``log_to_driver=False``); it stays in
Ray's session logs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

CHATTER_LOGGERS = ("ray", "ray.data", "ray.tune", "ray.train", "ray.air", "py.warnings")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _is_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)


@contextlib.contextmanager
def chatter_to(log_file: Path, verbose: bool = False):
    """While in the block, the chatter loggers write to ``log_file`` (appended); their console handlers are
    removed unless ``verbose``. Everything is put back on exit."""
    import ray.data  # Ray Data sets up its loggers when imported: route them after that

    log_file.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter(FORMAT))
    context = ray.data.DataContext.get_current()
    saved_bars = context.enable_progress_bars
    saved = []
    logging.captureWarnings(True)
    try:
        for name in CHATTER_LOGGERS:
            logger = logging.getLogger(name)
            saved.append((logger, list(logger.handlers), logger.propagate))
            if not verbose:
                for console in [h for h in logger.handlers if _is_console(h)]:
                    logger.removeHandler(console)
            logger.addHandler(handler)
        logging.getLogger("py.warnings").propagate = verbose  # the root logger's last resort prints to stderr
        context.enable_progress_bars = verbose and saved_bars
        yield log_file
    finally:
        for logger, handlers, propagate in saved:
            logger.handlers[:] = handlers
            logger.propagate = propagate
        logging.captureWarnings(False)
        context.enable_progress_bars = saved_bars
        handler.close()


class _Console(logging.StreamHandler):
    """A handler writing to whatever ``sys.stdout`` / ``sys.stderr`` is when a record comes (a test or a tool may
    swap them)."""

    def __init__(self, which: str):
        super().__init__()
        self.which = which

    @property
    def stream(self):
        return getattr(sys, self.which)

    @stream.setter
    def stream(self, value):  # StreamHandler sets it once; the current stream is looked up at each record
        pass


def show_messages(level: int = logging.INFO) -> None:
    """Print the ``raygex`` logger's records from ``level`` on: below warnings on stdout, warnings and errors on
    stderr, each as its message alone (once per process)."""
    logger = logging.getLogger("raygex")
    logger.setLevel(level)
    if any(isinstance(h, _Console) for h in logger.handlers):
        return
    out, err = _Console("stdout"), _Console("stderr")
    out.addFilter(lambda record: record.levelno < logging.WARNING)
    err.setLevel(logging.WARNING)
    for handler in (out, err):
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


@contextlib.contextmanager
def quiet(level: int = logging.WARNING):
    """While in the block, the ``raygex`` logger passes only records from ``level`` on (a benchmark that runs
    sweeps keeps its own output readable)."""
    logger = logging.getLogger("raygex")
    saved = logger.level
    logger.setLevel(level)
    try:
        yield
    finally:
        logger.setLevel(saved)
