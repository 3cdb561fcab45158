"""The public API: ``liveness.<name>`` for everything an embedder composes, loaded lazily."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

import liveness

ROOT = Path(__file__).resolve().parents[1]


def test_every_public_name_resolves_to_its_private_definition() -> None:
    for name in liveness.__all__:
        value = getattr(liveness, name)
        mod = liveness._LAZY.get(name)
        if mod is not None:
            assert value is getattr(importlib.import_module(f"liveness.{mod}"), name)
    assert set(liveness._LAZY) <= set(liveness.__all__)
    assert set(liveness.__all__) <= set(dir(liveness))


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'no_such_thing'"):
        liveness.no_such_thing  # noqa: B018


def test_import_stays_light() -> None:
    """``import liveness`` loads neither OpenCV, ONNX Runtime nor the pipeline."""
    code = ("import sys, liveness; "
            "print(sorted(m for m in ('cv2', 'onnxruntime', 'av', 'liveness.pipeline') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_readme_python_example_runs(tmp_path: Path) -> None:
    """The README's Python example, on the built-in demo clip instead of interview.mp4."""
    from liveness.testing import make_demo_clip

    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", readme, re.S)
    assert block is not None
    code = block.group(1)
    assert "liveness._" not in code  # the example uses the public API only
    clip = make_demo_clip(tmp_path / "demo.mp4", seconds=3.0, fps=10.0, size=(320, 240))
    ns: dict = {}
    exec(compile(code.replace('"interview.mp4"', repr(str(clip))).replace("print(", "(lambda *a: None)("),
                 "README", "exec"), ns)
    session = ns["session"]
    assert isinstance(session, liveness.Session)
    verdict = session.verdict()
    assert isinstance(verdict, liveness.Verdict)
    assert verdict.label in {"no_signs", "suspicious", "fake", "inconclusive"}, "passive checks only: never genuine"
    assert ns["result"].obs.face  # the last frame's face was found
