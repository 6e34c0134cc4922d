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
         "--no-progress", "--output", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "ops/s" in completed.stdout
    assert "ratio = Reelwire / peer" in completed.stdout
    runs = list(tmp_path.glob("*/results.json"))
    assert len(runs) == 1
    results = json.loads(runs[0].read_text())
    assert results["machine"]["cores"] >= 1
    assert results["versions"]["ray"]
    phases = {(p["target"], p["transport"], p["workload"]): p for p in results["phases"]}
    assert set(phases) == {
        ("Reelwire", "WebSocket", "mix"), ("Reelwire", "REST", "mix"), ("Reelwire", "WebSocket", "like"),
        ("Reelwire", "REST", "like"), ("Reelwire", "REST", "comment"), ("Reelwire", "REST", "read"),
        ("naive peer", "REST", "like"), ("Strapi", "REST", "like"), ("Strapi", "REST", "comment"),
        ("Strapi", "REST", "read"),
    }
    for phase in phases.values():
        assert phase["per_second"] > 0
        for key in ("per_second", "p50_ms", "p99_ms", "errors"):
            assert key in phase
    assert phases[("Reelwire", "REST", "mix")]["reads"] > 0
    fanouts = {row["target"]: row for row in results["fanout"]}
    assert set(fanouts) == {"Reelwire", "naive peer", "Centrifugo"}
    for fanout in fanouts.values():
        assert fanout["viewers"] == 20
        for key in ("pushes_per_second", "push_p50_ms", "push_p99_ms", "push_max_ms",
                    "gateway_mb_per_1000_sockets"):
            assert key in fanout
        assert fanout["pushes_per_second"] > 0
    for component in ("gateway", "Ray and actors", "Kafka", "Cassandra", "Redis", "naive peer", "Centrifugo",
                      "Strapi"):
        assert results["memory_mb"][component] > 0
    compared = {(row["figure"], row["peer"]) for row in results["comparisons"]}
    assert ("REST like ops/s", "naive peer") in compared
    assert ("fan-out 20 viewers pushes/s", "naive peer") in compared
    assert ("fan-out 20 viewers push p99 ms", "Centrifugo") in compared
    assert ("REST read ops/s", "Strapi") in compared
    assert ("REST comment ops/s", "Strapi") in compared
    lag = results["replication_lag"]
    for key in ("cassandra_p50_ms", "cassandra_p99_ms", "search_p50_ms", "search_p99_ms"):
        assert key in lag
    check = results["consistency"]
    assert check["acks_equal_events"] is True
    assert check["events_within_bounds"] is True
    assert [step["before"] for step in results["settling"]][:2] == ["REST mix", "WebSocket like"]
    assert check["actors_differing_from_log"] == 0
    assert check["cassandra_differing_from_log"] == 0
    assert (runs[0].parent / "throughput.png").stat().st_size > 0
    assert (runs[0].parent / "fanout.png").stat().st_size > 0
    assert "| Strapi | REST | read |" in (runs[0].parent / "results.md").read_text()
