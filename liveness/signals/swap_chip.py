"""What the swap detector sees of a face: the dlib-aligned 150-px chip and its validity mask.

The input of the swap detector (``signals.artefact``, ``models/onnx/swap_detector.onnx``), one rule
for its training crops (``models/train/swap_data.py``) and for live frames. The chip is :func:`~liveness.signals.embedding.face_chip` of
the frame; the mask marks the chip pixels that come from real image content: 1 inside ``valid``
(by default the whole frame), 0 where the chip reaches past the frame's edge or, for a tight face
crop padded by reflection before tracking, into the padding. A detector that pools its features
over the mask only cannot take a black border or a mirrored pad as evidence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liveness.signals.embedding import CHIP_SIZE, chip_transform, face_chip

__all__ = ["SwapChip", "chip_mask", "swap_chip"]

_U, _V = np.meshgrid(np.arange(CHIP_SIZE, dtype=np.float64), np.arange(CHIP_SIZE, dtype=np.float64))


@dataclass(frozen=True)
class SwapChip:
    """``chip`` (150, 150, 3) uint8 RGB; ``mask`` (150, 150) float32 in {0, 1}."""

    chip: np.ndarray
    mask: np.ndarray

    def to_dict(self) -> dict[str, object]:
        return {"chip_shape": list(self.chip.shape), "valid_fraction": float(self.mask.mean())}


def chip_mask(
    landmarks: np.ndarray, valid: tuple[float, float, float, float], out: np.ndarray | None = None
) -> np.ndarray:
    """(150, 150) float32: 1 where a chip pixel maps inside ``valid`` = (x0, y0, x1, y1) image
    pixels (x1, y1 exclusive) with all four of its bilinear taps, else 0."""
    m = chip_transform(landmarks)
    x = m[0, 0] * _U + m[0, 1] * _V + m[0, 2]
    y = m[1, 0] * _U + m[1, 1] * _V + m[1, 2]
    x0, y0, x1, y1 = valid
    inside = (x >= x0) & (x <= x1 - 1) & (y >= y0) & (y <= y1 - 1)  # bilinear: all 4 taps inside
    if out is None:
        out = np.empty((CHIP_SIZE, CHIP_SIZE), np.float32)
    np.copyto(out, inside, casting="unsafe")
    return out


def swap_chip(
    rgb: np.ndarray,
    landmarks: np.ndarray,
    valid: tuple[float, float, float, float] | None = None,
) -> SwapChip:
    """The chip and mask of the face at ``landmarks`` (478-point mesh, image pixels) in ``rgb``;
    ``valid`` defaults to the whole image."""
    h, w = rgb.shape[:2]
    box = (0.0, 0.0, float(w), float(h)) if valid is None else valid
    return SwapChip(face_chip(rgb, landmarks), chip_mask(landmarks, box))
