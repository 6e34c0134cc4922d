"""Workload generation and latency recording, free of I/O."""

from __future__ import annotations

import bisect
import random
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

MAX_LATENCY_US = 120_000_000


class ZipfPicker:
    """Pick item indexes with probability proportional to 1 / rank ** exponent.

    Rank 1 is the hot item: with 200 items and exponent 1.1 it takes about a
    fifth of all picks.
    """

    def __init__(self, items: int, exponent: float, rng: random.Random) -> None:
        if items < 1:
            raise ValueError("a Zipf picker needs at least one item")
        weights = [1.0 / rank**exponent for rank in range(1, items + 1)]
        total = sum(weights)
        running = 0.0
        self._cumulative = []
        for weight in weights:
            running += weight / total
            self._cumulative.append(running)
        self._rng = rng

    def pick(self) -> int:
        return min(bisect.bisect_left(self._cumulative, self._rng.random()), len(self._cumulative) - 1)


@dataclass(frozen=True)
class OperationMix:
    """Relative weights of the operations a virtual user performs."""

    like: float = 0.60
    unlike: float = 0.10
    share: float = 0.15
    comment: float = 0.05
    read: float = 0.10

    def command_weights(self) -> dict[str, float]:
        return {"like": self.like, "unlike": self.unlike, "share": self.share, "comment": self.comment}

    @classmethod
    def parse(cls, text: str) -> "OperationMix":
        """Parse 'like=60,unlike=10,share=15,comment=5,read=10'; raise ValueError on bad input."""
        values: dict[str, float] = {}
        for part in text.split(","):
            name, _, number = part.partition("=")
            name = name.strip()
            if name not in cls.__dataclass_fields__:
                raise ValueError(f"unknown operation {name!r} in mix; use like, unlike, share, comment, read")
            values[name] = float(number)
            if values[name] < 0:
                raise ValueError(f"weight of {name} must not be negative")
        mix = cls(**{name: values.get(name, 0.0) for name in cls.__dataclass_fields__})
        if sum(values.values()) <= 0:
            raise ValueError("the mix needs at least one positive weight")
        return mix


@dataclass
class LatencyRecorder:
    """An HDR histogram of latencies in microseconds, with a count of errors."""

    histogram: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, MAX_LATENCY_US, 3))
    errors: int = 0

    def record_seconds(self, seconds: float) -> None:
        self.histogram.record_value(max(1, min(MAX_LATENCY_US, int(seconds * 1_000_000))))

    @property
    def count(self) -> int:
        return self.histogram.get_total_count()

    def percentile_ms(self, percentile: float) -> float:
        if self.count == 0:
            return float("nan")
        return self.histogram.get_value_at_percentile(percentile) / 1000

    def max_ms(self) -> float:
        if self.count == 0:
            return float("nan")
        return self.histogram.get_max_value() / 1000

    def merge(self, other: "LatencyRecorder") -> None:
        self.histogram.add(other.histogram)
        self.errors += other.errors
