"""Model files: a TorchScript archive with its metadata as JSON inside, and a ``torch.export`` twin where possible.

The metadata travels as a TorchScript extra file (``raygex.json``), never as pickle, so reading it runs no code.
Both files are written to a temporary path and renamed: a reader never sees half a model.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from torch import nn

from raygex.errors import InputFormatError
from raygex.files.fileio import atomic_path
from raygex.files.names import MODEL_METADATA_FILE as METADATA_FILE

FORMAT = "raygex-model/1"
REQUIRED_FIELDS = ("format", "genes", "classes", "task", "hyperparameters", "metrics", "versions", "exported_at")


def write_torchscript(module: nn.Module, metadata: dict, path: str | Path) -> Path:
    """Script ``module`` (in eval mode) and save it with ``metadata`` as its ``raygex.json`` extra file."""
    module = module.eval()
    scripted = torch.jit.script(module)
    files = {METADATA_FILE: json.dumps(metadata, sort_keys=True, default=_plain)}
    with atomic_path(path) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files=files)
    return Path(path)


def write_exported_program(module: nn.Module, metadata: dict, path: str | Path, example: torch.Tensor) -> str | None:
    """Write ``module`` with ``torch.export`` (the upstream successor of TorchScript); returns why not, or None.

    Sparse graph buffers cannot be exported on this torch (CSR has no strides, a COO attribute cannot be saved),
    so graph models may be refused: the TorchScript file is then the one to use.
    """
    quiet = logging.getLogger("torch")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a refused export logs pages of tracebacks before raising
    try:
        program = torch.export.export(module.eval(), (example,), dynamic_shapes={"x": {0: torch.export.Dim.DYNAMIC}})
        with atomic_path(path) as tmp:
            torch.export.save(program, str(tmp), extra_files={METADATA_FILE: json.dumps(metadata, sort_keys=True,
                                                                                         default=_plain)})
    except Exception as err:  # torch.export raises many types; any of them means "no .pt2 for this model"
        Path(path).unlink(missing_ok=True)
        return f"{type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
    finally:
        quiet.setLevel(level)
    return None


def read_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict]:
    """Load a raygex model file; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise InputFormatError("model file not found", path=path)
    files = {METADATA_FILE: ""}
    try:
        module = torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    except Exception as err:  # torch raises RuntimeError/ValueError/... for anything that is not an archive
        raise InputFormatError(f"not a TorchScript model file (torch.jit.load failed: "
                               f"{str(err).splitlines()[0][:120] if str(err) else type(err).__name__})", path=path)
    raw = files[METADATA_FILE]
    if not raw:
        raise InputFormatError(f"a TorchScript file, but not a raygex model (no {METADATA_FILE} inside)", path=path)
    try:
        metadata = json.loads(raw)
    except json.JSONDecodeError as err:
        raise InputFormatError(f"{METADATA_FILE} inside the model is not valid JSON ({err.msg})", path=path)
    if not isinstance(metadata, dict):
        raise InputFormatError(f"{METADATA_FILE} inside the model must be a JSON object", path=path)
    missing = [key for key in REQUIRED_FIELDS if key not in metadata]
    if missing:
        raise InputFormatError(f"model metadata is missing field(s) {missing}", path=path)
    if metadata["format"] != FORMAT:
        raise InputFormatError(f"model format must be {FORMAT!r}, but got {metadata['format']!r}", path=path)
    return module, metadata


def _plain(value):
    """JSON for numpy scalars/arrays in metadata."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
