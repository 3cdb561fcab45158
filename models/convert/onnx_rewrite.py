"""Post-process tf2onnx output into plain, fast ONNX.

* ``PRelu(x, a)`` -> ``Relu(x) + (-a) * Relu(-x)`` (standard ops; ONNX Runtime's PRelu kernel is
  much slower than these fused element-wise ops on CPU).
* MediaPipe's custom TFLite ops left by tf2onnx as ``TFL_*`` nodes are rebuilt from standard ONNX
  ops, following the semantics of MediaPipe's reference kernels (``mediapipe/util/tflite/operations``,
  version 2 of each op):

  - ``Landmarks2TransformMatrix`` (landmarks (1, N, 3) -> (1, 4, 4)): rotation that levels the
    line between two landmarks, bounding box of a landmark subset in that rotated frame, and the
    matrix mapping output-patch pixels to input coordinates:
    ``T = shift(centre) . rot(-r) . scale(scale * box / out) . shift(-out / 2)``.
  - ``TransformTensorBilinear`` (features (1, H, W, C) NHWC, matrix -> (1, h, w, C)): sample
    the features at ``T . (x + 0.5, y + 0.5) - 0.5`` bilinearly; points outside [0, W-1] x [0, H-1]
    give 0. Built from Floor, four Gathers of feature rows and the bilinear weights, times an
    inside-mask.
  - ``TransformLandmarks`` (landmarks (1, N, 2), matrix -> (1, N, 2)): ``xy' = T[:2,:2] xy + T[:2,3]``.
* Inputs/outputs renamed to stable names.
* Optionally (``fp16_weights``) weights that hold float16 values (MediaPipe's newer models store
  their weights as float16 and dequantize them on load) are stored as float16 initializers with a
  ``Cast`` to float32, which ONNX Runtime folds when it loads the model: half the file, the same
  float32 values.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _G:
    """Tiny node factory that appends to a list and invents unique names."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.k = 0

    def name(self, hint: str) -> str:
        self.k += 1
        return f"{self.prefix}/{hint}_{self.k}"

    def const(self, value, dtype=np.float32, hint: str = "c") -> str:
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, out: str | None = None, **attrs) -> str:
        o = out or self.name(hint or op_type)
        self.nodes.append(helper.make_node(op_type, inputs, [o], name=self.name(op_type), **attrs))
        return o


