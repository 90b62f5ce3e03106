"""Fixtures shared by the service tests: the session's real redis-server."""

from redis_helpers import redis_server

__all__ = ["redis_server"]
