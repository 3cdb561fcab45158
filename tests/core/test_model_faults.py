"""A model file corrupted or missing on disk is a clear ModelError when the pipeline is built
(sha256 against the registry), never a wrong answer and never a surprise at the first frame."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from liveness import ModelError
from liveness.core import registry
from liveness.pipeline import PipelineOptions, build_session, required_models


@pytest.fixture
def model_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private copy of the installed model folder that the registry searches instead."""
    src = next((d for d in registry._search_dirs() if d.is_dir()), None)
    if src is None:
        pytest.skip("no model folder in this installation")
    for f in src.iterdir():
        if f.is_file():
            shutil.copy(f, tmp_path / f.name)
    monkeypatch.setattr(registry, "_search_dirs", lambda: [tmp_path])
    monkeypatch.setattr(registry, "_sessions", {})
    registry.model_path.cache_clear()
    registry.data_path.cache_clear()
    try:
        yield tmp_path
    finally:
        registry.model_path.cache_clear()
        registry.data_path.cache_clear()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the weights
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["face_detector", "face_mesh", "face_embedding", "artefact"])
def test_a_corrupted_model_is_a_model_error_when_the_session_is_built(model_dir: Path, name: str) -> None:
    spec = registry.MODELS[name]
    if not (model_dir / spec.filename).is_file():
        pytest.skip(f"{spec.filename} is not installed")
    _flip_one_byte(model_dir / spec.filename)
    with pytest.raises(ModelError, match=f"{spec.filename}: sha256 .* does not match the registry"):
        build_session()  # before any frame: nothing is built on an altered file


def test_a_missing_model_is_a_model_error_when_the_session_is_built(model_dir: Path) -> None:
    (model_dir / registry.MODELS["artefact"].filename).unlink(missing_ok=True)
    with pytest.raises(ModelError, match="swap_detector.onnx.* not found"):
        build_session(PipelineOptions(live=True))


def test_each_model_file_is_hashed_once_per_process(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hashed: list[str] = []
    real = registry.file_sha256

    def counting(path: str | Path) -> str:
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(registry, "file_sha256", counting)
    build_session()
    build_session(PipelineOptions(live=True))
    names = [registry.MODELS[n].filename for n in required_models()]
    assert sorted(h for h in hashed if h.endswith(".onnx")) == sorted(names)  # each once, none twice


def test_a_file_put_right_is_accepted_without_a_restart(model_dir: Path) -> None:
    target = model_dir / registry.MODELS["face_mesh"].filename
    good = target.read_bytes()
    _flip_one_byte(target)
    with pytest.raises(ModelError):
        build_session()
    target.write_bytes(good)  # a failure is not cached
    assert build_session().frames == 0


def test_the_pipeline_lists_every_model_it_loads(model_dir: Path, astronaut: np.ndarray) -> None:
    """What a session loads while it runs is what ``required_models`` checked when it was
    built (else a model left out of the list would be loaded unchecked)."""
    session = build_session()
    img = np.ascontiguousarray(astronaut)
    for i in range(8):
        session.process(img, i / 15)
    session.verdict()
    loaded = {name for name, _threads in registry._sessions}
    assert loaded, "the pipeline ran no model"
    assert loaded <= set(required_models()), loaded - set(required_models())


def test_serve_refuses_to_start_on_a_corrupted_model(model_dir: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("aiortc")
    from liveness.apps.cli import main

    _flip_one_byte(model_dir / registry.MODELS["face_mesh"].filename)
    code = main(["serve", "--port", "0", "--api-key", "test-key-0123456789", "--db", str(tmp_path / "s.sqlite3")])
    assert code == 2  # it never listens
    err = capsys.readouterr().err
    assert "face_mesh.onnx" in err and "does not match the registry" in err, err


def test_sessions_keep_no_memory_arena() -> None:
    # ONNX Runtime's CPU arena keeps every block it grew by for the process's life (8-16 MiB
    # the first time threads overlap in one model): the registry's sessions go without it
    sess = registry.ort_session("face_detector")
    assert sess.get_session_options().enable_cpu_mem_arena is False
