"""Per-stage cost of face tracking (decode, detect, mesh, pose) vs MediaPipe's legacy face mesh.

    python benchmarks/bench_tracking.py [--mp-python PY] [--repeats 5] [--frames 120] [--json RUN.json]
    python benchmarks/bench_tracking.py --pool RUN1.json RUN2.json ...   # pool several runs

Frames: a dev clip from ../shared/data when present (else the astronaut photo moving), resized
to 640x480 and 1280x720 and encoded to H.264 in a temp folder. Ours runs in this process with one
ONNX Runtime thread; MediaPipe's legacy FaceMesh (refine_landmarks=True, video mode) runs on the
same frames in the same run, in this interpreter when ``mediapipe`` imports, else in ``--mp-python``
(a venv with ``pip install mediapipe==0.10.14``; it needs its own OpenCV build). Prints a markdown
table of medians over repeats (ms/frame) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MP_SNIPPET = r"""
import sys, time, json, numpy as np
import mediapipe as mp
frames = np.load(sys.argv[1])
print("ready", flush=True)
for line in sys.stdin:  # one timed pass over the frames per line, so runs interleave with ours
    fm = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.5, min_tracking_confidence=0.5)
    fm.process(frames[0])  # warm-up graph
    t0 = time.perf_counter(); c0 = time.process_time(); found = 0
    for f in frames:
        out = fm.process(f)
        found += out.multi_face_landmarks is not None
    ms = (time.perf_counter() - t0) * 1e3 / len(frames)
    cpu = (time.process_time() - c0) * 1e3 / len(frames)
    fm.close()
    print(json.dumps({"ms": ms, "cpu_ms": cpu, "found": found / len(frames)}), flush=True)
