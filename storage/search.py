"""The search projection: a tantivy full-text index of reel captions and hashtags.

tantivy is a Lucene-style engine in Rust with Python bindings: one pip install,
no JVM and no server process, BM25 ranking, and on-disk segments that survive
restarts. The index is a projection like the Cassandra tables: re-indexing a
reel replaces its document, so replays are harmless.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import tantivy

from reelwire.events import Event, EventType

logger = logging.getLogger(__name__)

_QUERY_TOKEN = re.compile(r"[#]?[\w]+", re.UNICODE)
MAX_QUERY_TERMS = 16


@dataclass(frozen=True, slots=True)
class SearchHit:
    reel_id: str
    score: float


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("reel_id", stored=True, tokenizer_name="raw")
    builder.add_text_field("caption", stored=False)
    builder.add_text_field("hashtags", stored=False)
    builder.add_integer_field("created_at", stored=True, fast=True)
    return builder.build()


def build_query_text(raw: str) -> str:
    """Turn user input into a safe tantivy query of plain terms.

    Only word characters survive, so the query language's operators cannot be
    injected. ``#tag`` searches hashtags only; other words search both fields.
    """
    clauses = []
    for token in _QUERY_TOKEN.findall(raw)[:MAX_QUERY_TERMS]:
        if token.startswith("#"):
            word = token[1:].lower()
            if word:
                clauses.append(f"hashtags:{word}")
        else:
            word = token.lower()
            clauses.append(f"(caption:{word} OR hashtags:{word})")
    return " AND ".join(clauses)


class SearchIndex:
    """A tantivy index on local disk, with one writer and fresh searchers."""

    def __init__(self, path: Path, *, writer_heap_bytes: int = 32_000_000) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self._index = tantivy.Index(_schema(), path=str(path))
        self._writer = self._index.writer(heap_size=writer_heap_bytes, num_threads=1)
        self._lock = threading.Lock()

    def apply(self, events: list[Event]) -> int:
        """Index the reels created by these events and commit; return how many."""
        created = [event for event in events if event.type is EventType.REEL_CREATED]
        if not created:
            return 0
        with self._lock:
            for event in created:
                self._writer.delete_documents_by_term("reel_id", event.reel_id)
                self._writer.add_document(tantivy.Document(
                    reel_id=event.reel_id,
                    caption=str(event.data.get("caption", "")),
                    hashtags=" ".join(str(tag) for tag in event.data.get("hashtags", [])),
                    created_at=event.at_ms,
                ))
            self._writer.commit()
        self._index.reload()
        return len(created)

    def search(self, raw_query: str, limit: int) -> list[SearchHit]:
        query_text = build_query_text(raw_query)
        if not query_text:
            return []
        query = self._index.parse_query(query_text, ["caption", "hashtags"])
        searcher = self._index.searcher()
        result = searcher.search(query, limit)
        return [SearchHit(searcher.doc(address)["reel_id"][0], float(score)) for score, address in result.hits]

    def count(self) -> int:
        return self._index.searcher().num_docs
