"""The soak's figures and bounds (``benchmarks/soak_serve.py``; the 30-minute run itself is a
benchmark, figures in benchmarks/README.md): the summary of given samples, without a server."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "soak_serve.py"
_spec = importlib.util.spec_from_file_location("soak_serve", _PATH)
assert _spec is not None and _spec.loader is not None
soak = importlib.util.module_from_spec(_spec)
sys.modules["soak_serve"] = soak  # dataclasses look their module up
_spec.loader.exec_module(soak)


def _run(n: int = 19, rss=lambda i: 500.0, fds=lambda i: 30, fps=lambda k, i: 5.0, state=lambda k, i: "live",
         every: float = 10.0) -> list:
    """Samples of a 2-stream soak: analysed totals integrate ``fps`` per interval."""
    samples, tot = [], [0.0, 0.0]
    for i in range(n):
        if i:
            tot = [tot[k] + fps(k, i) * every for k in range(2)]
        streams = tuple(soak.StreamSample(state(k, i), int(tot[k]), int(tot[k])) for k in range(2))
        samples.append(soak.Sample(i * every, rss(i), fds(i), 3.0, streams))
    return samples


def test_a_flat_run_meets_every_bound_and_the_warm_up_is_left_out():
    # RSS climbs during the first 30 s (models, arenas) and then stays: the baseline is after it
    s = soak.summarise(_run(rss=lambda i: 300.0 + 50 * min(i, 3)), warmup_s=30, ended=(True, True))
    assert (s.rss_first, s.rss_last, s.rss_growth_pct) == (450.0, 450.0, 0.0)
    assert [f.fps_median for f in s.streams] == [5.0, 5.0]
    assert s.stuck == 0
    assert soak.violations(s, soak.Bounds()) == []
    table = soak.markdown(s)
    assert "| RSS growth, last vs first sample | 0.0 % (0.0 KiB per analysed frame) |" in table
    assert "| **RSS growth (the bound's figure)** | **0.0 %** |" in table and "| stuck sessions | 0 |" in table


def test_growing_memory_and_descriptors_break_their_bounds():
    s = soak.summarise(_run(rss=lambda i: 500.0 + 2 * i, fds=lambda i: 30 + i // 6), warmup_s=0, ended=(True, True))
    assert s.rss_growth_pct == pytest.approx(100 * 36 / 500, abs=0.01)  # 7.2 %
    assert s.rss_kib_per_frame == pytest.approx(1024 * 36 / (2 * 18 * 50), abs=0.01)  # 2 streams x 18 x 50 frames
    assert (s.fd_first, s.fd_last, s.fd_max) == (30, 33, 33)
    bad = soak.violations(s, soak.Bounds())
    assert len(bad) == 2 and bad[0].startswith("RSS grew 7.2 %") and bad[1].startswith("open fds 30 -> 33")
    assert soak.violations(s, soak.Bounds(max_rss_growth_pct=8, max_fd_growth=3)) == []


def test_a_stalled_or_unended_session_is_stuck():
    # stream 1 analyses nothing between 100 s and 110 s; stream 0 never reaches 'ended'
    s = soak.summarise(_run(fps=lambda k, i: 0.0 if (k, i) == (1, 11) else 5.0), warmup_s=0, ended=(False, True))
    assert [f.stalled_intervals for f in s.streams] == [0, 1]
    assert s.streams[1].fps_min == 0.0
    assert s.stuck == 2
    bad = soak.violations(s, soak.Bounds())
    assert "stream 1: 1 interval(s) with no analysed frame or result" in bad
    assert "stream 0: session not 'ended' after the hang-up" in bad


def test_a_session_leaving_live_is_stuck():
    s = soak.summarise(_run(state=lambda k, i: "ended" if k == 0 and i > 15 else "live"), warmup_s=0, ended=(True, True))
    assert s.streams[0].not_live == 3 and s.stuck == 1


def test_fps_falling_over_the_run_is_not_steady():
    s = soak.summarise(_run(fps=lambda k, i: 6.0 if i < 10 or k else 4.0), warmup_s=0, ended=(True, True))
    assert (s.streams[0].fps_first_third, s.streams[0].fps_last_third) == (6.0, 4.0)
    assert soak.violations(s, soak.Bounds()) == ["stream 0: fps fell from 6.0 to 4.0 (first vs last third)"]


def test_too_few_samples_after_the_warm_up_is_an_error():
    with pytest.raises(ValueError, match="warm-up"):
        soak.summarise(_run(n=5), warmup_s=45, ended=(True, True))


def test_server_cpu_per_analysed_frame_early_and_late_in_the_call():
    # 2 streams at 5 fps: 100 frames an interval; the server's CPU 1.0 s an interval, then 1.5 s
    base = _run(n=31)
    cpu, samples = 0.0, []
    for i, smp in enumerate(base):
        cpu += 0.0 if i == 0 else (1.0 if i <= 15 else 1.5)
        samples.append(soak.Sample(smp.t, smp.rss_mib, smp.fds, smp.load_1m, smp.streams, cpu_s=cpu))
    s = soak.summarise(samples, warmup_s=0, ended=(True, True))
    assert (s.cpu_ms_first_third, s.cpu_ms_last_third) == (10.0, 15.0)
    assert "| server CPU ms per analysed frame, first → last third | 10.0 → 15.0 |" in soak.markdown(s)
    old = soak.summarise(base, warmup_s=0, ended=(True, True))  # samples without the CPU
    assert old.cpu_ms_first_third != old.cpu_ms_first_third


def test_the_rss_bound_reads_window_medians_so_a_trims_saw_is_not_growth():
    # a saw of 24 MiB (a trim every 3rd sample, the RSS climbing back): the baseline sample falls
    # in a dip, so last vs first reads +8 %; the medians of the first and last 60 s agree
    saw = lambda i: 300.0 + 24.0 * ((i % 3) / 2)  # noqa: E731
    rows = _run(n=31, rss=lambda i: 300.0 if i == 0 else saw(i))
    single = soak.summarise(rows, warmup_s=0, ended=(True, True))
    assert single.rss_growth_pct == pytest.approx(100 * (saw(30) - 300.0) / 300.0, abs=0.01)
    s = soak.summarise(rows, warmup_s=0, ended=(True, True), rss_window_s=60)
    assert s.rss_median_growth_pct == 0.0 and soak.violations(s, soak.Bounds()) == []
    assert s.rss_growth_pct == single.rss_growth_pct  # still reported
    # real growth shows in the medians too
    grow = soak.summarise(_run(n=31, rss=lambda i: 300.0 + saw(i) - 300.0 + 1.0 * i), warmup_s=0,
                          ended=(True, True), rss_window_s=60)
    assert grow.rss_median_growth_pct == pytest.approx(100 * 24 / 313, abs=0.01)  # medians 313 -> 337
    assert soak.violations(grow, soak.Bounds())[0].startswith("RSS grew")
