"""Logging set-up and the project's level policy.

Levels:
- ERROR: a bug, or a failure that loses service for some users, such as a
  shard that must restart or a projection that restarts its consumer. The
  traceback is logged when there is one.
- WARNING: service degrades but goes on (a retry, a record sent to the
  dead-letter topic, Redis unreachable, a slow client disconnected).
- INFO: lifecycle (listening, actors ready, consumers started and stopped,
  schema migrations applied).
- DEBUG: per-connection detail, such as a send that failed on a closed socket.

Secrets never reach a log line: tokens and the JWT secret are not logged, and
URLs are logged without credentials.
"""

from __future__ import annotations

import logging
import os

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str | None = None) -> None:
    """Configure the root logger once per process, at ``REELWIRE_LOG_LEVEL`` (default INFO)."""
    root = logging.getLogger()
    if getattr(root, "_reelwire_configured", False):
        return
    chosen = (level or os.environ.get("REELWIRE_LOG_LEVEL") or "INFO").upper()
    logging.basicConfig(level=chosen, format=_FORMAT)
    # These libraries log every connection at INFO, which drowns the lifecycle lines.
    # uvicorn logs every WebSocket handshake, query string included, at INFO.
    for noisy in ("aiokafka", "cassandra", "kafka", "uvicorn.error", "matplotlib", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(chosen)))
    logging.getLogger("uvicorn.error").addFilter(ClientFaultFilter())
    root._reelwire_configured = True  # type: ignore[attr-defined]


class ClientFaultFilter(logging.Filter):
    """Log a client's protocol fault that uvicorn reports as ERROR as a WARNING without traceback.

    A client sending invalid UTF-8 is bad input, not a bug in the server, and
    the socket is already closed with code 1007.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.getMessage().startswith("Invalid UTF-8"):
            record.levelno = logging.WARNING
            record.levelname = "WARNING"
            record.exc_info = None
            record.exc_text = None
        return True
