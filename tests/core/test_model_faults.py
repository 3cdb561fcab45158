"""A model file corrupted on disk is a clear ModelError on the first frame (models load on first
use), never a wrong answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from liveness import ModelError
from liveness.core import registry


def test_corrupted_model_is_a_model_error_at_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = next((d for d in registry._search_dirs() if d.is_dir()), None)
    if src is None:
        pytest.skip("no model folder in this installation")
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    spec = registry.MODELS["face_detector"] if "face_detector" in registry.MODELS else next(iter(registry.MODELS.values()))
    target = tmp_path / spec.filename
    if not target.is_file():
        pytest.skip(f"{spec.filename} is not installed")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the weights
    target.write_bytes(bytes(data))
    monkeypatch.setattr(registry, "_search_dirs", lambda: [tmp_path])
    registry.model_path.cache_clear()
    monkeypatch.setattr(registry, "_sessions", {})
    try:
        with pytest.raises(ModelError, match="does not match the registry"):
            registry.model_path(spec.name)
        import numpy as np

        from liveness.pipeline import build_session

        session = build_session()  # models load on first use: the first frame is refused
        with pytest.raises(ModelError, match="sha256"):
            session.process(np.full((240, 320, 3), 90, np.uint8), 0.0)
    finally:
        registry.model_path.cache_clear()
