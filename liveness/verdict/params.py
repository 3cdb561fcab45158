"""The fusion's parameters (``liveness.fusion/1``): the fitted logistic model and the fixed rules
beside it, read from ``liveness/_fusion_params.json`` (written by ``models/train/fit_fusion.py``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from liveness.core.errors import ConfigError

__all__ = ["PARAMS_SCHEMA", "FusionParams", "Rule", "load_params"]

PARAMS_SCHEMA = "liveness.fusion/1"
_EPS = 0.005  # clip before a logit transform


@dataclass(frozen=True)
class Rule:
    """A fixed contribution ``weight * (value - center)`` to the risk logit (``weight`` >= 0)."""

    weight: float
    center: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class FusionParams:
    """The fitted (or default) fusion model; see the module docstring."""

    features: tuple[str, ...]
    transform: str  # "identity" or "logit"
    center: np.ndarray  # (F,) in transformed units (mean over dev reals)
    scale: np.ndarray  # (F,) > 0
    coef: np.ndarray  # (F,) >= 0
    intercept: float
    thresholds: Mapping[str, float]  # {"suspicious": t1, "fake": t2}, t1 <= t2
    rules: Mapping[str, Rule] = field(default_factory=dict)
    unfitted_weight: float = 0.0  # weight on the mean of signals the model does not know
    unfitted_center: float = 0.5
    exclude: tuple[str, ...] = ("quality", "verdict")
    fitted: bool = False
    provenance: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        f = len(self.features)
        for nm in ("center", "scale", "coef"):
            a = getattr(self, nm)
            if np.shape(a) != (f,):
                raise ConfigError(f"fusion params: {nm} must have {f} values")
        if np.any(np.asarray(self.coef) < 0):
            raise ConfigError("fusion params: coefficients must be >= 0 (risk monotonic in each signal)")
        if np.any(np.asarray(self.scale) <= 0):
            raise ConfigError("fusion params: scales must be > 0")
        if self.transform not in ("identity", "logit"):
            raise ConfigError(f"fusion params: unknown transform {self.transform!r}")
        ts, tf = self.thresholds.get("suspicious"), self.thresholds.get("fake")
        if ts is None or tf is None or not (0.0 <= ts <= tf <= 1.0):
            raise ConfigError("fusion params: need thresholds 0 <= suspicious <= fake <= 1")
        if any(r.weight < 0 for r in self.rules.values()) or self.unfitted_weight < 0:
            raise ConfigError("fusion params: rule weights must be >= 0")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FusionParams:
        if d.get("schema") != PARAMS_SCHEMA:
            raise ConfigError(f"fusion params: schema {d.get('schema')!r}, expected {PARAMS_SCHEMA!r}")
        try:
            return cls(
                features=tuple(d["features"]),
                transform=d.get("transform", "identity"),
                center=np.asarray(d["center"], np.float64),
                scale=np.asarray(d["scale"], np.float64),
                coef=np.asarray(d["coef"], np.float64),
                intercept=float(d["intercept"]),
                thresholds={k: float(v) for k, v in d["thresholds"].items()},
                rules={k: Rule(float(r["weight"]), float(r.get("center", 0.0)), str(r.get("reason", "")))
                       for k, r in d.get("rules", {}).items()},
                unfitted_weight=float(d.get("unfitted_weight", 0.0)),
                unfitted_center=float(d.get("unfitted_center", 0.5)),
                exclude=tuple(d.get("exclude", ("quality", "verdict"))),
                fitted=bool(d.get("fitted", False)),
                provenance=dict(d.get("provenance", {})),
                metrics=dict(d.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"fusion params: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": PARAMS_SCHEMA,
            "fitted": self.fitted,
            "features": list(self.features),
            "transform": self.transform,
            "center": [float(x) for x in self.center],
            "scale": [float(x) for x in self.scale],
            "coef": [float(x) for x in self.coef],
            "intercept": float(self.intercept),
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            "rules": {k: {"weight": r.weight, "center": r.center, "reason": r.reason}
                      for k, r in self.rules.items()},
            "unfitted_weight": self.unfitted_weight,
            "unfitted_center": self.unfitted_center,
            "exclude": list(self.exclude),
            "metrics": dict(self.metrics),
            "provenance": dict(self.provenance),
        }

    def transform_values(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self.transform == "logit":
            x = np.clip(x, _EPS, 1.0 - _EPS)
            return np.log(x / (1.0 - x))
        return x


def load_params(path: str | Path | None = None) -> FusionParams:
    """The fusion parameters at ``path``, or the packaged ``_fusion_params.json``."""
    try:
        if path is None:
            text = resources.files("liveness").joinpath("_fusion_params.json").read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        d = json.loads(text)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read fusion params {path or '_fusion_params.json'}: {exc}") from exc
    return FusionParams.from_dict(d)
