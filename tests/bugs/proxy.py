"""Fault-proxy bugs (``implementations.transport.proxy``): when a block is checked, how many
datagrams it holds, in what order it lets them go, and where a restarted node is reached; caught
by the in-process ``proxy`` machine. Each is a ``FaultProxy`` subclass."""

from __future__ import annotations

from implementations.transport.proxy import FaultProxy, checked_address
from machines.adapters.proxy_udp import implementation_with
from tests.bugs.catalogue import Bug, variant


class ChecksTheBlockOnArrivalOnly(FaultProxy):
    """A datagram's direction is checked for a block when it arrives, not again when it leaves: one
    delayed or held back crosses a partition made while it waited."""

    def _send(self, src, dst, sock, data, address):
        try:
            sock.sendto(data, address)
            self.stats["forwarded"] += 1
        except OSError:
            self.stats["unsent"] += 1


class HoldsOnePastTheLimit(FaultProxy):
    """The hold limit compared with ``<=``: one datagram more than ``max_held`` is held."""

    def _room(self):
        if len(self._held) + len(self._reorder_slot) <= self.max_held:
            return True
        self.stats["dropped_held_full"] += 1
        return False


class ReleasesInArrivalOrder(FaultProxy):
    """Datagrams due together go out in the order they came, not the order they were due: a short
    delay after a long one no longer overtakes it."""

    def _take_due(self, now):
        return sorted(super()._take_due(now), key=lambda entry: entry[1])  # BUG: by arrival alone


class RetargetsTheDialerOnly(FaultProxy):
    """A node that restarted elsewhere is retargeted on the links it dialed (their ``a`` end) only:
    the links it was dialed on still send to its old port."""

    def retarget(self, name, address):
        address = checked_address(address, "address")
        for link in self.links.values():
            if link.a == name:
                link.a_address = address


def _bug(name: str, description: str, kind: str, proxy_class: type[FaultProxy], involves: tuple[str, ...]) -> Bug:
    implementation = implementation_with(f"bug-{name}", proxy_class)
    return Bug(name=name, machine="proxy", description=description, kind=kind, correct="udp-loopback",
               plant=variant("proxy", name, implementation.make_replica), involves=frozenset(involves))


BUGS = [
    _bug("proxy-checks-the-block-on-arrival-only", "a datagram delayed or held back crosses a partition made while it "
         "waited: the block is checked when it comes, not when it goes", "session-race", ChecksTheBlockOnArrivalOnly,
         ("partition|block", "advance|send")),
    _bug("proxy-holds-one-past-the-limit", "the hold limit compared with <=: max_held + 1 datagrams held at once",
         "off-by-one", HoldsOnePastTheLimit, ("send",)),
    _bug("proxy-releases-held-datagrams-in-arrival-order", "datagrams due together leave in the order they came, not "
         "the order they were due: a short delay behind a long one never overtakes it", "unsorted-input",
         ReleasesInArrivalOrder, ("advance", "faults")),
    _bug("proxy-retargets-the-dialer-only", "a node restarted on another port is retargeted on the links it dialed "
         "only; the links it was dialed on still send to its old port", "lost-update", RetargetsTheDialerOnly,
         ("retarget",)),
]
