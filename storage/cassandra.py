"""Cassandra: the session, prepared statements and an asyncio bridge.

cassandra-driver runs its own I/O thread and returns ``ResponseFuture`` objects.
``execute`` turns one into an awaitable by resolving an asyncio future from the
driver's callbacks with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import namedtuple
from typing import Any, Sequence

from cassandra import ConsistencyLevel, DriverException
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, ResponseFuture, Session
from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy
from cassandra.query import PreparedStatement, Statement

from reelwire.config import Settings
from reelwire.errors import StorageError

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=512)
def _row_type(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)  # type: ignore[misc]


def cached_row_factory(names: list[str], rows: list[tuple[Any, ...]]) -> list[Any]:
    """Return rows as named tuples, building each tuple type once per column list.

    The driver's default factory builds a new named tuple type for every
    response, which costs more CPU than decoding a small row.
    """
    row_type = _row_type(tuple(names))
    return [row_type._make(row) for row in rows]


class CassandraStore:
    """One connection to the cluster, with statements prepared once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}

    def connect(self) -> Session:
        """Open the session; blocking, so call it once at start-up."""
        if self._session is not None:
            return self._session
        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy()),
            consistency_level=ConsistencyLevel.LOCAL_QUORUM,
            request_timeout=10,
            row_factory=cached_row_factory,
        )
        cluster = Cluster(
            contact_points=self.settings.cassandra_hosts,
            port=self.settings.cassandra_port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            protocol_version=5,
            connect_timeout=10,
        )
        try:
            session = cluster.connect()
        except (NoHostAvailable, DriverException) as exc:
            cluster.shutdown()
            hosts = ",".join(self.settings.cassandra_hosts)
            raise StorageError(
                f"Cassandra at {hosts}:{self.settings.cassandra_port} is unreachable: {exc}"
            ) from exc
        self._cluster = cluster
        self._session = session
        return session

    @property
    def session(self) -> Session:
        if self._session is None:
            return self.connect()
        return self._session

    def prepare(self, cql: str) -> PreparedStatement:
        statement = self._prepared.get(cql)
        if statement is None:
            # CQL in this project names tables as {ks}.table; the driver never
            # issues USE, which Cassandra flags for prepared statements.
            statement = self.session.prepare(cql.format(ks=self.settings.keyspace))
            self._prepared[cql] = statement
        return statement

    async def execute(self, cql: str | Statement, params: Sequence[Any] | None = None) -> list[Any]:
        """Run one statement and return the rows of its first page.

        Raises StorageError when Cassandra fails or times out. Cancelling the
        caller does not cancel the query on the server.
        """
        statement = self.prepare(cql) if isinstance(cql, str) else cql
        try:
            future = self.session.execute_async(statement, params)
        except DriverException as exc:
            raise StorageError(f"Cassandra query failed: {exc}") from exc
        return await _await_response(future)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = None
        self._session = None
        self._prepared.clear()


def _await_response(response: ResponseFuture) -> asyncio.Future[list[Any]]:
    loop = asyncio.get_running_loop()
    result: asyncio.Future[list[Any]] = loop.create_future()

    def on_rows(rows: Any) -> None:
        loop.call_soon_threadsafe(_settle, result, list(rows or []), None)

    def on_error(exc: BaseException) -> None:
        loop.call_soon_threadsafe(_settle, result, None, exc)

    response.add_callbacks(on_rows, on_error)
    return result


def _settle(result: asyncio.Future[list[Any]], rows: list[Any] | None, exc: BaseException | None) -> None:
    if result.done():
        return
    if exc is not None:
        result.set_exception(StorageError(f"Cassandra query failed: {exc}"))
    else:
        result.set_result(rows or [])