def _l2tm(g: _G, lm: str, out: str, attrs: dict) -> None:
    left, right = int(attrs["left_rotation_idx"]), int(attrs["right_rotation_idx"])
    ow, oh = float(attrs["output_width"]), float(attrs["output_height"])
    sx, sy = float(attrs["scale_x"]), float(attrs["scale_y"])
    target = float(attrs.get("target_rotation_radians", 0.0))
    subset = np.asarray(attrs["subset_idxs"], np.int64).reshape(-1)

    def take(idx: int) -> tuple[str, str]:
        p = g.op("Gather", [lm, g.const([idx], np.int64)], axis=1)  # (1,1,3)
        x = g.op("Slice", [p, g.const([0], np.int64), g.const([1], np.int64), g.const([2], np.int64)])
        y = g.op("Slice", [p, g.const([1], np.int64), g.const([2], np.int64), g.const([2], np.int64)])
        return x, y  # (1,1,1)

    lx, ly = take(left)
    rx, ry = take(right)
    dx = g.op("Sub", [rx, lx])
    dy = g.op("Sub", [ry, ly])
    norm = g.op("Sqrt", [g.op("Add", [g.op("Mul", [dx, dx]), g.op("Mul", [dy, dy])])])
    norm = g.op("Max", [norm, g.const(1e-12)])
    ca = g.op("Div", [dx, norm])  # cos(atan2(dy, dx))
    sa = g.op("Div", [dy, norm])  # sin(atan2(dy, dx))
    # r = target - atan2(dy, dx)
    ct, st = np.cos(target), np.sin(target)
    c = g.op("Add", [g.op("Mul", [ca, g.const(ct)]), g.op("Mul", [sa, g.const(st)])])
    s = g.op("Sub", [g.op("Mul", [ca, g.const(st)]), g.op("Mul", [sa, g.const(ct)])])

    pts = g.op("Gather", [lm, g.const(subset, np.int64)], axis=1)  # (1,K,3)
    px = g.op("Slice", [pts, g.const([0], np.int64), g.const([1], np.int64), g.const([2], np.int64)])
    py = g.op("Slice", [pts, g.const([1], np.int64), g.const([2], np.int64), g.const([2], np.int64)])
    xr = g.op("Sub", [g.op("Mul", [c, px]), g.op("Mul", [s, py])])  # (1,K,1)
    yr = g.op("Add", [g.op("Mul", [s, px]), g.op("Mul", [c, py])])
    ax = g.const([1], np.int64)
    xmax = g.op("ReduceMax", [xr], axes=[1], keepdims=1)
    xmin = g.op("ReduceMin", [xr], axes=[1], keepdims=1)
    ymax = g.op("ReduceMax", [yr], axes=[1], keepdims=1)
    ymin = g.op("ReduceMin", [yr], axes=[1], keepdims=1)
    del ax
    w = g.op("Sub", [xmax, xmin])
    h = g.op("Sub", [ymax, ymin])
    half = g.const(0.5)
    mx = g.op("Mul", [g.op("Add", [xmax, xmin]), half])
    my = g.op("Mul", [g.op("Add", [ymax, ymin]), half])
    # back-rotate the centre by -r: R(-r) = [[c, s], [-s, c]]
    cx = g.op("Add", [g.op("Mul", [c, mx]), g.op("Mul", [s, my])])
    cy = g.op("Sub", [g.op("Mul", [c, my]), g.op("Mul", [s, mx])])
    scx = g.op("Mul", [w, g.const(sx / ow)])
    scy = g.op("Mul", [h, g.const(sy / oh)])
    # M = R(-r) . diag(scx, scy)
    m00 = g.op("Mul", [c, scx])
    m01 = g.op("Mul", [s, scy])
    m10 = g.op("Neg", [g.op("Mul", [s, scx])])
    m11 = g.op("Mul", [c, scy])
    # t = centre + M . (-ow/2, -oh/2)
    tx = g.op("Sub", [cx, g.op("Add", [g.op("Mul", [m00, g.const(ow / 2)]), g.op("Mul", [m01, g.const(oh / 2)])])])
    ty = g.op("Sub", [cy, g.op("Add", [g.op("Mul", [m10, g.const(ow / 2)]), g.op("Mul", [m11, g.const(oh / 2)])])])
    zero = g.const(np.zeros((1, 1, 1)))
    one = g.const(np.ones((1, 1, 1)))
    flat = g.op(
        "Concat",
        [m00, m01, zero, tx, m10, m11, zero, ty, zero, zero, one, zero, zero, zero, zero, one],
        axis=2,
    )  # (1,1,16)
    g.op("Reshape", [flat, g.const([1, 4, 4], np.int64)], out=out)


