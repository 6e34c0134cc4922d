"""The Centrifugo peer builds, starts and delivers publications to its viewers. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelwire.bench.centrifugo_peer import centrifugo_fanout, start_centrifugo

pytestmark = pytest.mark.integration


async def test_centrifugo_fanout_reports_every_figure(tmp_path: Path) -> None:
    peer = await start_centrifugo(tmp_path)
    try:
        result = await centrifugo_fanout(peer, 20, rate=50, duration_s=1)
    finally:
        peer.stop()

    summary = result.summary()
    for key in ("viewers", "likes_per_second", "pushes_per_second", "push_p50_ms", "push_p99_ms", "push_max_ms",
                "samples", "gateway_mb_per_1000_sockets"):
        assert key in summary
    assert summary["viewers"] == 20
    assert result.likes_sent > 0
    assert result.likes_acknowledged == result.likes_sent
    assert result.pushes > 0
    assert summary["samples"] > 0
    assert result.latency.errors == 0
    assert peer.process.process.poll() is not None
