"""A fixed-capacity time-stamped history (ring buffer) for running per-candidate baselines."""

from __future__ import annotations

import numpy as np

__all__ = ["History"]


class History:
    """Keeps the last ``capacity`` rows of ``width`` floats with their timestamps; allocated
    once. :meth:`window` returns the rows of the last ``seconds`` (oldest first, copies)."""

    def __init__(self, width: int, capacity: int = 2048) -> None:
        self._t = np.full(capacity, -np.inf)
        self._v = np.zeros((capacity, width))
        self._n = 0  # rows written in total
        self.capacity = capacity

    def __len__(self) -> int:
        return min(self._n, self.capacity)

    def append(self, t: float, row: np.ndarray | tuple[float, ...] | list[float]) -> None:
        i = self._n % self.capacity
        self._t[i] = t
        self._v[i] = row
        self._n += 1

    def window(self, since: float) -> np.ndarray:
        """Rows with timestamp >= ``since`` (any order is fine for medians)."""
        n = len(self)
        sel = self._t[:n] >= since
        return self._v[:n][sel]

    def clear(self) -> None:
        self._t.fill(-np.inf)
        self._n = 0
