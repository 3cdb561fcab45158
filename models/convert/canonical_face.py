"""Extract MediaPipe's canonical 3D face from ``geometry_pipeline_metadata_landmarks.binarypb``.

The file is a serialized ``mediapipe.face_geometry.GeometryPipelineMetadata`` protobuf:

    GeometryPipelineMetadata { canonical_mesh = 1 (Mesh3d); procrustes_landmark_basis = 2 (repeated
                               WeightedLandmarkRef {landmark_id = 1 uint32; weight = 2 float});
                               input_source = 3 (enum) }
    Mesh3d { vertex_type = 1; primitive_type = 2; vertex_buffer = 3 (repeated float, 5 per vertex:
             x, y, z, u, v); index_buffer = 4 (repeated uint32, 3 per triangle) }

A tiny wire-format decoder is enough (no protobuf dependency, no generated code).

Usage: python canonical_face.py PATH/TO/geometry_pipeline_metadata_landmarks.binarypb OUT.npz
"""

from __future__ import annotations

import struct
import sys

import numpy as np


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = 0
    value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7


def _fields(buf: bytes):
    """Yield (field_number, wire_type, value) where value is int or bytes."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i : i + 8], i + 8
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wt == 5:
            v, i = buf[i : i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield field, wt, v


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def parse(data: bytes) -> dict[str, np.ndarray]:
    mesh = None
    basis_ids: list[int] = []
    basis_w: list[float] = []
    for f, wt, v in _fields(data):
        if f == 1 and wt == 2:
            mesh = v
        elif f == 2 and wt == 2:
            lid, w = 0, 0.0
            for f2, wt2, v2 in _fields(v):
                if f2 == 1:
                    lid = v2
                elif f2 == 2 and wt2 == 5:
                    w = struct.unpack("<f", v2)[0]
            basis_ids.append(lid)
            basis_w.append(w)
    if mesh is None:
        raise ValueError("no canonical_mesh in file")
    floats: list[float] = []
    idx: list[int] = []
    for f, wt, v in _fields(mesh):
        if f == 3:
            if wt == 2:
                floats.extend(struct.unpack(f"<{len(v) // 4}f", v))
            elif wt == 5:
                floats.append(struct.unpack("<f", v)[0])
        elif f == 4:
            if wt == 2:
                idx.extend(_packed_varints(v))
            elif wt == 0:
                idx.append(v)
    vb = np.asarray(floats, np.float32).reshape(-1, 5)
    tri = np.asarray(idx, np.int32).reshape(-1, 3)
    if vb.shape[0] != 468:
        raise ValueError(f"expected 468 vertices, got {vb.shape[0]}")
    if tri.min() < 0 or tri.max() >= 468:
        raise ValueError("triangle index out of range")
    return {
        "vertices": np.ascontiguousarray(vb[:, :3]),
        "uv": np.ascontiguousarray(vb[:, 3:5]),
        "triangles": tri,
        "procrustes_ids": np.asarray(basis_ids, np.int32),
        "procrustes_weights": np.asarray(basis_w, np.float32),
    }


def main(argv: list[str]) -> int:
    src, out = argv[1], argv[2]
    with open(src, "rb") as fh:
        arrays = parse(fh.read())
    np.savez(out, **arrays)
    print(
        f"{out}: vertices {arrays['vertices'].shape}, triangles {arrays['triangles'].shape}, "
        f"uv {arrays['uv'].shape}, procrustes basis {arrays['procrustes_ids'].shape}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
