"""Ratios of Reelwire's figures to each peer's, for the figures both measured. Pure functions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

REELWIRE = "Reelwire"
PHASE_FIGURES = (("per_second", "ops/s", True), ("p50_ms", "p50 ms", False), ("p99_ms", "p99 ms", False))
FANOUT_FIGURES = (
    ("pushes_per_second", "pushes/s", True),
    ("push_p50_ms", "push p50 ms", False),
    ("push_p99_ms", "push p99 ms", False),
    ("push_max_ms", "push max ms", False),
    ("gateway_mb_per_1000_sockets", "MiB per 1000 sockets", False),
)


@dataclass(frozen=True)
class Comparison:
    """One figure of Reelwire beside one peer's; ``ratio`` is Reelwire's value divided by the peer's."""

    figure: str
    peer: str
    reelwire: float
    other: float
    higher_is_better: bool

    @property
    def ratio(self) -> float:
        if self.other == 0 or math.isnan(self.other) or math.isnan(self.reelwire):
            return math.nan
        return self.reelwire / self.other

    def as_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "peer": self.peer,
            "reelwire": self.reelwire,
            "peer_value": self.other,
            "ratio": None if math.isnan(self.ratio) else round(self.ratio, 3),
            "higher_is_better": self.higher_is_better,
        }


def compare(results: dict[str, Any]) -> list[Comparison]:
    """Pair each peer's REST phases and fan-out rows with Reelwire's of the same kind."""
    found: list[Comparison] = []
    ours = {(p["transport"], p["workload"]): p for p in results.get("phases", []) if p["target"] == REELWIRE}
    for phase in results.get("phases", []):
        mine = ours.get((phase["transport"], phase["workload"]))
        if phase["target"] == REELWIRE or mine is None:
            continue
        for key, label, higher in PHASE_FIGURES:
            figure = f"{phase['transport']} {phase['workload']} {label}"
            found.append(Comparison(figure, phase["target"], float(mine[key]), float(phase[key]), higher))
    fanout_ours = {row["viewers"]: row for row in results.get("fanout", []) if row["target"] == REELWIRE}
    for row in results.get("fanout", []):
        mine = fanout_ours.get(row["viewers"])
        if row["target"] == REELWIRE or mine is None:
            continue
        for key, label, higher in FANOUT_FIGURES:
            figure = f"fan-out {row['viewers']} viewers {label}"
            found.append(Comparison(figure, row["target"], float(mine[key]), float(row[key]), higher))
    return found


def render(comparisons: list[Comparison]) -> str:
    """Return a plain-text table; a ratio is Reelwire divided by the peer."""
    header = f"{'figure':<44} {'peer':<11} {'Reelwire':>10} {'peer':>10} {'ratio':>8}  better"
    lines = [header, "-" * len(header)]
    for row in comparisons:
        ratio = "n/a" if math.isnan(row.ratio) else f"{row.ratio:.2f}x"
        better = "higher" if row.higher_is_better else "lower"
        lines.append(f"{row.figure:<44} {row.peer:<11} {row.reelwire:>10.1f} {row.other:>10.1f} {ratio:>8}  {better}")
    return "\n".join(lines)