def _ttb(g: _G, feat_nhwc: str, mat: str, out: str, attrs: dict, in_hw: tuple[int, int]) -> None:
    oh, ow = int(attrs["output_height"]), int(attrs["output_width"])
    ih, iw = in_hw
    # homogeneous output pixel grid with the half-pixel ("align corners") correction
    ys, xs = np.meshgrid(np.arange(oh, dtype=np.float64), np.arange(ow, dtype=np.float64), indexing="ij")
    grid = np.stack([xs + 0.5, ys + 0.5, np.ones_like(xs)], axis=-1).reshape(1, oh * ow, 3)
    a = g.op("Slice", [mat, g.const([0, 0], np.int64), g.const([2, 2], np.int64), g.const([1, 2], np.int64)])  # (1,2,2)
    t = g.op("Slice", [mat, g.const([0, 3], np.int64), g.const([2, 4], np.int64), g.const([1, 2], np.int64)])  # (1,2,1)
    t = g.op("Sub", [t, g.const(0.5)])
    aff = g.op("Concat", [a, t], axis=2)  # (1,2,3)
    afft = g.op("Transpose", [aff], perm=[0, 2, 1])  # (1,3,2)
    tc = g.op("MatMul", [g.const(grid), afft])  # (1, oh*ow, 2) input pixel coords
    tc = g.op("Reshape", [tc, g.const([1, oh, ow, 2], np.int64)])
    lo = g.const([0.0, 0.0])
    hi = g.const([iw - 1.0, ih - 1.0])
    inside = g.op("And", [g.op("GreaterOrEqual", [tc, lo]), g.op("LessOrEqual", [tc, hi])])  # (1,oh,ow,2)
    inside = g.op("Cast", [inside], to=TensorProto.FLOAT)
    mask = g.op("ReduceProd", [inside], axes=[3], keepdims=1)  # (1,oh,ow,1)
    # bilinear interpolation by four Gathers from the (H*W, C) feature rows (ONNX Runtime's
    # GridSample costs ~0.4 ms for these 16x16 patches; this is a few microseconds). Corner
    # indices are clamped into the map: a clamped corner only ever has weight 0, or belongs to
    # a sample point outside the map, which the mask zeroes.
    flo = g.op("Floor", [tc])
    frac = g.op("Sub", [tc, flo])  # (1,oh,ow,2): fx, fy
    c0 = g.op("Clip", [flo, g.const(0.0), g.const(float(max(iw, ih) - 1))])
    c1 = g.op("Clip", [g.op("Add", [flo, g.const(1.0)]), g.const(0.0), g.const(float(max(iw, ih) - 1))])
    c0 = g.op("Min", [c0, hi])
    c1 = g.op("Min", [c1, hi])

    def split(t: str) -> tuple[str, str]:
        xs = g.op("Slice", [t, g.const([0], np.int64), g.const([1], np.int64), g.const([3], np.int64)])
        ys = g.op("Slice", [t, g.const([1], np.int64), g.const([2], np.int64), g.const([3], np.int64)])
        return xs, ys  # (1,oh,ow,1)

    x0, y0 = split(c0)
    x1, y1 = split(c1)
    fx, fy = split(frac)
    rows = g.op("Reshape", [feat_nhwc, g.const([ih * iw, -1], np.int64)])  # (H*W, C)
    wf = g.const(float(iw))

    def corner(xc: str, yc: str) -> str:
        idx = g.op("Cast", [g.op("Add", [g.op("Mul", [yc, wf]), xc])], to=TensorProto.INT64)
        idx = g.op("Reshape", [idx, g.const([1, oh, ow], np.int64)])
        return g.op("Gather", [rows, idx], axis=0)  # (1,oh,ow,C)

    q11, q21 = corner(x0, y0), corner(x1, y0)
    q12, q22 = corner(x0, y1), corner(x1, y1)
    one = g.const(1.0)
    gx = g.op("Sub", [one, fx])
    gy = g.op("Sub", [one, fy])
    upper = g.op("Add", [g.op("Mul", [q11, gx]), g.op("Mul", [q21, fx])])
    lower = g.op("Add", [g.op("Mul", [q12, gx]), g.op("Mul", [q22, fx])])
    val = g.op("Add", [g.op("Mul", [lower, fy]), g.op("Mul", [upper, gy])])
    g.op("Mul", [val, mask], out=out)


def _tl(g: _G, lm: str, mat: str, out: str) -> None:
    a = g.op("Slice", [mat, g.const([0, 0], np.int64), g.const([2, 2], np.int64), g.const([1, 2], np.int64)])  # (1,2,2)
    t = g.op("Slice", [mat, g.const([0, 3], np.int64), g.const([2, 4], np.int64), g.const([1, 2], np.int64)])  # (1,2,1)
    at = g.op("Transpose", [a], perm=[0, 2, 1])
    tt = g.op("Transpose", [t], perm=[0, 2, 1])  # (1,1,2)
    g.op("Add", [g.op("MatMul", [lm, at]), tt], out=out)


def _prelu(g: _G, x: str, out: str, slope: np.ndarray, mode: str) -> None:
    """prelu(x) = relu(x) - a * relu(-x) in standard ops.

    ``mode="elementwise"``: Relu, Neg, Relu, Mul, Add. ``mode="conv"`` (default): with
    q = relu(-x), prelu(x) = x + (1 - a) q, as two depthwise 1x1 convolutions,
    ``x + DwConv_{1-a}(Relu(DwConv_{-1}(x)))``, which ONNX Runtime keeps in its blocked NCHWc
    layout (Relu fused into the first conv, the Add fused into the second as its "Sum" input)
    instead of reordering the tensor out of and back into that layout around every
    element-wise Neg/Mul (x is NCHW, slope broadcastable to (1, C, 1, 1))."""
    a = np.asarray(slope, np.float32).reshape(-1)
    if mode == "elementwise" or a.size == 1:
        pos = g.op("Relu", [x])
        neg = g.op("Relu", [g.op("Neg", [x])])
        g.op("Add", [pos, g.op("Mul", [neg, g.const(-np.asarray(slope, np.float32))])], out=out)
        return
    c = a.size
    kw = {"group": c, "kernel_shape": [1, 1]}
    # q = relu(-x); prelu(x) = x + (1 - a) * q  (x > 0: x;  x < 0: x - (1 - a) x = a x)
    q = g.op("Relu", [g.op("Conv", [x, g.const(-np.ones((c, 1, 1, 1), np.float32))], **kw)])
    g.op("Add", [g.op("Conv", [q, g.const((1.0 - a).reshape(c, 1, 1, 1))], **kw), x], out=out)


