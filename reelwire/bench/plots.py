"""PNG plots of one benchmark run, drawn with matplotlib's file-only backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def write_plots(results: dict[str, Any], folder: Path) -> list[Path]:
    """Write throughput.png and, when fan-out ran, fanout.png; return their paths."""
    written = [_throughput(results, folder / "throughput.png")]
    if results.get("fanout"):
        written.append(_fanout(results, folder / "fanout.png"))
    return written


def _throughput(results: dict[str, Any], path: Path) -> Path:
    phases = results["phases"]
    labels = [f"{p['target']}\n{p['transport']} {p['workload']}" for p in phases]
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    rate_axis.bar(labels, [p["per_second"] for p in phases], color="#3b6ea5")
    rate_axis.set_ylabel("acknowledged per second")
    rate_axis.set_title("Throughput")
    positions = range(len(phases))
    latency_axis.bar([x - 0.2 for x in positions], [p["p50_ms"] for p in phases], width=0.4, label="p50")
    latency_axis.bar([x + 0.2 for x in positions], [p["p99_ms"] for p in phases], width=0.4, label="p99")
    latency_axis.set_xticks(list(positions), labels)
    latency_axis.set_ylabel("acknowledgement latency, ms")
    latency_axis.set_title("Latency")
    latency_axis.legend()
    for axis in (rate_axis, latency_axis):
        axis.tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _fanout(results: dict[str, Any], path: Path) -> Path:
    rows = results["fanout"]
    labels = [str(row["viewers"]) for row in rows]
    figure, (push_axis, latency_axis) = plt.subplots(1, 2, figsize=(10, 4))
    push_axis.bar(labels, [row["pushes_per_second"] for row in rows], color="#5a9e6f")
    push_axis.set_xlabel("subscribed sockets")
    push_axis.set_ylabel("pushes delivered per second")
    push_axis.set_title("Fan-out throughput")
    for key, name in (("push_p50_ms", "p50"), ("push_p99_ms", "p99"), ("push_max_ms", "max")):
        latency_axis.plot(labels, [row[key] for row in rows], marker="o", label=name)
    latency_axis.set_xlabel("subscribed sockets")
    latency_axis.set_ylabel("like-to-push latency, ms")
    latency_axis.set_title("Like to push")
    latency_axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
