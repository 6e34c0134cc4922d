"""The benchmark's pure parts: workload picking, latency matching and the ratios to peers."""

from __future__ import annotations

import math
import random

import pytest

from reelwire.bench.comparisons import compare, render
from reelwire.bench.fanout import record_push_latency, viewer_reels
from reelwire.bench.runner import BenchOptions, planned_phases
from reelwire.bench.workload import LatencyRecorder, OperationMix, ZipfPicker


def test_zipf_gives_the_first_item_the_largest_share():
    picker = ZipfPicker(200, 1.1, random.Random(1))
    picks = [picker.pick() for _ in range(20_000)]
    hot_share = picks.count(0) / len(picks)
    assert 0.15 < hot_share < 0.25
    assert hot_share > 5 * picks.count(10) / len(picks)


def test_mix_parse_rejects_unknown_and_negative_weights():
    assert OperationMix.parse("like=1,read=3").read == 3
    with pytest.raises(ValueError, match="unknown operation"):
        OperationMix.parse("dislike=1")
    with pytest.raises(ValueError, match="negative"):
        OperationMix.parse("like=-1")


def test_push_latency_first_covering_arrival():
    latency = LatencyRecorder()
    sent = [(1, 0.0), (2, 0.010), (3, 0.020)]
    # Count 2 never arrives on its own; count 3 covers it. An older count arriving late is ignored.
    arrivals = [(1, 0.005), (3, 0.050), (2, 0.060)]
    record_push_latency(latency, sent, arrivals)
    assert latency.count == 3
    assert latency.errors == 0
    assert latency.percentile_ms(0) == pytest.approx(5, rel=0.01)
    assert latency.max_ms() == pytest.approx(40, rel=0.01)


def test_push_latency_missing_count_is_error():
    latency = LatencyRecorder()
    record_push_latency(latency, [(1, 0.0), (5, 0.0)], [(1, 0.002)])
    assert latency.count == 1
    assert latency.errors == 1


def test_viewer_reels_hot_first_no_repeats():
    others = [f"r{n}" for n in range(10)]
    chosen = viewer_reels("hot", others, 3, random.Random(2))
    assert chosen[0] == "hot"
    assert len(chosen) == len(set(chosen)) == 3
    assert viewer_reels("hot", ["only"], 5, random.Random(2)) == ["hot", "only"]
    assert viewer_reels("hot", [], 3, random.Random(2)) == ["hot"]


def _phase(target: str, workload: str, rate: float, p99: float) -> dict[str, object]:
    return {"target": target, "transport": "REST", "workload": workload, "per_second": rate, "p50_ms": 1.0,
            "p99_ms": p99}


def test_compare_pairs_matching_figures():
    results = {
        "phases": [_phase("Reelwire", "like", 1000, 20), _phase("Strapi", "like", 100, 400),
                   _phase("Strapi", "upload", 5, 5)],
        "fanout": [
            {"target": "Reelwire", "viewers": 1000, "pushes_per_second": 20_000, "push_p50_ms": 10,
             "push_p99_ms": 50, "push_max_ms": 90, "gateway_mb_per_1000_sockets": 30},
            {"target": "Centrifugo", "viewers": 1000, "pushes_per_second": 19_000, "push_p50_ms": 5,
             "push_p99_ms": 25, "push_max_ms": 40, "gateway_mb_per_1000_sockets": 0},
        ],
    }
    rows = {(row.figure, row.peer): row for row in compare(results)}
    like = rows[("REST like ops/s", "Strapi")]
    assert like.ratio == pytest.approx(10)
    assert like.higher_is_better
    assert rows[("REST like p99 ms", "Strapi")].ratio == pytest.approx(0.05)
    assert not any(figure.startswith("REST upload") for figure, _ in rows)
    assert rows[("fan-out 1000 viewers push p99 ms", "Centrifugo")].ratio == pytest.approx(2)
    memory = rows[("fan-out 1000 viewers MiB per 1000 sockets", "Centrifugo")]
    assert math.isnan(memory.ratio)
    assert memory.as_dict()["ratio"] is None
    table = render(compare(results))
    assert "10.00x" in table
    assert "n/a" in table


def test_planned_phases_follow_the_peers_chosen():
    everything = BenchOptions(fanout_viewers=(1000, 5000))
    assert planned_phases(everything) == 6 + 2 + 3 + 2 + 3
    assert planned_phases(BenchOptions(fanout_viewers=(10,), peers=())) == 7
