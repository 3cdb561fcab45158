"""The package's shape (issue 19): no import cycle between its modules, no module over 450
lines, and every public name of the 0.1 API still importable from ``liveness``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "liveness"
MAX_LINES = 450

# liveness.__all__ as it was before the seam refactor: these must keep working
PUBLIC_0_1 = [
    "Analyser", "ArtefactAnalyser", "ArtefactOptions", "ChallengeEngine", "ConfigError",
    "EngineOptions", "Enrollment", "Event", "FaceObservation", "FaceQuality", "FaceSlipAnalyser",
    "FaceSlipOptions", "FaceSmoothnessAnalyser", "FaceSmoothnessOptions", "FaceTracker",
    "FrameResult", "Fusion", "FusionOptions", "HeadPose", "Hook", "HookEvent", "IdentityAnalyser",
    "IdentityOptions", "InputError", "LivenessError", "ModelError", "OpportunisticAnalyser",
    "OpportunisticOptions", "PipelineOptions", "PoseConsistencyAnalyser", "PoseConsistencyOptions",
    "QualityMonitor", "QualityOptions", "ReviewOptions", "Score", "ScoreSeries", "Segment",
    "Session", "SharpnessGapAnalyser", "SharpnessGapOptions", "Signal", "TimestampError",
    "TimingHook", "TrackerOptions", "Verdict", "VideoFrame", "VideoInfo", "build_session",
    "default_analysers", "load_references", "open_video", "review_video", "__version__",
]  # fmt: skip


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """Every module of the package that ``path`` imports, at any level of its code (type-only
    imports too): ``from pkg import sub`` counts as importing ``pkg.sub`` when that is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [f"{mod}.{a.name}" if f"{mod}.{a.name}" in modules else mod for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in modules:  # liveness.x.y.Name -> liveness.x.y
                t = t.rpartition(".")[0]
            if t and t != name:
                out.add(t)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_inside_the_package():
    mods = _modules()
    graph = {m: _imports(p, m, set(mods)) for m, p in mods.items()}
    assert graph["liveness.pipeline"] >= {"liveness.core.session", "liveness.signals.artefact"}  # the parser sees imports
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_core_imports_nothing_above_it():
    mods = _modules()
    for m, p in mods.items():
        if m.startswith("liveness.core"):
            above = {i for i in _imports(p, m, set(mods)) if not i.startswith("liveness.core")}
            assert above == set(), f"{m} imports {above}"


@pytest.mark.parametrize("path", sorted(PKG.rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_over_450_lines(path):
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.relative_to(PKG.parent)} has {n} lines"


def test_every_public_name_of_0_1_is_importable_lazily():
    code = ("import sys, liveness\n"
            "heavy = [m for m in ('cv2', 'onnxruntime', 'av', 'aiortc') if m in sys.modules]\n"
            f"names = {PUBLIC_0_1!r}\n"
            "missing = [n for n in names if not hasattr(liveness, n)]\n"
            "print(heavy, missing)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
    import liveness

    assert set(PUBLIC_0_1) <= set(liveness.__all__)
