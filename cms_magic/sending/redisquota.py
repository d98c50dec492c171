"""One quota for a fleet: a key's bucket in Redis (``quota="redis://host:port/db"``).

Processes on many machines sending with one AccessKey share the account's quota
through one Redis server. Each slot is taken by an atomic server-side Lua script
(:data:`SCRIPT`), the same GCRA as the host-wide file
(:func:`cms_magic.sending.hostquota.gcra`) on the server's ``TIME``, so clients'
clocks need not agree: one round trip per request, no lock held between calls.

The key in Redis is ``cms_magic:quota:`` and a hash of the quota key (never the key
itself), with an expiry a minute past its last slot. The ``redis`` client package is
an optional extra (``pip install cms_magic[redis]``), imported when a Redis quota is
made. When the server cannot be reached (or answers an error) the bucket falls back
to the process's own bucket with one warning, and tries Redis again after
``retry_after`` seconds: never a crash, never a silent over-rate.

The call is synchronous (the run reserves on its event loop): with the default
``timeout`` of 0.5 s a server that stopped answering costs at most that once per
``retry_after``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from cms_magic import _state
from cms_magic.errors import ConfigError
from cms_magic.protocol import DEFAULT_QPS
from cms_magic.sending.buckets import SharedBucket

__all__ = [
    "HOLD",
    "INSTALL_HINT",
    "SCRIPT",
    "RedisBucket",
    "check_redis_url",
    "mask_url",
    "redis_key",
    "redis_quota",
]

log = logging.getLogger(__name__)

#: What to run when the ``redis`` package is missing.
INSTALL_HINT: Final = "pip install cms_magic[redis]"
#: Seconds a slower user's interval holds for the others (as the host-wide file's).
HOLD: Final = 2.0

#: GCRA on the server's clock. KEYS[1]: the bucket; ARGV: interval and hold (seconds).
#: Returns the seconds to wait as a string (a Lua number would be cut to an integer).
SCRIPT: Final = """
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local hold = tonumber(ARGV[2])
local v = redis.call('HMGET', KEYS[1], 'tat', 'slow', 'until')
local tat = tonumber(v[1])
local slow = tonumber(v[2])
local untl = tonumber(v[3])
if tat == nil or slow == nil or untl == nil or tat - now > 86400 then
  tat = now
  slow = interval
  untl = now + hold
end
if untl <= now or interval >= slow then
  slow = interval
  untl = now + hold
end
local start = math.max(tat, now)
tat = start + slow
redis.call('HSET', KEYS[1], 'tat', string.format('%.6f', tat),
  'slow', string.format('%.9f', slow), 'until', string.format('%.6f', untl))
redis.call('PEXPIRE', KEYS[1], math.ceil((tat - now + hold) * 1000) + 60000)
return string.format('%.6f', start - now)
"""

_SCHEMES: Final = ("redis", "rediss", "unix")


def mask_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages and reprs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>" if "@" in url else url
    if parts.password is None and "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _import_redis(masked: str) -> Any:
    try:
        return importlib.import_module("redis")
    except ImportError:
        raise ConfigError(
            "needs the redis client package, which is not installed",
            option="quota",
            value=masked,
            hint=INSTALL_HINT,
        ) from None


def check_redis_url(url: str) -> str:
    """Check a ``quota=`` Redis URL (and that the ``redis`` package is there); return it.

    ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
    ``unix:///path/to/socket[?db=N]``. Errors name ``quota``, the rule and the URL with
    its password masked.
    """
    masked = mask_url(url)
    rule = "must be redis://host:port/db (or rediss://, unix:///path), db a number"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigError(rule, option="quota", value=masked) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigError(rule, option="quota", value=masked)
    if scheme == "unix":
        if not parts.path:
            raise ConfigError(rule, option="quota", value=masked)
    else:
        db = parts.path.lstrip("/")
        if not parts.hostname or (db and not db.isdigit()) or port == 0:
            raise ConfigError(rule, option="quota", value=masked)
    _import_redis(masked)
    return url


def redis_key(key: str) -> str:
    """The Redis key of a quota key's bucket: a hash, never the key."""
    digest = hashlib.sha256(b"cms_magic quota\0" + key.encode("utf-8")).hexdigest()
    return f"cms_magic:quota:{digest[:32]}"


