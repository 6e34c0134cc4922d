"""The benchmark's progress bar: one bar over the planned seconds of every phase."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")
REFRESH_S = 0.5


class Progress:
    """A bar on stderr that advances with each phase's planned duration; notes print above it."""

    def __init__(self, planned_s: float, *, enabled: bool = True) -> None:
        self._bar = tqdm(
            total=round(planned_s), unit="s", desc="bench", file=sys.stderr, disable=not enabled,
            bar_format="{desc:<32} {percentage:3.0f}%|{bar}| {n:.0f}/{total_fmt} s [{elapsed}<{remaining}]",
        )

    def note(self, text: str) -> None:
        tqdm.write(f"bench: {text}", file=sys.stdout)

    async def phase(self, label: str, planned_s: float, work: Awaitable[T]) -> T:
        """Await ``work`` while the bar moves towards ``planned_s`` more seconds, then credit them all."""
        self._bar.set_description_str(label[:32])
        task = asyncio.ensure_future(work)
        started = time.monotonic()
        credited = 0.0
        while not task.done():
            await asyncio.wait({task}, timeout=REFRESH_S)
            due = min(planned_s, time.monotonic() - started)
            self._bar.update(due - credited)
            credited = due
        self._bar.update(planned_s - credited)
        return task.result()

    def close(self) -> None:
        self._bar.close()