"""


class Before:
    """The tracker's per-frame Python code as it was before this change (commit ce7ddc7), patched
    into a tracker for ``--before`` passes, so that before and after are timed in one run: the
    crop warped from a copy of the ROI's bounding region (up to 360,000 region pixels), the
    input scaled by a float64 multiplication, the landmark bounds taken column by column."""

    COPY_MAX_PIXELS = 360_000

    def __init__(self, mesh) -> None:
        self.mesh = mesh
        self.region_buf = np.zeros(0, np.uint8)

    def crop(self, rgb: np.ndarray, roi) -> np.ndarray:
        import math

        from liveness.tracking.mesh import CROP

        h, w = rgb.shape[:2]
        c, s = abs(math.cos(roi.angle)), abs(math.sin(roi.angle))
        r = 0.5 * roi.size * (c + s) + 2.0
        x0, y0 = max(0, math.floor(roi.cx - r)), max(0, math.floor(roi.cy - r))
        x1, y1 = min(w, math.ceil(roi.cx + r) + 1), min(h, math.ceil(roi.cy + r) + 1)
        inv = cv2.invertAffineTransform(roi.crop_matrix(CROP))
        src = rgb
        area = (x1 - x0) * (y1 - y0)
        if x1 - x0 >= 2 and y1 - y0 >= 2 and area < w * h and area <= self.COPY_MAX_PIXELS:
            n = (y1 - y0) * (x1 - x0) * 3
            if self.region_buf.size < n:
                self.region_buf = np.empty(n, np.uint8)
            src = self.region_buf[:n].reshape(y1 - y0, x1 - x0, 3)
            np.copyto(src, rgb[y0:y1, x0:x1])
            inv[0, 2] -= x0
            inv[1, 2] -= y0
        cv2.warpAffine(src, inv, (CROP, CROP), dst=self.mesh._crop, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_REPLICATE)
        return self.mesh._crop

    def infer_crop(self, crop: np.ndarray):
        from liveness.core.mathx import logistic
        from liveness.tracking import mesh as M

        m = self.mesh
        sess = m._session()
        np.multiply(crop, 1.0 / 255.0, out=m._input[0], casting="unsafe")
        outs = dict(zip(m._output_names, sess.run(None, {m._input_name: m._input}), strict=True))
        lm = m._out
        lm[:468] = outs["mesh"].reshape(468, 3)
        lm[M.LIPS_IDX, :2] = outs["lips"].reshape(80, 2)
        lm[M.LEFT_EYE_IDX, :2] = outs["left_eye"].reshape(71, 2)
        lm[M.RIGHT_EYE_IDX, :2] = outs["right_eye"].reshape(71, 2)
        lm[468:473, :2] = outs["left_iris"].reshape(5, 2)
        lm[468:473, 2] = lm[M.LEFT_EYE_CONTOUR, 2].mean()
        lm[473:478, :2] = outs["right_iris"].reshape(5, 2)
        lm[473:478, 2] = lm[M.RIGHT_EYE_CONTOUR, 2].mean()
        logit = float(np.clip(outs["face_flag"].reshape(-1)[0], -80.0, 80.0))
        return lm.copy(), logistic(logit)

    @staticmethod
    def roi_from_landmarks(landmarks: np.ndarray, scale: float = 1.5):
        import math

        from liveness.tracking.mesh import Roi, _normalize_radians

        pts = np.asarray(landmarks)[:, :2]
        lo, hi = pts[:468].min(axis=0), pts[:468].max(axis=0)
        (x0, y0), (x1, y1) = pts[33], pts[263]
        angle = _normalize_radians(-math.atan2(-(float(y1) - float(y0)), float(x1) - float(x0)))
        w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
        return Roi(cx=float(lo[0] + hi[0]) / 2, cy=float(lo[1] + hi[1]) / 2, size=max(w, h) * scale, angle=angle)

    @staticmethod
    def box(landmarks: np.ndarray) -> np.ndarray:
        lo, hi = landmarks[:468, :2].min(axis=0), landmarks[:468, :2].max(axis=0)
        return np.array([lo[0], lo[1], hi[0] - lo[0], hi[1] - lo[1]], np.float32)

    def patch(self, on: bool, tracker_mod, mesh_mod, saved: dict) -> None:
        """Install (``on``) or remove the before-code."""
        if on:
            self.mesh.crop, self.mesh.infer_crop = self.crop, self.infer_crop
            tracker_mod._box, mesh_mod.roi_from_landmarks = self.box, self.roi_from_landmarks
        else:
            del self.mesh.crop, self.mesh.infer_crop
            tracker_mod._box, mesh_mod.roi_from_landmarks = saved["box"], saved["roi"]


def source_frames(n: int) -> list[np.ndarray]:
    shared = Path(os.environ.get("LIVENESS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    clip = shared / "video" / "real" / "dfl_Bryan_Greynolds_0.mp4"  # 520x312 webcam streamer
    if not clip.is_file():
        cands = sorted((shared / "video" / "real").glob("*.mp4")) if shared.is_dir() else []
        clip = cands[0] if cands else None
    if clip is not None:
        from liveness.sources.video import open_video

        print(f"frames from {clip.name}", file=sys.stderr)
        out = []
        for fr in open_video(clip):
            out.append(fr.image)
            if len(out) >= n:
                break
        return out
    from skimage import data

    a = data.astronaut()
    return [cv2.warpAffine(a, np.float32([[1, 0, 2 * i], [0, 1, i]]), (512, 512), borderMode=cv2.BORDER_REFLECT)
            for i in range(n)]


def fit(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Letterbox-free resize: scale to cover, centre crop."""
    ih, iw = img.shape[:2]
    s = max(w / iw, h / ih)
    r = cv2.resize(img, (int(np.ceil(iw * s)), int(np.ceil(ih * s))), interpolation=cv2.INTER_AREA)
    y0, x0 = (r.shape[0] - h) // 2, (r.shape[1] - w) // 2
    return np.ascontiguousarray(r[y0 : y0 + h, x0 : x0 + w])


def encode(frames: list[np.ndarray], path: Path) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import write_clip

    write_clip(path, frames, fps=30)


