"""The benchmark command runs end to end at tiny sizes and reports every figure. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reelwire.config import REPO_ROOT

pytestmark = pytest.mark.integration


def test_bench_smoke_reports_every_figure(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "reelwire.cli", "bench", "--duration", "1", "--reels", "5", "--sockets", "2",
         "--window", "4", "--rest-concurrency", "4", "--viewers", "20", "--fanout-rate", "50",
         "--output", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "acked/s" in completed.stdout
    runs = list(tmp_path.glob("*/results.json"))
    assert len(runs) == 1
    results = json.loads(runs[0].read_text())
    assert results["machine"]["cores"] >= 1
    assert results["versions"]["ray"]
    phases = {(p["target"], p["transport"], p["workload"]): p for p in results["phases"]}
    assert set(phases) == {
        ("Reelwire", "WebSocket", "mix"), ("Reelwire", "REST", "mix"), ("Reelwire", "WebSocket", "like"),
        ("Reelwire", "REST", "like"), ("naive peer", "REST", "like"),
    }
    for phase in phases.values():
        assert phase["acknowledged"] > 0
        for key in ("per_second", "p50_ms", "p99_ms", "errors"):
            assert key in phase
    fanout = results["fanout"][0]
    assert fanout["viewers"] == 20
    for key in ("pushes_per_second", "push_p50_ms", "push_p99_ms", "push_max_ms", "gateway_mb_per_1000_sockets"):
        assert key in fanout
    assert fanout["pushes_per_second"] > 0
    assert results["memory_mb"]
    lag = results["replication_lag"]
    for key in ("cassandra_p50_ms", "cassandra_p99_ms", "search_p50_ms", "search_p99_ms"):
        assert key in lag
    check = results["consistency"]
    assert check["acks_equal_events"] is True
    assert check["actors_differing_from_log"] == 0
    assert check["cassandra_differing_from_log"] == 0
    assert (runs[0].parent / "throughput.png").stat().st_size > 0
    assert (runs[0].parent / "fanout.png").stat().st_size > 0
