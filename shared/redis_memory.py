"""What batchocr needs of Redis's memory settings: a Redis that never evicts keys.

A queued job is its rq hash plus its image (``shared.keys.image_key``). A Redis that evicts
under memory pressure (any ``maxmemory-policy`` but ``noeviction``; ``volatile-*`` even prefers
our images, because they carry a TTL) silently drops accepted jobs' images: those jobs can
never run. So the API and workers refuse to start on one, as Sidekiq does, unless the
deployment says it accepts the risk (``OCR_ALLOW_EVICTING_REDIS``).

The figures come from ``INFO memory``, which managed Redis services answer even where they
rename or disable ``CONFIG``.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis import Redis

from shared.errors import EvictingRedisError
from shared.settings import Settings

SAFE_POLICY = "noeviction"


@dataclass(frozen=True)
class RedisMemory:
    """``INFO memory`` of the job store: ``maxmemory`` 0 means no limit (Redis's default)."""

    policy: str
    maxmemory: int
    used: int

    @classmethod
    def read(cls, connection: Redis) -> RedisMemory:
        info = connection.info("memory")
        return cls(policy=str(info.get("maxmemory_policy", SAFE_POLICY)),
                   maxmemory=int(info.get("maxmemory", 0) or 0), used=int(info.get("used_memory", 0) or 0))

    @property
    def evicting(self) -> bool:
        """Whether Redis may drop keys to make room (then accepted jobs can be lost)."""
        return self.policy != SAFE_POLICY


def check_no_eviction(memory: RedisMemory, settings: Settings, who: str) -> None:
    """Raise EvictingRedisError when Redis evicts and the deployment has not accepted that."""
    if memory.evicting and not settings.allow_evicting_redis:
        raise EvictingRedisError(
            f"{who} refuses to run on a Redis with maxmemory-policy {memory.policy}: under memory pressure it "
            f"evicts keys, and an evicted image is an accepted job that can never run. Set "
            f"maxmemory-policy {SAFE_POLICY} (redis-server --maxmemory-policy {SAFE_POLICY}, or CONFIG SET), or "
            f"OCR_ALLOW_EVICTING_REDIS=true to accept losing jobs")
