"""Dev frames with real hands, for the hand models' parity (``convert_mediapipe.py`` and
``tests/test_models.py``).

The frames are third-party footage in ``../shared/data``: they are read from there each time and
never stored. What is stored (``models/reference/hand_frames.npz``) is where each input was cut
(clip, frame index, crop corner), the sha256 of each input and the tflite models' outputs.

To keep the inputs identical wherever they are rebuilt, nothing is resampled by an image library:
each model input is a crop of the frame (192x192 for the palm detectors; for the hand landmark
models a 224x224 crop, or a 112x112 one repeated 2x2, turned by a multiple of 90 degrees so that
the hand roughly points up as the model expects; zero outside the frame), and the frame is
converted from the decoder's YUV 4:2:0 planes (bit-exact in every conforming H.264 decoder) to
RGB here, in float64 numpy arithmetic, rather than by the video library's (version-dependent)
colour conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

PALM_SIZE = 192
HAND_SIZE = 224


@dataclass(frozen=True)
class HandFrame:
    clip: str  # path under ../shared/data
    index: int  # frame number in decoding order
    palm_xy: tuple[int, int]  # top-left corner of the 192x192 palm-detector input
    hand_xy: tuple[int, int]  # top-left corner of the hand-landmark crop ...
    hand_scale: int  # ... of 224 / hand_scale pixels, each repeated hand_scale x hand_scale
    hand_rot: int  # np.rot90 turns (counter-clockwise on screen)
    note: str


#: found by running the palm detector over every 10th frame of the real dev and training clips
#: and checking the hits by eye; the palm crops are centred on the first palm found, the hand
#: crops on the first hand's ROI (our tracker's), scaled and turned to its size and angle
HAND_FRAMES: tuple[HandFrame, ...] = (
    HandFrame("video/real/dfl_Matilda_Bobbie_2.mp4", 170, (33, 160), (19, 164), 1, 0, "open hand raised, cut by the frame's lower edge"),
    HandFrame("video/real/dfl_Nicola_Badge_1.mp4", 110, (286, 154), (258, 163), 1, 0, "both hands open, gesturing"),
    HandFrame("video/real/dfl_Silwan_Stillwone_0.mp4", 180, (0, 54), (2, 102), 2, 0, "fingers on the cheek"),
    HandFrame("video/real/dfl_Kim_Jarrey_3.mp4", 300, (256, 110), (250, 111), 1, 3, "both hands low, dim room"),
    HandFrame("video/real/dfl_Bryan_Greynolds_1.mp4", 110, (332, 190), (359, 186), 1, 0, "hand raised, side view"),
    HandFrame("video/real/dfl_Dean_Wiesel_0.mp4", 60, (250, 174), (180, 213), 1, 3, "thumb up, outdoors"),
    HandFrame("train/real/none_pexels_gazedemo_video04.mp4", 110, (431, 288), (370, 300), 1, 3, "hands holding a toy"),
    HandFrame("train/real/none_pexels_gazedemo_video02.mp4", 10, (277, 174), (248, 132), 1, 0, "hands holding a drawing"),
)
#: palm-detector regressors are stored for this many best-scoring anchors per frame (and the
#: scores for all 2016): the parity test compares those rows, the file stays small
PALM_ROWS = 64


def yuv420_to_rgb(planes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H * 3 / 2, W) uint8 I420 planes -> (H, W, 3) uint8 RGB: BT.601 limited range, chroma
    repeated 2x2, rounded half to even."""
    y = planes[:height].astype(np.float64)
    cw, ch = (width + 1) // 2, (height + 1) // 2
    flat = planes[height:].reshape(-1)
    u = flat[: cw * ch].reshape(ch, cw).astype(np.float64)
    v = flat[cw * ch : 2 * cw * ch].reshape(ch, cw).astype(np.float64)
    u = np.repeat(np.repeat(u, 2, 0), 2, 1)[:height, :width] - 128.0
    v = np.repeat(np.repeat(v, 2, 0), 2, 1)[:height, :width] - 128.0
    yy = (y - 16.0) * (255.0 / 219.0)
    k = 255.0 / 224.0
    r = yy + 1.402 * k * v
    g = yy - (0.114 * 1.772 / 0.587) * k * u - (0.299 * 1.402 / 0.587) * k * v
    b = yy + 1.772 * k * u
    return np.clip(np.rint(np.stack([r, g, b], axis=-1)), 0, 255).astype(np.uint8)


def read_frame(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` (decoding order) of a clip, as RGB uint8, via PyAV's YUV 4:2:0 output."""
    import av

    with av.open(str(path)) as c:
        for k, fr in enumerate(c.decode(video=0)):
            if k == index:
                if fr.format.name != "yuv420p":
                    raise RuntimeError(f"{path}: frames are {fr.format.name}, expected yuv420p")
                return yuv420_to_rgb(fr.to_ndarray(format="yuv420p"), fr.width, fr.height)
    raise RuntimeError(f"{path} has no frame {index}")


def crop(rgb: np.ndarray, xy: tuple[int, int], size: int) -> np.ndarray:
    """size x size crop with top-left corner ``xy`` (zero outside the frame)."""
    out = np.zeros((size, size, 3), np.uint8)
    x, y = xy
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + size, w), min(y + size, h)
    if x1 > x0 and y1 > y0:
        out[y0 - y : y1 - y, x0 - x : x1 - x] = rgb[y0:y1, x0:x1]
    return out


def frame_inputs(shared: Path) -> dict[str, list[np.ndarray]]:
    """{"palm": [192x192x3 uint8, ...], "hand": [224x224x3 uint8, ...]} in ``HAND_FRAMES`` order."""
    out: dict[str, list[np.ndarray]] = {"palm": [], "hand": []}
    for f in HAND_FRAMES:
        rgb = read_frame(shared / f.clip, f.index)
        out["palm"].append(crop(rgb, f.palm_xy, PALM_SIZE))
        hand = crop(rgb, f.hand_xy, HAND_SIZE // f.hand_scale)
        hand = np.repeat(np.repeat(hand, f.hand_scale, axis=0), f.hand_scale, axis=1)
        out["hand"].append(np.ascontiguousarray(np.rot90(hand, f.hand_rot)))
    return out
