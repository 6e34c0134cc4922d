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
    labels = [f"{p['target']} {p['transport']} {p['workload']}" for p in phases]
    figure, (rate_axis, latency_axis) = plt.subplots(1, 2, figsize=(15, 5))
    rate_axis.bar(labels, [p["per_second"] for p in phases], color="#3b6ea5")
    rate_axis.set_ylabel("acknowledged commands (or answered reads) per second")
    rate_axis.set_yscale("log")
    rate_axis.set_title("Throughput")
    positions = range(len(phases))
    latency_axis.bar([x - 0.2 for x in positions], [p["p50_ms"] for p in phases], width=0.4, label="p50")
    latency_axis.bar([x + 0.2 for x in positions], [p["p99_ms"] for p in phases], width=0.4, label="p99")
    latency_axis.set_xticks(list(positions), labels)
    latency_axis.set_ylabel("acknowledgement latency, ms")
    latency_axis.set_yscale("log")
    latency_axis.set_title("Latency")
    latency_axis.legend()
    for axis in (rate_axis, latency_axis):
        axis.tick_params(axis="x", labelsize=6, labelrotation=60)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def _fanout(results: dict[str, Any], path: Path) -> Path:
    rows = results["fanout"]
    targets = list(dict.fromkeys(row["target"] for row in rows))
    viewer_counts = sorted({row["viewers"] for row in rows})
    by_key = {(row["target"], row["viewers"]): row for row in rows}
    figure, (push_axis, latency_axis) = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / max(1, len(targets))
    for index, target in enumerate(targets):
        positions = [x + (index - (len(targets) - 1) / 2) * width for x in range(len(viewer_counts))]
        heights = [by_key[(target, v)]["pushes_per_second"] if (target, v) in by_key else 0 for v in viewer_counts]
        color = f"C{index}"
        push_axis.bar(positions, heights, width=width, label=target, color=color)
        present = [v for v in viewer_counts if (target, v) in by_key]
        latency_axis.plot([str(v) for v in present], [by_key[(target, v)]["push_p99_ms"] for v in present],
                          marker="o", color=color, label=f"{target} p99")
        latency_axis.plot([str(v) for v in present], [by_key[(target, v)]["push_p50_ms"] for v in present],
                          marker=".", linestyle="--", color=color, label=f"{target} p50")
    push_axis.set_xticks(list(range(len(viewer_counts))), [str(v) for v in viewer_counts])
    push_axis.set_xlabel("subscribed viewers")
    push_axis.set_ylabel("pushes delivered per second")
    push_axis.set_title("Fan-out throughput")
    push_axis.legend()
    latency_axis.set_xlabel("subscribed viewers")
    latency_axis.set_ylabel("like-to-push latency, ms")
    latency_axis.set_yscale("log")
    latency_axis.set_title("Like to push")
    latency_axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
