"""Reference outputs of ``face_landmark_with_attention.tflite`` from MediaPipe's own runtime.

That model uses MediaPipe custom ops (Landmarks2TransformMatrix, TransformTensorBilinear,
TransformLandmarks), which TensorFlow's TFLite interpreter does not have. MediaPipe's Python
package registers them, so we run the tflite file in a minimal MediaPipe graph:
image -> ImageToTensor (192x192, [0, 1], identity ROI) -> InferenceCalculator (CPU, MediaPipe's
custom-op resolver) -> one float vector per output tensor. The input is the same astronaut crop
``convert_mediapipe.astronaut_inputs()`` gives the ONNX model.

Runs in a venv with mediapipe==0.10.21 (see convert_mediapipe.sh).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUTPUTS = ["mesh", "lips", "left_eye", "right_eye", "left_iris", "right_iris", "face_flag"]
TFLITE_NAMES = ["output_mesh_identity", "output_lips", "output_left_eye", "output_right_eye",
                "output_left_iris", "output_right_iris", "conv_faceflag"]


def graph_config(model_path: str) -> str:
    split = "\n".join(f"      ranges: {{ begin: {i} end: {i + 1} }}" for i in range(len(OUTPUTS)))
    splits = "\n".join(f'  output_stream: "t_{n}"' for n in OUTPUTS)
    floats = "\n".join(
        f'node {{ calculator: "TensorsToFloatsCalculator" input_stream: "TENSORS:t_{n}" '
        f'output_stream: "FLOATS:{n}" }}'
        for n in OUTPUTS
    )
    outs = "\n".join(f'output_stream: "{n}"' for n in OUTPUTS)
    return f"""
