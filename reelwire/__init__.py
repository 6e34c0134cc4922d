"""Reelwire: a realtime backend for short-video apps.

This package contains what the actors, the gateway and the storage adapters share:
configuration, ids, commands and events, errors, logging and the command line.
"""

__version__ = "0.1.0"
