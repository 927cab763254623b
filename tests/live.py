"""Real servers for tests that speak HTTP (the same helper ``fieldsync demo`` uses)."""

from fieldsync.server.embedded import free_port, running

__all__ = ["free_port", "running"]
