"""A stored reference identity (``liveness.enrollment/1``): embeddings of one person with the
embedding model's sha256, so an enrolment made with another model is refused, not compared."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.errors import InputError
from liveness.core.files import write_atomic

__all__ = ["ENROLLMENT_SCHEMA", "IMAGE_SUFFIXES", "Enrollment", "load_references"]

ENROLLMENT_SCHEMA = "liveness.enrollment/1"
#: file suffixes read as photos (anything else is read as a video)
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})


@dataclass(frozen=True)
class Enrollment:
    """A stored reference identity: embeddings of one person, the embedding model's sha256 (an
    enrolment made with another model cannot be compared) and when/what it was made from."""

    embeddings: np.ndarray  # (K, 128) float32
    model_sha256: str
    created: str
    source: str = ""
    schema: str = ENROLLMENT_SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "model": "face_embedding",
            "model_sha256": self.model_sha256,
            "created": self.created,
            "source": self.source,
            "embeddings": [[round(float(v), 7) for v in e] for e in self.embeddings],
            **self.extra,
        }

    def save(self, path: str | Path) -> None:
        write_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Enrollment:
        p = Path(path)
        try:
            d = json.loads(p.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{p}: cannot read the enrolment file ({exc})") from exc
        if not isinstance(d, dict) or d.get("schema") != ENROLLMENT_SCHEMA:
            raise InputError(f"{p}: not a {ENROLLMENT_SCHEMA} enrolment file")
        from liveness.core.registry import MODELS

        want = MODELS["face_embedding"].sha256 if "face_embedding" in MODELS else None
        if want is not None and d.get("model_sha256") != want:
            raise InputError(
                f"{p}: made with another embedding model ({d.get('model_sha256')}); enrol again"
            )
        try:
            emb = np.asarray(d["embeddings"], np.float32).reshape(-1, 128)
        except (KeyError, ValueError) as exc:
            raise InputError(f"{p}: malformed embeddings") from exc
        if len(emb) == 0 or not np.isfinite(emb).all():
            raise InputError(f"{p}: no usable embeddings")
        return cls(emb, str(d["model_sha256"]), str(d.get("created", "")), str(d.get("source", "")))

    @classmethod
    def from_embeddings(cls, embeddings: np.ndarray, source: str = "") -> Enrollment:
        from liveness.core.registry import MODELS

        spec = MODELS.get("face_embedding")
        return cls(
            np.asarray(embeddings, np.float32).reshape(-1, 128),
            spec.sha256 if spec else "",
            _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            source,
        )


def load_references(paths: Sequence[str | Path], threads: int = 1) -> np.ndarray:
    """(K, 128) reference embeddings from enrolment files (``.json``) and photos."""
    from liveness.signals.embedding import FaceEmbedder, load_reference

    embedder = FaceEmbedder(threads)
    out: list[np.ndarray] = []
    for p in map(Path, paths):
        if p.suffix.lower() == ".json":
            out.extend(Enrollment.load(p).embeddings)
        else:
            out.append(load_reference(p, embedder, threads))
    if not out:
        raise InputError("no reference given")
    return np.stack(out).astype(np.float32)