def bench_ours(frames: list[np.ndarray], clip: Path, reps: int, between=None,
               before: bool = False, detect_interval_s: float = 1.0) -> dict[str, list[float]]:
    """Our tracker over ``frames``, ``reps`` timed passes; ``between()`` (the MediaPipe pass) runs
    next to each of them, so that both see the same machine load: after our pass on even repeats,
    before it on odd ones (ours, MP, MP, ours, ours, MP, ...): neither side always runs second,
    and a steady drift of the machine's speed cancels. ``before``: also time, in each repeat, a
    pass with the per-frame code as it was before (:class:`Before`, ``--before``), so that before
    and after are measured in one run."""
    from liveness.sources.video import open_video
    from liveness.tracking import tracker as _tracker
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tr = FaceTracker(TrackerOptions(threads=1, detect_interval_s=detect_interval_s))
    det, mesh, pose = tr.detector, tr.mesh, tr.pose
    stats: dict[str, list[float]] = {"decode": [], "detect": [], "mesh": [], "pose": [], "quality": [],
                                     "tracking_total": [], "tracking_cpu": [], "tracking_no_quality": [],
                                     "tracking_cpu_no_quality": []}
    # stage timing through wrapped calls
    timers = {"detect": 0.0, "mesh": 0.0, "pose": 0.0, "quality": 0.0}

    def wrap(obj, name, key):
        f = getattr(obj, name)

        def g(*a, **k):
            t0 = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                timers[key] += time.perf_counter() - t0

        setattr(obj, name, g)

    wrap(det, "detect", "detect")
    wrap(mesh, "run", "mesh")
    wrap(pose, "estimate", "pose")
    quality_fn = _tracker.face_quality
    wrap(_tracker, "face_quality", "quality")  # the tracker looks it up in its module
    tr.process(frames[0], 0.0, 0)  # warm-up
    found = 0
    from liveness.tracking import mesh as _mesh

    old = Before(mesh)
    saved = {"box": _tracker._box, "roi": _mesh.roi_from_landmarks}

    def one_pass(prefix: str) -> int:
        tr.reset()
        for k in timers:
            timers[k] = 0.0
        found = 0
        t0, c0 = time.perf_counter(), time.process_time()
        for i, f in enumerate(frames):
            found += tr.process(f, i / 30, i).face
        total = (time.perf_counter() - t0) * 1e3 / len(frames)
        cpu = (time.process_time() - c0) * 1e3 / len(frames)
        q = timers["quality"] * 1e3 / len(frames)
        stats.setdefault(prefix + "tracking_total", []).append(total)
        stats.setdefault(prefix + "tracking_cpu", []).append(cpu)
        # what the issue counts (tracking + mesh + pose) without the face-quality measures,
        # which MediaPipe does not compute (single-threaded: their wall time is their CPU time)
        stats.setdefault(prefix + "tracking_no_quality", []).append(total - q)
        stats.setdefault(prefix + "tracking_cpu_no_quality", []).append(cpu - q)
        if not prefix:
            for k, v in timers.items():
                stats[k].append(v * 1e3 / len(frames))
        return found

    for rep in range(reps):
        if between is not None and rep % 2 == 1:
            between()
        t0 = time.perf_counter()
        n = sum(1 for _ in open_video(clip))
        stats["decode"].append((time.perf_counter() - t0) * 1e3 / n)
        # the "before" crop (every region copied) next to the current one, alternating which runs first
        order = ["", "before_"] if rep % 2 == 0 else ["before_", ""]
        for prefix in order if before else [""]:
            if prefix:
                old.patch(True, _tracker, _mesh, saved)
            try:
                f_ = one_pass(prefix)
            finally:
                if prefix:
                    old.patch(False, _tracker, _mesh, saved)
            found = f_ if not prefix else found
        if between is not None and rep % 2 == 0:
            between()
    _tracker.face_quality = quality_fn
    stats["found"] = [found / len(frames)]
    return stats


