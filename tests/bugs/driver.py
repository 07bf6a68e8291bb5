"""Core-driver bugs (``implementations.transport.driver``): when a core is ticked, and what becomes
of a batch when one message is refused; caught by the in-process ``driver`` machine. Most are
``CoreDriver`` subclasses; the tick floor left out is the driver's ``MIN_TICK_GAP_NS`` patched to 0;
the last two put back the two defects the driver machine found when it was written: a message past
a frame that stops its node (a subclass too), and a quiet connection closed at its next message
(``endpoint.py``, patched while the machine runs)."""

from __future__ import annotations

from implementations.transport import driver as driver_module
from implementations.transport.driver import CoreDriver
from implementations.transport.endpoint import Connection
from machines.adapters.driver_quic import Drivers, implementation_with
from tests.bugs.catalogue import Bug, patched, variant


class ForgetsToWakeTheTicker(CoreDriver):
    """An operation does not wake the tick loop: a deadline it moves sooner is kept only when the loop
    wakes for its old time (or for a message)."""

    def apply(self, operation):
        result, outgoing = operation(self.core, self.now())
        self._dispatch(outgoing)
        return result  # BUG: no self._poke.set()


class ARefusalEndsTheBatch(CoreDriver):
    """A message the core refuses ends the batch it came in: the messages received with it are
    counted but never handled."""

    async def run(self):
        import trio

        self.now()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._ticks)
            while True:
                batch = await self.endpoint.receive_many()
                self.stats["received"] += len(batch)
                for _, data in batch:
                    try:
                        outgoing = self.core.handle(data, self.now())
                    except ValueError:
                        self.stats["refused"] += 1
                        if self.metrics is not None:
                            self.metrics.message_refused()
                        break  # BUG: the rest of the batch is lost
                    self._dispatch(outgoing)
                self._poke.set()


def _dispatch(driver: CoreDriver, outgoing, *, drop_ends_the_batch: bool = False, catch_framing: bool = True) -> None:
    """``CoreDriver._dispatch`` with one of two defects: a drop that ends the batch, or no
    ``FramingError`` branch."""
    from implementations.transport.endpoint import TransportError
    from implementations.transport.framing import FramingError

    refusals = (TransportError, FramingError) if catch_framing else (TransportError,)
    for peer, data in outgoing:
        conn = driver.endpoint.connection_to(driver.public_key_of(peer))
        try:
            if conn is not None:
                conn.send_nowait(data)
            elif peer in driver.directory:
                driver.endpoint.send_to(driver.directory[peer], data)
            else:
                driver.stats["unknown_peer"] += 1
                continue
        except refusals as error:
            if isinstance(error, FramingError):
                driver.stats["too_large"] += 1
                continue
            driver.stats["dropped"] += 1
            if drop_ends_the_batch:
                break  # BUG (ADropEndsTheBatch): the rest of the batch is lost
            continue
        driver.stats["sent"] += 1


class ADropEndsTheBatch(CoreDriver):
    """A message the connection's send buffer has no room for ends the batch it was in: the core's
    messages after it, to any peer, are never sent."""

    def _dispatch(self, outgoing):
        _dispatch(self, outgoing, drop_ends_the_batch=True)


class AFrameTooLargeStopsTheNode(CoreDriver):
    """The transport's refusal of a message past ``MAX_FRAME_BYTES`` (``FramingError``) is not caught:
    an operation returning one raises after the core changed, a tick returning one ends the node."""

    def _dispatch(self, outgoing):
        _dispatch(self, outgoing, catch_framing=False)  # BUG: no FramingError branch


def silent_since_the_last_datagram(self):
    """``Connection._silent_since`` as it was: the silence counted from the last datagram heard, so a
    connection quiet past ``UNANSWERED_SECONDS`` is closed at its next message."""
    return self.last_heard


def _bug(name: str, description: str, kind: str, driver_class: type[CoreDriver], involves: tuple[str, ...]) -> Bug:
    implementation = implementation_with(f"bug-{name}", driver_class)
    return Bug(name=name, machine="driver", description=description, kind=kind, correct="quic-loopback",
               plant=variant("driver", name, implementation.make_replica), involves=frozenset(involves))


BUGS = [
    _bug("driver-forgets-to-wake-the-ticker", "an operation that moves the core's deadline sooner does not wake the "
         "tick loop: the tick comes at the old time", "timestamp-source", ForgetsToWakeTheTicker, ("deadline",)),
    Bug(name="driver-ticks-with-no-floor", machine="driver",
        description="a deadline already past is taken at once, without the MIN_TICK_GAP_NS floor after the last tick",
        kind="off-by-one", correct="quic-loopback",
        plant=patched(driver_module, "MIN_TICK_GAP_NS", 0, "driver", "driver-ticks-with-no-floor",
                      lambda replica_id, clock: Drivers()),  # BUG: the floor is nothing
        involves=frozenset({"deadline"})),
    _bug("driver-a-refusal-ends-the-batch", "a message the core refuses ends the batch it came in: the messages "
         "received with it are never handled", "lost-update", ARefusalEndsTheBatch, ("send",)),
    _bug("driver-a-drop-ends-the-batch", "a message the send buffer has no room for ends the core's batch: its "
         "messages after it, to any peer, are never sent", "lost-update", ADropEndsTheBatch, ("flood",)),
    _bug("driver-a-frame-too-large-stops-the-node", "a core's message past MAX_FRAME_BYTES is refused by the "
         "transport and the driver lets the error out: the operation raises after the core changed, a tick ends the node",
         "refusal-escapes", AFrameTooLargeStopsTheNode, ("send|script_tick",)),
    Bug(name="driver-endpoint-counts-silence-from-the-last-datagram", machine="driver",
        description="a connection quiet past UNANSWERED_SECONDS is closed at its next message: the endpoint counts the "
                    "peer's silence from the last datagram heard, not from when data began to wait",
        kind="expiry", correct="quic-loopback",
        plant=patched(Connection, "_silent_since", silent_since_the_last_datagram, "driver",
                      "driver-endpoint-counts-silence-from-the-last-datagram", lambda replica_id, clock: Drivers()),
        involves=frozenset({"advance"})),
]
