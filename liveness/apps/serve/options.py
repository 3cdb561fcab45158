"""Options of ``liveness serve``."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from liveness.core.errors import ConfigError
from liveness.core.session import LIVE_HORIZON_S

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
    ``max_pending_sessions``: sessions created and not yet joined (their links still open) held
    at once; more are refused with 503 until some are joined, stopped or expire.
    ``result_hz``: most result messages per second per session (every analysed frame up to
    that rate). ``max_side``: frames (after the crop) whose longer side exceeds this are
    downscaled before analysis. ``thumbnails``: keep small face thumbnails as evidence.
    ``disconnect_grace_s``: how long a peer may stay "disconnected" before its session ends;
    ``media_timeout_s``: a live session that receives no frame for this long ends (a peer that
    vanished without closing; screen shares of a static window still send a frame a second).
    ``marker_jitter``: complete received video frames at the RTP marker bit instead of at the
    next frame's first packet (saves one frame interval of latency; see ``rtp.py``).
    ``ffmpeg_vp8``: decode received VP8 with FFmpeg's own decoder instead of aiortc's libvpx
    one (the same pictures for about two thirds of the CPU; see ``rtp.py``).

    Recordings over REST (:mod:`.reviews`): ``review_workers`` analyse at once (threads of
    their own, beside the live sessions' pool), at most ``review_queue`` wait or run (more are
    refused with 503); an upload larger than ``max_upload_mb`` is refused with 413; uploads go
    to ``upload_dir`` (default: ``uploads/`` beside an SQLite file, else a temporary folder) and
    are deleted once analysed unless ``keep_uploads``. Webhooks (:mod:`.webhooks`):
    ``webhook_url`` and its ``webhook_secret``, ``webhook_max_attempts`` with a backoff of
    ``webhook_backoff_s * 2**(attempt-1)``. ``face_gallery`` turns the face-reuse check on
    (:mod:`.gallery`) with ``gallery_threshold`` and ``gallery_retention_days``.
    Per client address (:mod:`.ratelimit`): ``login_attempts_per_min`` sign-ins (as a burst,
    refilled over a minute), ``api_requests_per_s`` API calls (bursts of ten seconds' worth);
    ``trusted_proxies`` (addresses or networks, none by default): reverse proxies whose
    ``X-Forwarded-For`` names the client. ``retention_days``: stored live sessions (events,
    per-second rows, thumbnails), finished REST reviews and webhook deliveries older than this
    are deleted (hourly); None (the default) keeps everything until ``liveness purge``.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    api_key: str | None = None
    db: str = field(default_factory=default_db_path)
    cors_origins: tuple[str, ...] = ()
    token_ttl_s: float = 3600.0
    threads: int = max(1, os.cpu_count() or 1)
    max_sessions: int = 16
    max_pending_sessions: int = 256
    result_hz: float = 30.0
    max_fps: float = 0.0
    status_hz: float = 1.0
    trim_interval_s: float = 30.0  # give freed heap pages back this often (0: never; see heap.py)
    trim_settle_s: float = 20.0  # ... and this long after a session goes live or ends, a review ends (0: never)
    trim_growth_mib: float = 0.0  # ... and when the RSS grew this much above its settled level (0: never)
    malloc_arenas: int = 2  # glibc malloc arenas at most (0: the C library's default), set at start
    live_horizon_s: float = LIVE_HORIZON_S  # seconds of per-frame history a live session keeps
    max_side: int = 1280
    thumbnails: bool = False
    disconnect_grace_s: float = 5.0
    media_timeout_s: float = 15.0
    public_url: str | None = None
    marker_jitter: bool = True
    ffmpeg_vp8: bool = True
    review_workers: int = 1
    review_queue: int = 16
    max_upload_mb: float = 512.0
    upload_dir: str | None = None
    keep_uploads: bool = False
    webhook_url: str | None = None
    webhook_secret: str | None = None
    webhook_max_attempts: int = 10
    webhook_backoff_s: float = 5.0
    webhook_timeout_s: float = 10.0
    face_gallery: bool = False
    gallery_threshold: float = 0.35  # gallery.DEFAULT_THRESHOLD, measured (benchmarks/README.md)
    gallery_retention_days: float = 365.0
    login_attempts_per_min: float = 10.0
    api_requests_per_s: float = 50.0
    trusted_proxies: tuple[str, ...] = ()
    retention_days: float | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} out of range")
        if self.api_key is not None and len(self.api_key) < 8:
            raise ConfigError("the API key must be at least 8 characters")
        if self.token_ttl_s <= 0:
            raise ConfigError("token_ttl_s must be > 0")
        if self.threads < 1 or self.max_sessions < 1 or self.max_pending_sessions < 1:
            raise ConfigError("threads, max_sessions and max_pending_sessions must be >= 1")
        if self.max_fps < 0:
            raise ConfigError("max_fps must be >= 0")
        if self.result_hz <= 0 or self.status_hz <= 0:
            raise ConfigError("result_hz and status_hz must be > 0")
        if not (self.trim_interval_s >= 0 and self.trim_settle_s >= 0 and self.trim_growth_mib >= 0):
            raise ConfigError("trim_interval_s, trim_settle_s and trim_growth_mib must be >= 0 (0: never)")
        if self.malloc_arenas < 0:
            raise ConfigError("malloc_arenas must be >= 0 (0: the C library's default)")
        if not (math.isfinite(self.live_horizon_s) and self.live_horizon_s >= 10.0):
            raise ConfigError("live_horizon_s must be a finite number of seconds >= 10")
        if self.max_side < 64:
            raise ConfigError("max_side must be >= 64")
        if self.review_workers < 1 or self.review_queue < 1 or self.max_upload_mb <= 0:
            raise ConfigError("review_workers and review_queue must be >= 1, max_upload_mb > 0")
        if self.webhook_url is not None:
            from urllib.parse import urlsplit

            u = urlsplit(self.webhook_url)
            if u.scheme not in ("http", "https") or not u.hostname:
                raise ConfigError(f"webhook URL {self.webhook_url!r} must be an http:// or https:// URL")
            if not self.webhook_secret:
                raise ConfigError("a webhook needs a secret to sign its deliveries (--webhook-secret or "
                                  "LIVENESS_WEBHOOK_SECRET)")
        if self.webhook_max_attempts < 1 or self.webhook_backoff_s <= 0 or self.webhook_timeout_s <= 0:
            raise ConfigError("webhook_max_attempts must be >= 1, webhook_backoff_s and webhook_timeout_s > 0")
        if not 0 < self.gallery_threshold < 2 or self.gallery_retention_days <= 0:
            raise ConfigError("gallery_threshold must lie in (0, 2), gallery_retention_days > 0")
        if self.login_attempts_per_min <= 0 or self.api_requests_per_s <= 0:
            raise ConfigError("login_attempts_per_min and api_requests_per_s must be > 0")
        try:
            from liveness.apps.serve.ratelimit import parse_networks

            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {exc}") from exc
        if self.retention_days is not None and not self.retention_days > 0:
            raise ConfigError("retention_days must be > 0 (or None: keep everything)")
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