def stage_cpu(frames: list[np.ndarray], reps: int, detect_interval_s: float = 1.0) -> dict[str, dict[str, float]]:
    """``--stages``: CPU ms per frame (``time.thread_time``, steadier than wall time on a loaded
    machine) of each stage of our tracker, for the current code ("after") and :class:`Before`,
    in alternating passes over ``frames``; medians over ``reps`` passes of each."""
    from liveness.tracking import mesh as _mesh
    from liveness.tracking import tracker as _tracker
    from liveness.tracking.tracker import FaceTracker, TrackerOptions

    tr = FaceTracker(TrackerOptions(threads=1, detect_interval_s=detect_interval_s))
    m = tr.mesh
    m._session()
    acc: dict[str, float] = {}

    def timed(fn, key):
        def g(*a, **k):
            t0 = time.thread_time()
            try:
                return fn(*a, **k)
            finally:
                acc[key] = acc.get(key, 0.0) + time.thread_time() - t0

        return g

    class Sess:  # the model call alone
        def __init__(self, inner) -> None:
            self.inner = inner

        def run(self, *a, **k):
            return timed(self.inner.run, "model")(*a, **k)

        def __getattr__(self, name: str):
            return getattr(self.inner, name)

    m._sess = Sess(m._sess)
    saved = {"box": _tracker._box, "roi": _mesh.roi_from_landmarks, "quality": _tracker.face_quality}
    old = Before(m)
    out: dict[str, dict[str, list[float]]] = {"after": {}, "before": {}}
    tr.process(frames[0], 0.0, 0)
    for rep in range(reps):
        for which in (("after", "before") if rep % 2 == 0 else ("before", "after")):
            if which == "before":
                old.patch(True, _tracker, _mesh, saved)
            m.crop, m.infer_crop = timed(m.crop, "crop"), timed(m.infer_crop, "infer")
            tr.detector.detect = timed(type(tr.detector).detect.__get__(tr.detector), "detect")
            tr.full_detector.detect = timed(type(tr.full_detector).detect.__get__(tr.full_detector), "detect")
            tr.pose.estimate = timed(type(tr.pose).estimate.__get__(tr.pose), "pose")
            _tracker.face_quality = timed(saved["quality"], "quality")
            _tracker._box = timed(_tracker._box, "bounds")
            _mesh.roi_from_landmarks = timed(_mesh.roi_from_landmarks, "bounds")
            acc.clear()
            tr.reset()
            t0 = time.thread_time()
            for i, f in enumerate(frames):
                tr.process(f, i / 30, i)
            acc["total"] = time.thread_time() - t0
            del m.crop, m.infer_crop, tr.detector.detect, tr.full_detector.detect, tr.pose.estimate  # also Before's
            _tracker.face_quality, _tracker._box, _mesh.roi_from_landmarks = saved["quality"], saved["box"], saved["roi"]
            st = {k: v * 1e3 / len(frames) for k, v in acc.items()}
            st["mesh other"] = st.pop("infer") - st["model"]
            st["rest"] = st["total"] - sum(v for k, v in st.items() if k != "total")
            st["total - quality"] = st["total"] - st["quality"]
            for k, v in st.items():
                out[which].setdefault(k, []).append(v)
    return {w: {k: float(np.median(v)) for k, v in d.items()} for w, d in out.items()}


