"""The one place model files are located, checked and loaded.

Every model the package uses is listed in ``MODELS`` with its file name, sha256 and input spec.
Files are looked up in the installed package (``liveness/_weights``) and, for a source checkout,
in ``models/onnx`` at the repository root. Nothing is loaded at import time and nothing is
downloaded: a missing or altered file raises :class:`~liveness.ModelError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liveness.core.errors import ModelError
from liveness.core.files import file_sha256

if TYPE_CHECKING:
    import onnxruntime as ort

__all__ = ["DATA_FILES", "MODELS", "ModelSpec", "OrtModel", "data_path", "model_hashes", "model_path",
           "ort_file_session", "ort_session", "verify_models"]


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


# Face models converted by models/convert/convert_mediapipe.sh (cards in models/cards/).
MODELS["face_detector"] = ModelSpec(
    name="face_detector",
    filename="face_detector.onnx",
    sha256="2a3d1e2a56b4c27c85425abf7725cfb9ed5fea2cefb0a625124e320b1588624f",
    input_name="input",
    input_shape=(1, 128, 128, 3),
    input_layout="NHWC RGB float32 [-1,1], letterboxed",
    description="BlazeFace short-range (MediaPipe face_detection_short_range.tflite); outputs "
    "regressors (1,896,16) and classificators (1,896,1) logits",
)
MODELS["face_mesh"] = ModelSpec(
    name="face_mesh",
    filename="face_mesh.onnx",
    sha256="dc0f5f754049a9cab551dcbfb3497eb347b3fe5629857b3673a163fd5bc75966",
    input_name="input",
    input_shape=(1, 192, 192, 3),
    input_layout="NHWC RGB float32 [0,1], rotated square face crop",
    description="MediaPipe face_landmark_with_attention.tflite (custom ops rebuilt): mesh 468x3, "
    "lips 80x2, left_eye/right_eye 71x2, left_iris/right_iris 5x2 (crop px), face_flag logit",
)
MODELS["face_detector_full"] = ModelSpec(
    name="face_detector_full",
    filename="face_detector_full.onnx",
    sha256="be6209ac9b5ccf61b2066eca216e664ed5fd66ac4c0df9f1bd6c3c6942d9c52e",
    input_name="input",
    input_shape=(1, 192, 192, 3),
    input_layout="NHWC RGB float32 [-1,1], letterboxed",
    description="BlazeFace full range (MediaPipe face_detection_full_range_sparse.tflite, made "
    "dense); outputs regressors (1,2304,16) and classificators (1,2304,1) logits",
)
# Hand models, same wheel and script (cards in models/cards/hand_*.md).
MODELS["palm_detector_lite"] = ModelSpec(
    name="palm_detector_lite",
    filename="palm_detector_lite.onnx",
    sha256="60331b17d296c07ced7a44218a73b51d3409f224e3c8c8e7337ca84c6258b115",
    input_name="input",
    input_shape=(1, 192, 192, 3),
    input_layout="NHWC RGB float32 [0,1], letterboxed",
    description="MediaPipe palm_detection_lite.tflite; outputs regressors (1,2016,18) (box + 7 "
    "keypoints) and classificators (1,2016,1) logits",
)
MODELS["palm_detector_full"] = ModelSpec(
    name="palm_detector_full",
    filename="palm_detector_full.onnx",
    sha256="7ad82c396b86901f1646e2300dd64ee01eff23267f07994e07aa2b23ced01e79",
    input_name="input",
    input_shape=(1, 192, 192, 3),
    input_layout="NHWC RGB float32 [0,1], letterboxed",
    description="MediaPipe palm_detection_full.tflite; outputs regressors (1,2016,18) (box + 7 "
    "keypoints) and classificators (1,2016,1) logits",
)
MODELS["hand_landmark_lite"] = ModelSpec(
    name="hand_landmark_lite",
    filename="hand_landmark_lite.onnx",
    sha256="af0ef97f68cf4c24833d938e8dd8347be51310197d601e6fc42627d9999b7088",
    input_name="input",
    input_shape=(1, 224, 224, 3),
    input_layout="NHWC RGB float32 [0,1], rotated square hand crop",
    description="MediaPipe hand_landmark_lite.tflite; landmarks (1,63) 21x(x,y,z) crop px, "
    "presence (1,1) and handedness (1,1) probabilities, world_landmarks (1,63) metres",
)
MODELS["hand_landmark_full"] = ModelSpec(
    name="hand_landmark_full",
    filename="hand_landmark_full.onnx",
    sha256="c6ac7bf71520e793cae4ea0de4911703c8ec7c8fdb5070888e05c41692ba8ba3",
    input_name="input",
    input_shape=(1, 224, 224, 3),
    input_layout="NHWC RGB float32 [0,1], rotated square hand crop",
    description="MediaPipe hand_landmark_full.tflite; landmarks (1,63) 21x(x,y,z) crop px, "
    "presence (1,1) and handedness (1,1) probabilities, world_landmarks (1,63) metres",
)
# dlib's face recognition ResNet (CC0), converted by models/convert/convert_dlib.py.
MODELS["face_embedding"] = ModelSpec(
    name="face_embedding",
    filename="face_embedding.onnx",
    sha256="a9d67068efec7dc5f4a2b67d43bbb0143550f6afc8243b6878ed6d5c1875f722",
    input_name="chip",
    input_shape=(1, 150, 150, 3),
    input_layout="NHWC RGB float32 [0,255], 150x150 chip aligned like dlib get_face_chip_details "
    "(padding 0.25)",
    description="dlib_face_recognition_resnet_model_v1: 128-D face embedding, same person when "
    "euclidean distance < 0.6",
)
# Swap detector trained here on real face swaps (models/train/train_swap.py): frozen dlib and
# face-mesh backbones + one linear head; weights inherit the research-only terms of their
# training data (models/cards/swap_detector.md).
MODELS["artefact"] = ModelSpec(
    name="artefact",
    filename="swap_detector.onnx",
    sha256="2986aac206b99ca2032dfa123e4509aa3057445fc642052cb5aaea894fcf6366",
    input_name="chip",
    input_shape=(1, 150, 150, 3),
    input_layout="chip: NHWC RGB float32 [0,255], liveness.signals.embedding.face_chip; second input "
    "mask: (1,150,150) float32 validity mask, liveness.signals.swap_chip.chip_mask",
    description="face-swap detector (real swaps of many tools); output logit (1,1), calibrated: "
    "sigmoid = probability the face is swapped",
)

#: Non-ONNX data files shipped beside the models: filename -> sha256.
DATA_FILES: dict[str, str] = {
    "canonical_face.npz": "ce14fb2e1daca0d604fb718881e6b78dbcc97473262e45c667734d48150327bf",
}


def _search_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent.parent  # the package folder
    return [here / "_weights", here.parent / "models" / "onnx"]


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
            digest = file_sha256(p)
            if digest != spec.sha256:
                raise ModelError(
                    f"{p}: sha256 {digest} does not match the registry ({spec.sha256}); "
                    "reinstall the package or re-run the conversion script"
                )
            return p
    raise ModelError(
        f"model file {spec.filename!r} not found in {[str(d) for d in _search_dirs()]}"
    )


def verify_models(names: Iterable[str]) -> tuple[Path, ...]:
    """The paths of the registered models ``names``, each found and checked against its
    sha256; the first that is unknown, missing or altered raises :class:`~liveness.ModelError`.
    What builds a pipeline calls this, so a bad file is refused when it is built, not at its
    first frame. Each file is hashed once per process (:func:`model_path` keeps the result;
    a failure is not kept, so a file put right is found on the next call)."""
    return tuple(model_path(n) for n in dict.fromkeys(names))


_sessions: dict[tuple[str, int], OrtModel] = {}


def model_hashes() -> dict[str, str]:
    """{model name: registered sha256, or "missing" where the file cannot be found} — what a
    review records as its provenance."""
    out: dict[str, str] = {}
    for name, spec in sorted(MODELS.items()):
        try:
            model_path(name)
            out[name] = spec.sha256
        except Exception:
            out[name] = "missing"
    return out


class OrtModel:
    """An ONNX Runtime session whose failures are ours: the boundary where ONNX Runtime's own
    exception types (load and run) become :class:`~liveness.ModelError`. Other attributes are
    the session's (``get_inputs``, ``get_outputs``, ...)."""

    __slots__ = ("name", "session")

    def __init__(self, name: str, session: ort.InferenceSession) -> None:
        self.name = name
        self.session = session

    def run(self, outputs: list[str] | None, feeds: dict[str, Any]) -> list[Any]:
        try:
            return list(self.session.run(outputs, feeds))
        except Exception as exc:
            if type(exc).__module__.startswith("onnxruntime"):
                raise ModelError(f"model {self.name!r} failed: {exc}") from exc
            raise

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.session, attr)


