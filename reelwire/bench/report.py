"""Run metadata (machine and versions) and the plain-text tables of a benchmark run."""

from __future__ import annotations

import math
import os
import platform
import shutil
import subprocess
from importlib import metadata
from typing import Any

from reelwire.bench.comparisons import Comparison, render


def render_table(results: dict[str, Any], comparisons: list[Comparison]) -> str:
    header = (f"{'target':<12} {'transport':<10} {'workload':<8} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'reads/s':>8} {'errors':>7}")
    lines = [header, "-" * len(header)]
    for phase in results["phases"]:
        reads = f"{phase['reads_per_second']:>8.0f}" if phase.get("reads") and phase["workload"] != "read" else ""
        lines.append(
            f"{phase['target']:<12} {phase['transport']:<10} {phase['workload']:<8} {phase['per_second']:>9.0f} "
            f"{phase['p50_ms']:>8.2f} {phase['p99_ms']:>8.2f} {reads:>8} {phase['errors']:>7}"
        )
    lines.append("ops/s counts acknowledged commands, or answered reads in a 'read' workload; "
                 "reads/s are the reads inside a mix.")

    lag = results.get("replication_lag")
    if lag:
        lines += ["", _lag_sentence(lag)]
    check = results.get("consistency")
    if check:
        lines.append(_check_sentence(check))
    if results.get("fanout"):
        header = (f"{'target':<12} {'viewers':>8} {'likes/s':>8} {'pushes/s':>9} {'push p50':>9} {'push p99':>9} "
                  f"{'push max':>9} {'MiB/1000 sockets':>17}")
        lines += ["", header, "-" * len(header)]
        for row in results["fanout"]:
            lines.append(
                f"{row['target']:<12} {row['viewers']:>8} {row['likes_per_second']:>8.0f} "
                f"{row['pushes_per_second']:>9.0f} {row['push_p50_ms']:>9.1f} {row['push_p99_ms']:>9.1f} "
                f"{row['push_max_ms']:>9.1f} {row['gateway_mb_per_1000_sockets']:>17.1f}"
            )
    if results.get("memory_mb"):
        lines += ["", "resident memory, MiB: " + ", ".join(
            f"{name} {value:.0f}" for name, value in results["memory_mb"].items())]
    if comparisons:
        lines += ["", "Reelwire beside each peer (ratio = Reelwire / peer):", render(comparisons)]
    return "\n".join(lines)


def _lag_sentence(lag: dict[str, Any]) -> str:
    return (f"Replication lag: ack to Cassandra row p50 {lag['cassandra_p50_ms']:,.1f} ms, "
            f"p99 {lag['cassandra_p99_ms']:,.1f} ms ({lag['cassandra_samples']} samples); ack to search hit "
            f"p50 {lag['search_p50_ms']:,.1f} ms, p99 {lag['search_p99_ms']:,.1f} ms "
            f"({lag['search_samples']} samples).")


def _check_sentence(check: dict[str, Any]) -> str:
    equal = "equal" if check["acks_equal_events"] else "NOT equal"
    bounds = "within bounds" if check["events_within_bounds"] else "OUT OF BOUNDS"
    return (f"Correctness: {check['reels']:,} reels, {check['events_in_log']:,} events in the log, "
            f"{check['applied_acknowledgements']:,} applied acknowledgements ({equal}), "
            f"{check['unanswered_commands']:,} commands without an outcome ({bounds}); actors differing from the "
            f"log: {check['actors_differing_from_log']}; Cassandra differing from the log: "
            f"{check['cassandra_differing_from_log']}.")


def machine_info() -> dict[str, Any]:
    memory_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Versions of the Python packages, the services and, through ``extra``, the peers."""
    names = ["reelwire", "ray", "fastapi", "uvicorn", "websockets", "redis", "aiokafka", "cassandra-driver", "tantivy"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    found.update({"kafka": "3.9.1", "cassandra": "5.0.6", "redis-server": _command_version(["redis-server", "-v"])})
    found.update(extra or {})
    return found


def _command_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    completed = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    for word in completed.stdout.split():
        if word.startswith("v="):
            return word[2:]
    return completed.stdout.strip()[:60]


def render_markdown(results: dict[str, Any], comparisons: list[Comparison]) -> str:
    """Return the run's tables in Markdown, ready to paste into docs/benchmarks.md."""
    lines = [
        "| target | transport | workload | ops/s | p50 ms | p99 ms | reads/s in mix | errors |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for phase in results["phases"]:
        reads = f"{phase['reads_per_second']:,.0f}" if phase.get("reads") and phase["workload"] != "read" else ""
        lines.append(f"| {phase['target']} | {phase['transport']} | {phase['workload']} | {phase['per_second']:,.0f} "
                     f"| {phase['p50_ms']:,.1f} | {phase['p99_ms']:,.1f} | {reads} | {phase['errors']} |")
    if results.get("fanout"):
        lines += ["", "| target | viewers | likes/s | pushes/s | push p50 ms | push p99 ms | push max ms "
                      "| MiB per 1,000 sockets |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row in results["fanout"]:
            lines.append(f"| {row['target']} | {row['viewers']:,} | {row['likes_per_second']:,.0f} "
                         f"| {row['pushes_per_second']:,.0f} | {row['push_p50_ms']:,.1f} | {row['push_p99_ms']:,.1f} "
                         f"| {row['push_max_ms']:,.1f} | {row['gateway_mb_per_1000_sockets']:,.1f} |")
    lag = results.get("replication_lag")
    if lag:
        lines += ["", _lag_sentence(lag)]
    check = results.get("consistency")
    if check:
        lines += ["", _check_sentence(check)]
    if results.get("memory_mb"):
        lines += ["", "| component | resident MiB |", "| --- | ---: |"]
        lines += [f"| {name} | {value:,.0f} |" for name, value in results["memory_mb"].items()]
    if comparisons:
        lines += ["", "| figure | peer | Reelwire | peer | Reelwire / peer | better |",
                  "| --- | --- | ---: | ---: | ---: | --- |"]
        for row in comparisons:
            ratio = "n/a" if math.isnan(row.ratio) else f"{row.ratio:.2f}x"
            better = "higher" if row.higher_is_better else "lower"
            lines.append(f"| {row.figure} | {row.peer} | {row.reelwire:,.1f} | {row.other:,.1f} | {ratio} | {better} |")
    return "\n".join(lines) + "\n"
