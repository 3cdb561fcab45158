"""Options of ``liveness serve``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from liveness.core.errors import ConfigError

__all__ = ["ServeOptions", "default_db_path"]


def default_db_path() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "liveness" / "serve.sqlite3")


@dataclass(frozen=True)
class ServeOptions:
    """Server settings.

    ``api_key`` None disables the key check, which is only allowed on a loopback ``host``.
    ``db`` is an SQLite file path (``":memory:"`` keeps nothing). ``cors_origins`` are the
    origins (``https://platform.example``) allowed to call the candidate API from their pages;
    ``"*"`` allows any. ``token_ttl_s``: lifetime of a candidate link. ``threads``: analysis
    worker threads shared by all sessions. ``max_sessions``: concurrent live sessions.
    ``result_hz``: most result messages per second per session (every analysed frame up to
    that rate). ``max_side``: frames (after the crop) whose longer side exceeds this are
    downscaled before analysis. ``thumbnails``: keep small face thumbnails as evidence.
    ``disconnect_grace_s``: how long a peer may stay "disconnected" before its session ends;
    ``media_timeout_s``: a live session that receives no frame for this long ends (a peer that
    vanished without closing; screen shares of a static window still send a frame a second).
    ``marker_jitter``: complete received video frames at the RTP marker bit instead of at the
    next frame's first packet (saves one frame interval of latency; see ``_rtp.py``).
    """

    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    db: str = field(default_factory=default_db_path)
    cors_origins: tuple[str, ...] = ()
    token_ttl_s: float = 3600.0
    threads: int = max(1, os.cpu_count() or 1)
    max_sessions: int = 16
    result_hz: float = 30.0
    max_fps: float = 0.0
    status_hz: float = 1.0
    max_side: int = 1280
    thumbnails: bool = False
    disconnect_grace_s: float = 5.0
    media_timeout_s: float = 15.0
    public_url: str | None = None
    marker_jitter: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} out of range")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigError("the API key must be at least 8 characters")
        if self.token_ttl_s <= 0:
            raise ConfigError("token_ttl_s must be > 0")
        if self.threads < 1 or self.max_sessions < 1:
            raise ConfigError("threads and max_sessions must be >= 1")
        if self.max_fps < 0:
            raise ConfigError("max_fps must be >= 0")
        if self.result_hz <= 0 or self.status_hz <= 0:
            raise ConfigError("result_hz and status_hz must be > 0")
        if self.max_side < 64:
            raise ConfigError("max_side must be >= 64")
        if self.api_key is None and not is_loopback(self.host):
            raise ConfigError(
                f"serving on {self.host} needs an API key (--api-key or LIVENESS_API_KEY); "
                "without one only a loopback host is allowed"
            )

    @property
    def auth_enabled(self) -> bool:
        return self.api_key is not None


def is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