def _new_session(name: str, path: Path, threads: int) -> OrtModel:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # No CPU memory arena: ONNX Runtime's arena keeps every block it ever grew by (8-16 MiB the
    # first time two or more threads run one model at once, more for rarer overlaps) for the
    # process's life; without it a run's buffers go back to malloc (and the server's heap trim).
    # Measured: 7 models, 2-4 threads at once, 112.8 MiB kept with the arena, none without; the
    # same run time per model (0.66-4.55 vs 0.67-4.90 ms, one thread; benchmarks/README.md).
    opts.enable_cpu_mem_arena = False
    try:
        return OrtModel(name, ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelError(f"cannot load model {name!r}: {exc}") from exc


def ort_session(name: str, threads: int = 1) -> OrtModel:
    """One ONNX Runtime session per (model, thread count) per process, created on first use."""
    key = (name, threads)
    with _lock:
        sess = _sessions.get(key)
        if sess is None:
            sess = _new_session(name, model_path(name), threads)
            _sessions[key] = sess
        return sess


_file_sessions: dict[tuple[str, str, int], OrtModel] = {}


def ort_file_session(path: str | Path, threads: int = 1) -> OrtModel:
    """A session of a model file that is not in the registry (a user's own retrained swap
    detector, a fold model of an out-of-fold evaluation): one per (file, content, thread
    count) per process. A missing or unreadable file is a :class:`~liveness.ModelError`."""
    p = Path(path).resolve()
    try:
        digest = file_sha256(p)
    except OSError as exc:
        raise ModelError(f"model file {str(path)!r} cannot be read: {exc}") from exc
    key = (str(p), digest, threads)
    with _lock:
        sess = _file_sessions.get(key)
        if sess is None:
            sess = _new_session(p.name, p, threads)
            _file_sessions[key] = sess
        return sess


@cache
def data_path(filename: str) -> Path:
    """A non-ONNX data file shipped beside the models (e.g. the canonical face); files listed in
    ``DATA_FILES`` are checked against their sha256."""
    for d in _search_dirs():
        p = d / filename
        if p.is_file():
            want = DATA_FILES.get(filename)
            if want is not None and file_sha256(p) != want:
                raise ModelError(
                    f"{p}: sha256 {file_sha256(p)} does not match the registry ({want}); "
                    "reinstall the package or re-run the conversion script"
                )
            return p
    raise ModelError(f"data file {filename!r} not found in {[str(d) for d in _search_dirs()]}")