class MediaPipeRunner:
    """MediaPipe's legacy FaceMesh in a child interpreter (it needs its own OpenCV build), one
    timed pass over the frames per ``run()``."""

    def __init__(self, frames: list[np.ndarray], mp_python: str | None) -> None:
        self.dir = tempfile.TemporaryDirectory()
        p = Path(self.dir.name) / "frames.npy"
        np.save(p, np.stack(frames))
        try:
            import mediapipe  # noqa: F401

            py = sys.executable
        except ImportError:
            py = mp_python
        self.proc = None
        self.results: list[dict] = []
        if py is not None:
            self.proc = subprocess.Popen([py, "-c", MP_SNIPPET, str(p)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
            if self.proc.stdout.readline().strip() != "ready":
                raise RuntimeError("MediaPipe child failed to start")

    def run(self) -> None:
        if self.proc is None:
            return
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        self.results.append(json.loads(self.proc.stdout.readline()))

    def close(self) -> dict | None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
        self.dir.cleanup()
        if not self.results:
            return None
        return {k: [r[k] for r in self.results] for k in ("ms", "cpu_ms")} | {"found": self.results[-1]["found"]}


def pool(paths: list[Path]) -> None:
    """Pool the per-repeat paired ratios of several ``--json`` runs: median and a 95 % bootstrap
    interval per frame size."""
    acc: dict[str, dict[str, list[float]]] = {}
    keys = (("detect+mesh+pose, wall", "tracking_no_quality", "ms"), ("CPU", "tracking_cpu_no_quality", "cpu_ms"),
            ("+ quality, wall", "tracking_total", "ms"), ("+ quality, CPU", "tracking_cpu", "cpu_ms"))
    for p in paths:
        for row in json.loads(p.read_text())["rows"]:
            a = acc.setdefault(row["frames"], {k: [] for k, _, _ in keys})
            for k, ours, mp in keys:
                a[k] += list(np.asarray(row["ours"][ours]) / np.asarray(row["mediapipe"][mp]))
    rng = np.random.default_rng(0)
    print("| frames | repeats | " + " | ".join(f"{k} / MP" for k, _, _ in keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for frames, a in acc.items():
        cells = []
        for k, _, _ in keys:
            v = np.asarray(a[k])
            boots = np.median(rng.choice(v, (2000, len(v))), axis=1)
            cells.append(f"{np.median(v):.2f} [{np.quantile(boots, 0.025):.2f}, {np.quantile(boots, 0.975):.2f}]")
        print(f"| {frames} | {len(a[keys[0][0]])} | " + " | ".join(cells) + " |")
    print("\nmedian of per-repeat ratios (our pass / the MediaPipe pass next to it), 95 % bootstrap interval")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pool", type=Path, nargs="+", help="only pool the ratios of earlier --json runs")
    ap.add_argument("--mp-python", help="python of a venv with mediapipe==0.10.14")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--json", type=Path, help="write every repeat's figures here")
    ap.add_argument("--cv-threads", type=int, default=1,
                    help="cv2.setNumThreads for our tracker (default 1, as the liveness CLI runs; "
                         "-1 for OpenCV's own choice)")
    ap.add_argument("--before", action="store_true",
                    help="also time the per-frame code as it was before (class Before) in the same run")
    ap.add_argument("--stages", action="store_true",
                    help="only the CPU time of each stage of ours, before (class Before) and after, alternating")
    ap.add_argument("--detect-interval", type=float, default=1.0,
                    help="TrackerOptions.detect_interval_s (default 1.0 as the product runs; inf: the "
                         "detectors run only when the track is lost, as MediaPipe's legacy face mesh does)")
    args = ap.parse_args()
    if args.pool:
        pool(args.pool)
        return
    cv2.setNumThreads(args.cv_threads)
    src = source_frames(args.frames)
    if args.stages:
        keys = ("detect", "crop", "model", "mesh other", "bounds", "pose", "rest", "total - quality", "quality")
        print("| frames | code | " + " | ".join(keys) + " |")
        print("|---|---|" + "---|" * len(keys))
        for w, h in [(640, 480), (1280, 720)]:
            res = stage_cpu([fit(f, w, h) for f in src], args.repeats, args.detect_interval)
            for which in ("before", "after"):
                print(f"| {w}x{h} | {which} | " + " | ".join(f"{res[which][k]:.3f}" for k in keys) + " |")
        print(f"\nCPU ms/frame (thread_time), medians of {args.repeats} alternating passes of each over "
              f"{len(src)} frames; model = the mesh model's session.run; mesh other = input scaling and "
              "landmark assembly; bounds = ROI and box from the landmarks; rest = the tracker's own code")
        return
    rows, raw = [], []
    with tempfile.TemporaryDirectory() as d:
        for w, h in [(640, 480), (1280, 720)]:
            frames = [fit(f, w, h) for f in src]
            clip = Path(d) / f"{w}x{h}.mp4"
            encode(frames, clip)
            runner = MediaPipeRunner(frames, args.mp_python)
            ours = bench_ours(frames, clip, args.repeats, between=runner.run, before=args.before,
                              detect_interval_s=args.detect_interval)
            mp = runner.close()
            med = {k: float(np.median(v)) for k, v in ours.items()}
            mpm = float(np.median(mp["ms"])) if mp else None
            mpc = float(np.median(mp["cpu_ms"])) if mp else None
            # each of our passes has a MediaPipe pass next to it: the ratio of the two passes of one
            # repeat is measured under the same load, so its median is robust to load drift
            paired = ({k: float(np.median(np.asarray(ours[a]) / np.asarray(mp[b])))
                       for k, a, b in (("wall", "tracking_no_quality", "ms"), ("cpu", "tracking_cpu_no_quality", "cpu_ms"),
                                       ("wall_q", "tracking_total", "ms"), ("cpu_q", "tracking_cpu", "cpu_ms"))}
                      if mp else None)
            if args.before and mp:
                for k, a, b in (("before_wall", "before_tracking_no_quality", "ms"),
                                ("before_cpu", "before_tracking_cpu_no_quality", "cpu_ms")):
                    paired[k] = float(np.median(np.asarray(ours[a]) / np.asarray(mp[b])))
            rows.append((f"{w}x{h}", med, mpm, mpc, mp["found"] if mp else None, paired))
            raw.append({"frames": f"{w}x{h}", "ours": ours, "mediapipe": mp, "paired_ratio": paired})
    print("| frames | decode | detect | mesh | pose | quality | ours: detect+mesh+pose, wall / CPU | "
          "ours: + quality, wall / CPU | MediaPipe, wall / CPU | found, ours / MP | "
          "**ours (detect+mesh+pose) / MP**, wall / CPU | ours (+ quality) / MP, wall / CPU |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for res, m, mpm, mpc, mpf, pr in rows:
        def f(x):
            return f"{x:.2f}" if x is not None else "n/a"

        def x(k, pr=pr):
            return f"{pr[k]:.2f}x" if pr else "n/a"

        print(f"| {res} | {m['decode']:.2f} | {m['detect']:.2f} | {m['mesh']:.2f} | {m['pose']:.2f} | "
              f"{m['quality']:.2f} | {m['tracking_no_quality']:.2f} / {m['tracking_cpu_no_quality']:.2f} | "
              f"{m['tracking_total']:.2f} / {m['tracking_cpu']:.2f} | {f(mpm)} / {f(mpc)} | {m['found']:.2f} / {f(mpf)} | "
              f"{x('wall')} / {x('cpu')} | {x('wall_q')} / {x('cpu_q')} |")
    if args.before:
        print("\n| frames | before: ours / MP, wall / CPU | after: ours / MP, wall / CPU | after / before, wall / CPU |")
        print("|---|---|---|---|")
        for res, m, _, _, _, pr in rows:
            if pr and "before_wall" in pr:
                print(f"| {res} | {pr['before_wall']:.2f}x / {pr['before_cpu']:.2f}x | {pr['wall']:.2f}x / {pr['cpu']:.2f}x | "
                      f"{m['tracking_no_quality'] / m['before_tracking_no_quality']:.3f} / "
                      f"{m['tracking_cpu_no_quality'] / m['before_tracking_cpu_no_quality']:.3f} |")
    print(f"\nms/frame, medians of {args.repeats} interleaved runs (ours, MediaPipe, MediaPipe, ours, ours, ...) over {len(src)} frames; ours with one ONNX Runtime "
          "thread and "
          f"cv2.setNumThreads({args.cv_threads}), MediaPipe 0.10.14 legacy FaceMesh (refine_landmarks=True, video mode) as it comes; CPU = "
          "process CPU time (all threads); detect = per-frame average (the detectors run on track loss and "
          f"every {args.detect_interval} s); ratios = median over repeats of (our pass / the MediaPipe pass next to it); "
          "quality = face size, sharpness, brightness (MediaPipe computes none of it, nor pose).")
    if args.json:
        args.json.write_text(json.dumps({"repeats": args.repeats, "frames": len(src), "cv_threads": args.cv_threads,
                                         "rows": raw}, indent=1) + "\n")


if __name__ == "__main__":
    main()
