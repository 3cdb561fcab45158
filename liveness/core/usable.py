"""The usable-face rule: one set of thresholds for what the quality monitor tells the candidate
("move closer", "more light") and for the fusion's gate that makes a clip ``inconclusive``.

Until issue 19 the two had their own sets (monitor: 60 px, sharpness 8, inside 0.85, brightness
40..235; fusion: 40 px, 4, 0.75, 30..235). The monitor's, stricter set is the one kept: a face
the candidate is asked to fix is not one the verdict may rest on. On the dev eval the monitor
finds at least 85 % of every clip's frames usable, far above the fusion gate's 30 %, so no dev
clip is judged differently (``benchmarks/README.md``, dev eval before/after issue 19).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["USABLE", "UsableFace", "unusable_conditions"]

@dataclass(frozen=True)
class UsableFace:
    """A face is usable when ``size_px >= min_size_px`` (sqrt of the box area),
    ``min_brightness <= brightness <= max_brightness`` (mean luma), ``sharpness >=
    min_sharpness`` (variance of the Laplacian) and ``inside >= min_inside`` (fraction of the
    box inside the frame)."""

    min_size_px: float = 60.0
    min_brightness: float = 40.0
    max_brightness: float = 235.0
    min_sharpness: float = 8.0
    min_inside: float = 0.85


#: the thresholds in force (the defaults of ``QualityOptions`` and ``FusionOptions``)
USABLE = UsableFace()


def unusable_conditions(size_px: Any, brightness: Any, sharpness: Any, inside: Any,
                        gate: UsableFace = USABLE) -> dict[str, Any]:
    """Which usability conditions fail: ``small``, ``dark``, ``bright``, ``blurred``,
    ``out_of_frame``; for one face (floats -> bools) or many (arrays -> boolean arrays)."""
    with np.errstate(invalid="ignore"):
        return {
            "small": size_px < gate.min_size_px,
            "dark": brightness < gate.min_brightness,
            "bright": brightness > gate.max_brightness,
            "blurred": sharpness < gate.min_sharpness,
            "out_of_frame": inside < gate.min_inside,
        }
