"""Resident memory of each component of a benchmark run, read from /proc."""

from __future__ import annotations

from pathlib import Path

from reelwire.bench.processes import ManagedProcess, own_rss_mb, process_tree_rss_mb
from reelwire.config import REPO_ROOT

SERVICE_PID_DIR = REPO_ROOT / ".local" / "run"
SERVICES = ("redis", "kafka", "cassandra")


def service_rss_mb(name: str, pid_dir: Path = SERVICE_PID_DIR) -> float:
    """Resident memory of a service started by scripts/services.sh; 0 when its pid file is absent."""
    try:
        pid = int((pid_dir / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return 0.0
    return process_tree_rss_mb(pid)


def reelwire_rss_mb(stack: ManagedProcess) -> dict[str, float]:
    """Split a ``reelwire up`` process tree into the gateway (the process itself) and Ray (its children)."""
    gateway = own_rss_mb(stack.process.pid)
    return {"gateway": gateway, "Ray and actors": max(0.0, stack.rss_mb() - gateway)}


def component_rss_mb(stack: ManagedProcess) -> dict[str, float]:
    """Resident memory of Reelwire's gateway, Ray and each service, in MiB."""
    found = reelwire_rss_mb(stack)
    for name in SERVICES:
        found[name.capitalize()] = service_rss_mb(name)
    return found