def _channel_pad_as_conv(g: _G, x: str, out: str, c_in: int, before: int, after: int) -> None:
    """Zero padding of the channel axis (the residual path of MediaPipe's stride-2 blocks) as a
    1x1 convolution with identity weights, which stays in ONNX Runtime's NCHWc layout (Pad
    does not, and forces reorders around the residual Add)."""
    w = np.zeros((before + c_in + after, c_in, 1, 1), np.float32)
    w[before + np.arange(c_in), np.arange(c_in), 0, 0] = 1.0
    g.op("Conv", [x, g.const(w)], kernel_shape=[1, 1], out=out)


def canonicalize(model: onnx.ModelProto) -> onnx.ModelProto:
    """Deterministic names: tf2onnx names its folded constants from counters whose order
    varies between runs, so the same model would serialise differently. Rename every
    initializer and intermediate tensor by first use in (topological) node order and sort the
    initializers, so that the same conversion gives the same bytes (and sha256)."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    inits = {i.name: i for i in graph.initializer}
    mapping: dict[str, str] = {}
    nc = nt = 0
    for k, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in keep and name not in mapping and name in inits:
                mapping[name] = f"c{nc}"
                nc += 1
        for name in node.output:
            if name and name not in keep and name not in mapping:
                mapping[name] = f"t{nt}"
                nt += 1
        node.name = f"n{k}_{node.op_type}"
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for init in graph.initializer:
        init.name = mapping.get(init.name, init.name)
    ordered = sorted(graph.initializer, key=lambda i: int(i.name[1:]) if i.name[1:].isdigit() else -1)
    del graph.initializer[:]
    graph.initializer.extend(ordered)
    del graph.value_info[:]
    return model


def _channel_pad(node: onnx.NodeProto, inits: dict, shapes: dict) -> tuple[int, int, int] | None:
    """(c_in, before, after) when ``node`` zero-pads only the channel axis of an NCHW tensor."""
    mode = _attrs(node).get("mode", b"constant")
    if mode not in (b"constant", "constant") or len(node.input) < 2 or node.input[1] not in inits:
        return None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in inits or np.any(numpy_helper.to_array(inits[node.input[2]]) != 0):
            return None
    pads = numpy_helper.to_array(inits[node.input[1]]).reshape(-1)
    shp = shapes.get(node.input[0])
    if pads.size != 8 or not shp or len(shp) != 4 or shp[1] <= 0:
        return None
    if np.any(np.delete(pads, [1, 5]) != 0):
        return None
    return int(shp[1]), int(pads[1]), int(pads[5])


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _batched_crops(g: _G, l2tm: list[onnx.NodeProto], ttb: list[onnx.NodeProto], in_hw: tuple[int, int]) -> None:
    """All ``Landmarks2TransformMatrix`` nodes (same landmark input) and the
    ``TransformTensorBilinear`` nodes that sample one feature map with their matrices, computed
    as ONE batched subgraph (batch axis = branch: lips, left eye, right eye). Same arithmetic as
    ``_l2tm`` / ``_ttb``; a third of the nodes, which matters for these tiny tensors."""
    k = len(l2tm)
    lm = l2tm[0].input[0]
    at = [_attrs(n) for n in l2tm]
    subsets = [np.asarray(a["subset_idxs"], np.int64).reshape(-1) for a in at]
    n = max(len(x) for x in subsets)
    # pad with repeats: min/max are unchanged by duplicates
    idx = np.stack([np.concatenate([x, np.full(n - len(x), x[0])]) for x in subsets])  # (K, n)
    lr = np.array([[int(a["left_rotation_idx"]), int(a["right_rotation_idx"])] for a in at], np.int64)
    ow = np.array([float(a["output_width"]) for a in at], np.float32).reshape(1, k, 1, 1)
    oh = np.array([float(a["output_height"]) for a in at], np.float32).reshape(1, k, 1, 1)
    sc = np.stack([[float(a["scale_x"]) / float(a["output_width"]),
                    float(a["scale_y"]) / float(a["output_height"])] for a in at]).astype(np.float32).reshape(1, k, 1, 2)
    tgt = np.array([float(a.get("target_rotation_radians", 0.0)) for a in at]).reshape(1, k, 1, 1)
    i64 = np.int64

    def sl(t: str, axis: int, a: int, b: int) -> str:
        return g.op("Slice", [t, g.const([a], i64), g.const([b], i64), g.const([axis], i64)])

    ends = g.op("Gather", [lm, g.const(lr, i64)], axis=1)  # (1,K,2,3)
    d = g.op("Sub", [sl(ends, 2, 1, 2), sl(ends, 2, 0, 1)])  # (1,K,1,3)
    d = sl(d, 3, 0, 2)  # (1,K,1,2)
    norm = g.op("Sqrt", [g.op("ReduceSum", [g.op("Mul", [d, d]), g.const([3], i64)], keepdims=1)])
    cs = g.op("Div", [d, g.op("Max", [norm, g.const(1e-12)])])  # (cos a, sin a), a = atan2(dy, dx)
    ca, sa = sl(cs, 3, 0, 1), sl(cs, 3, 1, 2)  # (1,K,1,1)
    # r = target - a
    c = g.op("Add", [g.op("Mul", [ca, g.const(np.cos(tgt))]), g.op("Mul", [sa, g.const(np.sin(tgt))])])
    s_ = g.op("Sub", [g.op("Mul", [ca, g.const(np.sin(tgt))]), g.op("Mul", [sa, g.const(np.cos(tgt))])])
    pts = g.op("Gather", [lm, g.const(idx, i64)], axis=1)  # (1,K,n,3)
    px, py = sl(pts, 3, 0, 1), sl(pts, 3, 1, 2)  # (1,K,n,1)
    xr = g.op("Sub", [g.op("Mul", [c, px]), g.op("Mul", [s_, py])])
    yr = g.op("Add", [g.op("Mul", [s_, px]), g.op("Mul", [c, py])])
    rot = g.op("Concat", [xr, yr], axis=3)  # (1,K,n,2)
    hi_ = g.op("ReduceMax", [rot], axes=[2], keepdims=1)  # (1,K,1,2)
    lo_ = g.op("ReduceMin", [rot], axes=[2], keepdims=1)
    wh = g.op("Sub", [hi_, lo_])
    mid = g.op("Mul", [g.op("Add", [hi_, lo_]), g.const(0.5)])
    mxm, mym = sl(mid, 3, 0, 1), sl(mid, 3, 1, 2)
    cx = g.op("Add", [g.op("Mul", [c, mxm]), g.op("Mul", [s_, mym])])
    cy = g.op("Sub", [g.op("Mul", [c, mym]), g.op("Mul", [s_, mxm])])
    scl = g.op("Mul", [wh, g.const(sc)])
    scx, scy = sl(scl, 3, 0, 1), sl(scl, 3, 1, 2)
    m00 = g.op("Mul", [c, scx])
    m01 = g.op("Mul", [s_, scy])
    m10 = g.op("Neg", [g.op("Mul", [s_, scx])])
    m11 = g.op("Mul", [c, scy])
    hw, hh = g.const(ow / 2), g.const(oh / 2)
    tx = g.op("Sub", [cx, g.op("Add", [g.op("Mul", [m00, hw]), g.op("Mul", [m01, hh])])])
    ty = g.op("Sub", [cy, g.op("Add", [g.op("Mul", [m10, hw]), g.op("Mul", [m11, hh])])])
    z = g.op("Mul", [c, g.const(0.0)])
    o = g.op("Add", [z, g.const(1.0)])
    flat = g.op("Concat", [m00, m01, z, tx, m10, m11, z, ty, z, z, o, z, z, z, z, o], axis=3)  # (1,K,1,16)
    for i, node in enumerate(l2tm):
        g.op("Reshape", [sl(flat, 1, i, i + 1), g.const([1, 4, 4], i64)], out=node.output[0])
    if not ttb:
        return
    # --- TransformTensorBilinear for every branch whose matrix is one of the above
    branch = {node.output[0]: i for i, node in enumerate(l2tm)}
    toh, tow = int(_attrs(ttb[0])["output_height"]), int(_attrs(ttb[0])["output_width"])
    ih, iw = in_hw
    ys, xs = np.meshgrid(np.arange(toh, dtype=np.float64), np.arange(tow, dtype=np.float64), indexing="ij")
    gx = g.const((xs + 0.5).reshape(1, 1, -1, 1))
    gy = g.const((ys + 0.5).reshape(1, 1, -1, 1))
    half = g.const(0.5)
    tcx = g.op("Sub", [g.op("Add", [g.op("Add", [g.op("Mul", [m00, gx]), g.op("Mul", [m01, gy])]), tx]), half])
    tcy = g.op("Sub", [g.op("Add", [g.op("Add", [g.op("Mul", [m10, gx]), g.op("Mul", [m11, gy])]), ty]), half])
    tc = g.op("Concat", [tcx, tcy], axis=3)  # (1,K,P,2) input pixel coords
    hi = g.const([iw - 1.0, ih - 1.0])
    inside = g.op("And", [g.op("GreaterOrEqual", [tc, g.const([0.0, 0.0])]), g.op("LessOrEqual", [tc, hi])])
    mask = g.op("ReduceMin", [g.op("Cast", [inside], to=TensorProto.FLOAT)], axes=[3], keepdims=1)  # (1,K,P,1)
    flo = g.op("Floor", [tc])
    frac = g.op("Sub", [tc, flo])
    c0 = g.op("Min", [g.op("Max", [flo, g.const(0.0)]), hi])
    c1 = g.op("Min", [g.op("Max", [g.op("Add", [flo, g.const(1.0)]), g.const(0.0)]), hi])
    x0, y0, x1, y1 = sl(c0, 3, 0, 1), sl(c0, 3, 1, 2), sl(c1, 3, 0, 1), sl(c1, 3, 1, 2)
    wf = g.const(float(iw))
    r0, r1 = g.op("Mul", [y0, wf]), g.op("Mul", [y1, wf])
    cidx = g.op("Concat", [g.op("Add", [r0, x0]), g.op("Add", [r0, x1]), g.op("Add", [r1, x0]), g.op("Add", [r1, x1])], axis=3)
    cidx = g.op("Cast", [cidx], to=TensorProto.INT64)  # (1,K,P,4): q11, q21, q12, q22
    fx, fy = sl(frac, 3, 0, 1), sl(frac, 3, 1, 2)
    one = g.const(1.0)
    gxw, gyw = g.op("Sub", [one, fx]), g.op("Sub", [one, fy])
    w4 = g.op("Concat", [g.op("Mul", [gxw, gyw]), g.op("Mul", [fx, gyw]), g.op("Mul", [gxw, fy]), g.op("Mul", [fx, fy])], axis=3)
    w4 = g.op("Unsqueeze", [g.op("Mul", [w4, mask]), g.const([3], i64)])  # (1,K,P,1,4)
    for node in ttb:
        feat = node.input[0]
        i = branch[node.input[1]]
        rows = g.op("Reshape", [feat, g.const([ih * iw, -1], i64)])  # (H*W, C)
        q = g.op("Gather", [rows, sl(cidx, 1, i, i + 1)], axis=0)  # (1,1,P,4,C)
        v = g.op("MatMul", [sl(w4, 1, i, i + 1), q])  # (1,1,P,1,C)
        g.op("Reshape", [v, g.const([1, toh, tow, -1], i64)], out=node.output[0])


def _nchwc_residual_heads(model: onnx.ModelProto, counts: dict[str, int]) -> None:
    """An identity 1x1 convolution on every 4-D tensor that comes out of a Transpose and feeds a
    residual Add (the head of each attention branch: the sampled 16x16 patch, NHWC -> NCHW).

    ONNX Runtime keeps a residual chain in its blocked NCHWc layout only when both inputs of each
    Add come from NCHWc operators (the Add then fuses into the next convolution as its "Sum").
    A plain NCHW tensor at the head of the chain makes every Add of that branch plain NCHW, with a
    ReorderOutput and a ReorderInput around each of them (24 reorders over the three branches).
    The identity convolution puts the head into NCHWc once (its input Transpose becomes a
    channels-last ReorderInput). Same values (the sums are only taken in another order)."""
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    producer = {o: n for n in graph.node for o in n.output}
    heads: list[str] = []
    for node in graph.node:
        if node.op_type != "Add":
            continue
        for t in node.input:
            src = producer.get(t)
            shp = shapes.get(t, [])
            if src is not None and src.op_type == "Transpose" and len(shp) == 4 and shp[1] > 0 and t not in heads:
                heads.append(t)
    if not heads:
        return
    new_nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        for i, v in enumerate(node.input):
            if v in heads:
                node.input[i] = f"{v}/nchwc"
        new_nodes.append(node)
        for t in node.output:
            if t in heads:
                c = shapes[t][1]
                w = numpy_helper.from_array(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1), f"{t}/identity")
                graph.initializer.append(w)
                new_nodes.append(helper.make_node(
                    "Conv", [t, w.name], [f"{t}/nchwc"], name=f"{t}/identity_conv", kernel_shape=[1, 1]))
    del graph.node[:]
    graph.node.extend(new_nodes)
    counts["nchwc_residual_heads"] = len(heads)


def _toposort(graph: onnx.GraphProto) -> None:
    """Stable topological order (original order as priority)."""
    import heapq

    nodes = list(graph.node)
    avail = {v.name for v in graph.input} | {i.name for i in graph.initializer} | {""}
    producer = {o: k for k, n in enumerate(nodes) for o in n.output}
    deps = [{producer[i] for i in n.input if i not in avail and i in producer} for n in nodes]
    users: dict[int, list[int]] = {}
    for k, ds in enumerate(deps):
        for d in ds:
            users.setdefault(d, []).append(k)
    left = [len(ds) for ds in deps]
    heap = [k for k, c in enumerate(left) if c == 0]
    heapq.heapify(heap)
    order = []
    while heap:
        k = heapq.heappop(heap)
        order.append(k)
        for u in users.get(k, []):
            left[u] -= 1
            if left[u] == 0:
                heapq.heappush(heap, u)
    if len(order) != len(nodes):
        raise RuntimeError("graph has a cycle")
    del graph.node[:]
    graph.node.extend(nodes[k] for k in order)


def _batch_pass(model: onnx.ModelProto, counts: dict[str, int]) -> None:
    """Replace the custom crop ops by one batched block when they share their inputs."""
    graph = model.graph
    l2tm = [n for n in graph.node if n.op_type == "TFL_Landmarks2TransformMatrix"]
    if len(l2tm) < 2 or len({n.input[0] for n in l2tm}) != 1:
        return
    outs = {n.output[0] for n in l2tm}
    ttb = [n for n in graph.node if n.op_type == "TFL_TransformTensorBilinear"]
    sizes = {(_attrs(n)["output_height"], _attrs(n)["output_width"]) for n in ttb}
    if ttb and (len({n.input[0] for n in ttb}) != 1 or not {n.input[1] for n in ttb} <= outs or len(sizes) != 1):
        return
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    in_hw = (0, 0)
    if ttb:
        shp = shapes.get(ttb[0].input[0])
        if not shp or len(shp) != 4 or min(shp) <= 0:
            return
        in_hw = (shp[1], shp[2])
    g = _G("attention_crops")
    _batched_crops(g, l2tm, ttb, in_hw)
    drop = {id(n) for n in l2tm + ttb}
    keep = [n for n in graph.node if id(n) not in drop]
    del graph.node[:]
    graph.node.extend(keep + g.nodes)
    graph.initializer.extend(g.inits)
    _toposort(graph)
    counts["TFL_Landmarks2TransformMatrix"] = counts.get("TFL_Landmarks2TransformMatrix", 0) + len(l2tm)
    counts["TFL_TransformTensorBilinear"] = counts.get("TFL_TransformTensorBilinear", 0) + len(ttb)
    counts["batched"] = 1


def _rewrite_pass(
    model: onnx.ModelProto, counts: dict[str, int], custom: bool, rewrite_prelu: bool, prelu_mode: str
) -> None:
    graph = model.graph
    inferred = onnx.shape_inference.infer_shapes(model)
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)
    }
    inits = {i.name: i for i in graph.initializer}
    new_nodes: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    for node in graph.node:
        g = _G(node.name or node.op_type)
        if not custom and node.op_type == "PRelu" and node.input[1] in inits and rewrite_prelu:
            slope = numpy_helper.to_array(inits[node.input[1]])
            _prelu(g, node.input[0], node.output[0], slope, prelu_mode)
        elif (
            not custom
            and node.op_type == "Pad"
            and prelu_mode == "conv"
            and (pad := _channel_pad(node, inits, shapes)) is not None
        ):
            _channel_pad_as_conv(g, node.input[0], node.output[0], *pad)
        elif custom and node.op_type == "TFL_Landmarks2TransformMatrix":
            _l2tm(g, node.input[0], node.output[0], _attrs(node))
        elif custom and node.op_type == "TFL_TransformTensorBilinear":
            shp = shapes.get(node.input[0])
            if not shp or len(shp) != 4 or min(shp) <= 0:
                raise RuntimeError(f"unknown input shape for {node.name}: {shp}")
            _ttb(g, node.input[0], node.input[1], node.output[0], _attrs(node), (shp[1], shp[2]))
        elif custom and node.op_type == "TFL_TransformLandmarks":
            _tl(g, node.input[0], node.input[1], node.output[0])
        else:
            new_nodes.append(node)
            continue
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
        new_nodes.extend(g.nodes)
        new_inits.extend(g.inits)
    del graph.node[:]
    graph.node.extend(new_nodes)
    graph.initializer.extend(new_inits)


def _fp16_storage(model: onnx.ModelProto, counts: dict[str, int], min_elements: int = 16) -> None:
    """float32 initializers whose values are all exactly float16 (and that have at least
    ``min_elements``) become float16 initializers followed by a ``Cast`` to float32. ONNX Runtime
    constant-folds the casts at session creation, so the graph it runs holds the same float32
    weights; the file is about half the size."""
    graph = model.graph
    casts: list[onnx.NodeProto] = []
    keep: list[onnx.TensorProto] = []
    for init in graph.initializer:
        a = numpy_helper.to_array(init)
        if a.dtype != np.float32 or a.size < min_elements:
            keep.append(init)
            continue
        h = a.astype(np.float16)
        if not np.array_equal(h.astype(np.float32), a, equal_nan=True):
            keep.append(init)
            continue
        keep.append(numpy_helper.from_array(h, f"{init.name}/fp16"))
        casts.append(helper.make_node("Cast", [f"{init.name}/fp16"], [init.name], name=f"{init.name}/cast",
                                      to=TensorProto.FLOAT))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    # each Cast right before the first node that uses its output: the node order (and so the
    # canonical names) then follows the graph, not tf2onnx's initializer order, which varies
    by_output = {c.output[0]: c for c in casts}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        for name in node.input:
            c = by_output.pop(name, None)
            if c is not None:
                nodes.append(c)
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    counts["fp16_weights"] = len(casts)


def rewrite(
    model: onnx.ModelProto,
    rename_inputs: dict[str, str],
    rename_outputs: dict[str, str],
    rewrite_prelu: bool = True,
    prelu_mode: str = "conv",
    batch_crops: bool = True,
    nchwc_residuals: bool = True,
    fp16_weights: bool = False,
) -> onnx.ModelProto:
    graph = model.graph
    counts: dict[str, int] = {}
    if batch_crops:
        _batch_pass(model, counts)
    # pass 1: MediaPipe custom ops (afterwards every tensor shape can be inferred)
    _rewrite_pass(model, counts, custom=True, rewrite_prelu=False, prelu_mode=prelu_mode)
    # pass 2: PRelu and channel padding, which need the shapes
    _rewrite_pass(model, counts, custom=False, rewrite_prelu=rewrite_prelu, prelu_mode=prelu_mode)
    if nchwc_residuals:
        _nchwc_residual_heads(model, counts)
    # drop initializers nobody uses any more (old PRelu slopes)
    used = {i for n in graph.node for i in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)

    def rename(old: str, new: str) -> None:
        for n in graph.node:
            for i, v in enumerate(n.input):
                if v == old:
                    n.input[i] = new
            for i, v in enumerate(n.output):
                if v == old:
                    n.output[i] = new
        for v in list(graph.input) + list(graph.output) + list(graph.value_info):
            if v.name == old:
                v.name = new

    for old, new in {**rename_inputs, **rename_outputs}.items():
        rename(old, new)
    leftover = [n.op_type for n in graph.node if n.op_type.startswith("TFL_")]
    if leftover:
        raise RuntimeError(f"custom ops left: {leftover}")
    if fp16_weights:
        _fp16_storage(model, counts)
    model = canonicalize(model)
    onnx.checker.check_model(model, full_check=True)
    print("rewrote:", counts)
    return model
