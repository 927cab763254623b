"""Real servers for tests that speak HTTP (the same helper ``fieldsync demo`` uses)."""

from fieldsync.server.embedded import running

__all__ = ["running"]
