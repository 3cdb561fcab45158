"""The one place model files are located, checked and loaded.

Every model the package uses is listed in ``MODELS`` with its file name, sha256 and input spec.
Files are looked up in the installed package (``liveness/_weights``) and, for a source checkout,
in ``models/onnx`` at the repository root. Nothing is loaded at import time and nothing is
downloaded: a missing or altered file raises :class:`~liveness.ModelError`.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from ._errors import ModelError

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["MODELS", "ModelSpec", "model_path", "ort_session"]


@dataclass(frozen=True)
class ModelSpec:
    """Registry entry: what a model file is and what it takes."""

    name: str
    filename: str
    sha256: str
    input_name: str
    input_shape: tuple[int, ...]
    input_layout: str  # e.g. "NHWC RGB float32 [0,1]"
    description: str


# Entries are added by the conversion / training scripts' authors; sha256 is of the shipped file.
MODELS: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> None:
    MODELS[spec.name] = spec


def _search_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / "_weights", here.parent / "models" / "onnx"]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_lock = threading.Lock()


@cache
def model_path(name: str) -> Path:
    """Path of the registered model ``name`` after checking its sha256."""
    spec = MODELS.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}; registered: {sorted(MODELS)}")
    for d in _search_dirs():
        p = d / spec.filename
        if p.is_file():
            digest = _sha256(p)
            if digest != spec.sha256:
                raise ModelError(
                    f"{p}: sha256 {digest} does not match the registry ({spec.sha256}); "
                    "reinstall the package or re-run the conversion script"
                )
            return p
    raise ModelError(
        f"model file {spec.filename!r} not found in {[str(d) for d in _search_dirs()]}"
    )


_sessions: dict[tuple[str, int], ort.InferenceSession] = {}


def ort_session(name: str, threads: int = 1) -> ort.InferenceSession:
    """One ONNX Runtime session per (model, thread count) per process, created on first use."""
    key = (name, threads)
    with _lock:
        sess = _sessions.get(key)
        if sess is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            try:
                sess = ort.InferenceSession(
                    str(model_path(name)), opts, providers=["CPUExecutionProvider"]
                )
            except ModelError:
                raise
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(f"cannot load model {name!r}: {exc}") from exc
            _sessions[key] = sess
        return sess


def data_path(filename: str) -> Path:
    """A non-ONNX data file shipped beside the models (e.g. the canonical face)."""
    for d in _search_dirs():
        p = d / filename
        if p.is_file():
            return p
    raise ModelError(f"data file {filename!r} not found in {[str(d) for d in _search_dirs()]}")