class RedisBucket(SharedBucket):
    """A key's bucket shared through a Redis server (see the module).

    Same interface as :class:`~cms_magic.sending.quota.SharedBucket` (``reserve()``,
    ``rate``, ``lease(qps)``, ``on_answer(throttled)``). ``client`` is a ``redis.Redis``
    to use instead of one made from ``url``; ``clock`` only times the fallback (the
    slots are timed by the server's clock).
    """

    __slots__ = (
        "_client",
        "_down_until",
        "_errors",
        "_key",
        "_script",
        "_state_lock",
        "fallback_reason",
        "hold",
        "retry_after",
        "url",
    )

    def __init__(
        self,
        url: str,
        key: str,
        rate: float = DEFAULT_QPS,
        *,
        client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        adaptive: bool = True,
        hold: float = HOLD,
        timeout: float = 0.5,
        retry_after: float = 5.0,
    ) -> None:
        super().__init__(rate, clock=clock, adaptive=adaptive)
        masked = mask_url(url)
        redis = _import_redis(masked)
        #: The server's URL, its password masked.
        self.url = masked
        self.hold = float(hold)
        self.retry_after = float(retry_after)
        if client is None:
            client = redis.Redis.from_url(
                url, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self._client = client
        self._script = client.register_script(SCRIPT)
        self._key = redis_key(key)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError, ValueError)
        self._state_lock = threading.Lock()
        self._down_until = float("-inf")
        #: Why the last slot was this process's (None while Redis answers).
        self.fallback_reason: str | None = None

    def __repr__(self) -> str:
        return f"RedisBucket(rate={self.rate:g}, url={self.url!r})"

    @property
    def shared(self) -> bool:
        """True while the slots come from Redis (False: fell back to this process's)."""
        return self.fallback_reason is None

    def reserve(self) -> float:
        """Take the next slot of the key's bucket in Redis; the seconds to wait for it."""
        rate = self._sync_rate()
        if self.clock() < self._down_until:
            return super().reserve()
        try:
            answer = self._script(keys=[self._key], args=[repr(1.0 / rate), repr(self.hold)])
            delay = float(answer)
        except self._errors as exc:
            self._fall_back(type(exc).__name__)
            return super().reserve()
        if self.fallback_reason is not None:
            with self._state_lock:
                self.fallback_reason = None
            log.warning("the Redis quota at %s answers again: shared again", self.url)
        return max(0.0, delay)

    def close(self) -> None:
        """Close the connections to Redis (a later reserve connects again)."""
        self._client.close()

    def _fall_back(self, reason: str) -> None:
        with self._state_lock:
            self._down_until = self.clock() + self.retry_after
            first = self.fallback_reason is None
            self.fallback_reason = reason
        if first:
            log.warning(
                "the Redis quota at %s cannot be used (%s): this process's sends share the "
                "quota among themselves only until it answers (tried again every %g s)",
                self.url,
                reason,
                self.retry_after,
            )


_redis_quotas: _state.Registry[tuple[str, str], RedisBucket] = _state.registry("redis quotas")


def redis_quota(url: str, key: str, qps: float = DEFAULT_QPS) -> RedisBucket:
    """The Redis-shared bucket of one quota key (one per URL and key in a process,
    forgotten by ``_state.reset()``); asking with another ``qps`` when no send holds a
    lease sets its rate."""
    check_redis_url(url)
    bucket = _redis_quotas.get_or_create((url, key), lambda: RedisBucket(url, key, qps))
    bucket.ask(qps)
    return bucket
