"""Turn a tflite model with sparse weights (``DENSIFY`` ops) into an equivalent dense one.

MediaPipe's ``face_detection_full_range_sparse.tflite`` stores 46 of its weight tensors in
TFLite's sparse format; a ``DENSIFY`` op expands each at run time. tf2onnx cannot read sparse
tensors (TensorFlow's ``Interpreter.get_tensor_details`` crashes on them), so before converting:

1. run the original model once in TensorFlow's TFLite interpreter with
   ``experimental_preserve_all_tensors`` and read every ``DENSIFY`` output (the dense weights,
   exactly as the runtime expands them);
2. store each as a constant buffer of that output tensor and drop the ``DENSIFY`` ops;
3. drop the tensors no operator uses any more (the sparse originals) and renumber the rest.

The dense model's outputs are bit-identical to the sparse model's (checked on random inputs here).
Runs in the conversion venv (tensorflow-cpu).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _builtin(model, op) -> int:  # noqa: ANN001
    oc = model.operatorCodes[op.opcodeIndex]
    return max(int(oc.builtinCode), int(oc.deprecatedBuiltinCode))


def densify(src: Path, dst: Path, check_inputs: int = 3) -> int:
    """Write the dense version of ``src`` to ``dst``; returns the number of ``DENSIFY`` ops removed."""
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils as fu

    model = fu.read_model(str(src))
    if len(model.subgraphs) != 1:
        raise RuntimeError(f"{src}: expected one subgraph, got {len(model.subgraphs)}")
    g = model.subgraphs[0]
    dens = [op for op in g.operators if _builtin(model, op) == schema.BuiltinOperator.DENSIFY]
    if not dens:
        dst.write_bytes(src.read_bytes())
        return 0

    it = tf.lite.Interpreter(model_path=str(src), experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    inp = it.get_input_details()[0]
    it.set_tensor(inp["index"], np.zeros(inp["shape"], inp["dtype"]))
    it.invoke()
    for op in dens:
        out = int(op.outputs[0])
        val = it.get_tensor(out)
        t = g.tensors[out]
        if list(val.shape) != t.shape.tolist():
            raise RuntimeError(f"DENSIFY output {t.name!r}: shape {val.shape} != {t.shape.tolist()}")
        buf = schema.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(val).tobytes(), np.uint8)
        model.buffers.append(buf)
        t.buffer = len(model.buffers) - 1
    drop = {id(op) for op in dens}
    g.operators = [op for op in g.operators if id(op) not in drop]

    # keep only the tensors still referenced (the sparse originals go) and renumber
    refs = {int(i) for op in g.operators for i in list(op.inputs) + list(op.outputs) if i >= 0}
    used = sorted(refs | {int(i) for i in g.inputs} | {int(i) for i in g.outputs})
    remap = {old: new for new, old in enumerate(used)}
    g.tensors = [g.tensors[i] for i in used]
    if any(t.sparsity is not None for t in g.tensors):
        raise RuntimeError("a sparse tensor is still referenced")
    for op in g.operators:
        op.inputs = np.array([remap[int(i)] if i >= 0 else -1 for i in op.inputs], np.int32)
        op.outputs = np.array([remap[int(i)] for i in op.outputs], np.int32)
    g.inputs = np.array([remap[int(i)] for i in g.inputs], np.int32)
    g.outputs = np.array([remap[int(i)] for i in g.outputs], np.int32)
    fu.write_model(model, str(dst))

    # same outputs, bit for bit
    rng = np.random.default_rng(0)
    for _ in range(check_inputs):
        x = rng.uniform(-1, 1, inp["shape"]).astype(inp["dtype"])
        outs = []
        for p in (src, dst):
            ip = tf.lite.Interpreter(model_path=str(p), num_threads=1)
            ip.allocate_tensors()
            ip.set_tensor(ip.get_input_details()[0]["index"], x)
            ip.invoke()
            outs.append([ip.get_tensor(d["index"]).copy() for d in ip.get_output_details()])
        for a, b in zip(*outs, strict=True):
            if not np.array_equal(a, b):
                raise RuntimeError(f"densified model differs from {src.name}: {np.abs(a - b).max()}")
    return len(dens)
