"""Example databases: a directory by default, Redis when many machines share one; one
namespace per machine and implementation.

``from_spec(spec)``: ``redis://host:port/db`` (or ``rediss://``, ``unix://``) is
Hypothesis's ``RedisExampleDatabase`` (``pip install "hypothesis[redis]"``); anything else is
a directory (``DirectoryBasedExampleDatabase``). ``MBT_EXAMPLE_DB`` takes either, so a team's
nightly runners on several machines point at one Redis and replay each other's failures.

Why namespaces: Hypothesis keys a stateful run's examples by a digest of the machine
*factory*, and ``harness.run_machine``'s factory is one function for every machine. Without
a namespace every run would replay every other machine's saved examples as its own, and
delete those that do not fail it (Hypothesis drops saved examples that no longer fail). The
namespace is a public wrapper (``ExampleDatabase``'s four methods), not Hypothesis's
private digest attribute.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: Every key this project writes to a shared Redis starts with this.
REDIS_KEY_PREFIX = b"crdt-threshold-mbt:"


def from_spec(spec: str) -> ExampleDatabase:
    """The example database ``spec`` names: a Redis URL or a directory."""
    if spec.startswith(REDIS_SCHEMES):
        try:
            import redis
            from hypothesis.extra.redis import RedisExampleDatabase
        except ImportError as error:
            raise ImportError(f"example database {spec!r} needs Redis support: pip install 'hypothesis[redis]'") from error
        return RedisExampleDatabase(redis.Redis.from_url(spec), key_prefix=REDIS_KEY_PREFIX)
    return DirectoryBasedExampleDatabase(spec)


class Namespaced(ExampleDatabase):
    """``inner`` with every key under ``namespace`` (e.g. ``b"orset/delta-state"``)."""

    def __init__(self, inner: ExampleDatabase, namespace: str) -> None:
        super().__init__()
        self.inner = inner
        self.prefix = namespace.encode() + b"\x00"

    def __repr__(self) -> str:
        return f"Namespaced({self.inner!r}, {self.prefix[:-1].decode()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Namespaced) and (self.inner, self.prefix) == (other.inner, other.prefix)

    def __hash__(self) -> int:
        return hash((id(self.inner), self.prefix))

    def save(self, key: bytes, value: bytes) -> None:
        self.inner.save(self.prefix + key, value)

    def fetch(self, key: bytes) -> Iterable[bytes]:
        return self.inner.fetch(self.prefix + key)

    def delete(self, key: bytes, value: bytes) -> None:
        self.inner.delete(self.prefix + key, value)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        self.inner.move(self.prefix + src, self.prefix + dest, value)