input_stream: "image"
{outs}
node {{
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input_tensors"
  options: {{
    [mediapipe.ImageToTensorCalculatorOptions.ext] {{
      output_tensor_width: 192
      output_tensor_height: 192
      keep_aspect_ratio: false
      output_tensor_float_range {{ min: 0.0 max: 1.0 }}
    }}
  }}
}}
node {{
  calculator: "TfLiteCustomOpResolverCalculator"
  output_side_packet: "OP_RESOLVER:op_resolver"
}}
node {{
  calculator: "InferenceCalculator"
  input_side_packet: "OP_RESOLVER:op_resolver"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:output_tensors"
  options: {{
    [mediapipe.InferenceCalculatorOptions.ext] {{
      model_path: "{model_path}"
      delegate {{ tflite {{}} }}
    }}
  }}
}}
node {{
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output_tensors"
{splits}
  options: {{
    [mediapipe.SplitVectorCalculatorOptions.ext] {{
{split}
    }}
  }}
}}
{floats}
"""


def pipeline_reference(out: Path) -> None:
    """End-to-end reference: MediaPipe's legacy FaceDetection (short range) and FaceMesh
    (static image, refine_landmarks) on the whole astronaut photo, in image pixels. Lets the
    tests check our detection -> ROI -> crop -> mesh -> image mapping, not just the model."""
    import mediapipe as mp
    from skimage import data

    img = data.astronaut()
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(
        static_image_mode=True, refine_landmarks=True, max_num_faces=1
    ) as fm:
        lm = fm.process(img).multi_face_landmarks[0].landmark
        landmarks = np.array([[p.x * w, p.y * h, p.z * w] for p in lm], np.float32)
    with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fd:
        det = fd.process(img).detections[0]
        bb = det.location_data.relative_bounding_box
        box = np.array([bb.xmin * w, bb.ymin * h, bb.width * w, bb.height * h], np.float32)
        kps = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints], np.float32)
        score = np.float32(det.score[0])
    np.savez_compressed(out, landmarks=landmarks, box=box, keypoints=kps, score=score)
    print(f"{out}: landmarks {landmarks.shape}, box {box.round(1)}, score {score:.3f}")


def full_range_reference(out: Path) -> None:
    """MediaPipe's legacy FaceDetection with the full-range model (``model_selection=1``) on the
    astronaut photo and on the photo shrunk into a larger canvas (``astronaut.small_face_scene``),
    in image pixels: checks our full-range anchors, decoding and letterbox mapping end to end."""
    import mediapipe as mp
    from skimage import data

    sys.path.insert(0, str(HERE))
    from astronaut import small_face_scene  # noqa: E402

    arrays: dict[str, np.ndarray] = {}
    with mp.solutions.face_detection.FaceDetection(model_selection=1, min_detection_confidence=0.5) as fd:
        for key, img in (("photo", data.astronaut()), ("small", small_face_scene())):
            h, w = img.shape[:2]
            det = fd.process(img).detections[0]
            bb = det.location_data.relative_bounding_box
            arrays[f"{key}_box"] = np.array([bb.xmin * w, bb.ymin * h, bb.width * w, bb.height * h], np.float32)
            arrays[f"{key}_keypoints"] = np.array(
                [[k.x * w, k.y * h] for k in det.location_data.relative_keypoints], np.float32)
            arrays[f"{key}_score"] = np.float32(det.score[0])
            print(f"full range, {key}: box {arrays[f'{key}_box'].round(1)}, score {det.score[0]:.3f}")
    np.savez_compressed(out, **arrays)


def hands_reference(out: Path, shared: Path) -> None:
    """MediaPipe's legacy Hands (static images, up to 2 hands, model_complexity 0 = lite and
    1 = full) on the dev frames with hands (``hand_frames.py``; read from ``shared``, never
    stored): landmarks in image pixels (z x image width, as MediaPipe scales it) and handedness,
    to check our palm decoding -> ROI -> crop -> landmarks -> image mapping end to end."""
    import mediapipe as mp

    sys.path.insert(0, str(HERE))
    from hand_frames import HAND_FRAMES, read_frame  # noqa: E402

    arrays: dict[str, np.ndarray] = {}
    frames = [read_frame(shared / f.clip, f.index) for f in HAND_FRAMES]
    for complexity, name in ((0, "lite"), (1, "full")):
        lms = np.full((len(frames), 2, 21, 3), np.nan, np.float32)
        right = np.full((len(frames), 2), np.nan, np.float32)
        with mp.solutions.hands.Hands(static_image_mode=True, max_num_hands=2, model_complexity=complexity,
                                      min_detection_confidence=0.5) as hands:
            for i, img in enumerate(frames):
                h, w = img.shape[:2]
                res = hands.process(img)
                for j, (hl, hd) in enumerate(zip(res.multi_hand_landmarks or [], res.multi_handedness or [],
                                                 strict=True)):
                    lms[i, j] = [[p.x * w, p.y * h, p.z * w] for p in hl.landmark]
                    c = hd.classification[0]
                    right[i, j] = c.score if c.label == "Right" else 1.0 - c.score
        arrays[f"{name}_landmarks"] = lms
        arrays[f"{name}_right_score"] = right
        print(f"hands ({name}): {np.isfinite(right).sum(axis=1).tolist()} hands per frame")
    np.savez_compressed(out, **arrays)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--pipeline-out", type=Path, default=None)
    ap.add_argument("--full-range-out", type=Path, default=None)
    ap.add_argument("--hands-out", type=Path, default=None)
    ap.add_argument("--shared", type=Path, default=HERE.parents[2] / "shared" / "data")
    args = ap.parse_args()
    if args.hands_out is not None:
        if (args.shared / "manifest.csv").is_file():
            hands_reference(args.hands_out, args.shared)
        else:
            print(f"{args.shared} absent: no hands reference ({args.hands_out} kept)")
    if args.pipeline_out is not None:
        pipeline_reference(args.pipeline_out)
    if args.full_range_out is not None:
        full_range_reference(args.full_range_out)

    import mediapipe as mp
    from google.protobuf import text_format
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import packet_creator, packet_getter
    from mediapipe.python._framework_bindings import calculator_graph, image_frame, timestamp

    sys.path.insert(0, str(HERE))
    from astronaut import astronaut_inputs  # noqa: E402

    crop = np.ascontiguousarray(astronaut_inputs()["mesh_crop_u8"])
    model = "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"
    cfg = text_format.Parse(graph_config(model), calculator_pb2.CalculatorGraphConfig())
    graph = calculator_graph.CalculatorGraph(graph_config=cfg)
    got: dict[str, np.ndarray] = {}

    def cb(name: str):
        def f(stream, packet):  # noqa: ANN001
            got[name] = np.asarray(packet_getter.get_float_list(packet), np.float32)
        return f

    for n in OUTPUTS:
        graph.observe_output_stream(n, cb(n))
    # resources (the model file) resolve relative to the mediapipe package root
    import os

    os.chdir(Path(mp.__file__).resolve().parent.parent)
    graph.start_run()
    frame = image_frame.ImageFrame(image_format=image_frame.ImageFormat.SRGB, data=crop)
    graph.add_packet_to_input_stream("image", packet_creator.create_image_frame(frame).at(timestamp.Timestamp(0)))
    graph.close()
    missing = [n for n in OUTPUTS if n not in got]
    if missing:
        raise SystemExit(f"no output for {missing}")
    np.savez(args.out, **{t: got[n] for n, t in zip(OUTPUTS, TFLITE_NAMES, strict=True)},
             input=crop.astype(np.float32)[None] / 255.0)
    print(f"{args.out}: " + ", ".join(f"{n} {got[n].shape}" for n in OUTPUTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
