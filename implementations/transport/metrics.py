"""A node's Prometheus metrics: what the core reports through ``MetricsSink``, served over loopback HTTP.

A sans-I/O core never imports ``prometheus_client``: if it has ``attach_metrics(sink)``, the
driver hands it a ``MetricsSink`` and the core calls its five methods as things happen (the
sink only records, so the core stays deterministic). ``NodeMetrics`` is the sink of a node
process: one ``CollectorRegistry`` per node (never the global one, so two nodes in one
process do not mix), with

=========================================  =========  =============================================
``mbt_sessions_total{outcome}``            counter    signing sessions ended, by outcome
``mbt_partial_signatures_total``           counter    valid member signatures the coordinator kept
``mbt_session_duration_seconds``           histogram  proposal to outcome
``mbt_gossip_messages_total{kind}``        counter    gossip messages handled, by kind
``mbt_replays_refused_total``              counter    messages refused as replays
``mbt_messages_refused_total``             counter    messages the core refused (any reason)
``mbt_peers_online``                       gauge      peers with an open, proven connection
``mbt_resident_memory_bytes``              gauge      resident set size (``/proc/self/statm``)
``process_*``                              various    ``ProcessCollector``: CPU, memory, fds, start time
=========================================  =========  =============================================

``serve(port)`` serves ``prometheus_client``'s WSGI exposition app on 127.0.0.1 from a
daemon thread (the library's ``start_http_server`` with a shorter shutdown poll), stopped
and its socket closed on leaving.

Why ``prometheus_client`` and not our own exposition code: the text format, its escaping and
content negotiation are the library's job, and scrapers are tested against it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, make_wsgi_app

SESSION_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SERVE_POLL_SECONDS = 0.05  # how soon the server thread notices it must stop


class MetricsSink(Protocol):
    """What a core reports; every method only records."""

    def session_finished(self, outcome: str, duration_seconds: float) -> None: ...

    def partial_signature(self) -> None: ...

    def gossip(self, kind: str) -> None: ...

    def replay_refused(self) -> None: ...

    def message_refused(self) -> None: ...


def resident_bytes() -> int:
    """This process's resident set size, from ``/proc/self/statm``."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_BYTES


class NodeMetrics:
    """The registry of one node and the ``MetricsSink`` that fills it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        ProcessCollector(registry=registry)
        self.sessions = Counter("mbt_sessions", "Signing sessions ended, by outcome", ["outcome"], registry=registry)
        self.partial_signatures = Counter("mbt_partial_signatures", "Valid member signatures kept", registry=registry)
        self.session_duration = Histogram(
            "mbt_session_duration_seconds", "Signing session duration", buckets=SESSION_DURATION_BUCKETS, registry=registry
        )
        self.gossip_messages = Counter("mbt_gossip_messages", "Gossip messages handled, by kind", ["kind"], registry=registry)
        self.replays_refused = Counter("mbt_replays_refused", "Messages refused as replays", registry=registry)
        self.messages_refused = Counter("mbt_messages_refused", "Messages the core refused", registry=registry)
        self.peers = Gauge("mbt_peers_online", "Peers with an open, proven connection", registry=registry)
        self.rss = Gauge("mbt_resident_memory_bytes", "Resident set size", registry=registry)
        self.rss.set_function(resident_bytes)

    # --- MetricsSink ----------------------------------------------------------------------

    def session_finished(self, outcome: str, duration_seconds: float) -> None:
        self.sessions.labels(outcome=outcome).inc()
        self.session_duration.observe(duration_seconds)

    def partial_signature(self) -> None:
        self.partial_signatures.inc()

    def gossip(self, kind: str) -> None:
        self.gossip_messages.labels(kind=kind).inc()

    def replay_refused(self) -> None:
        self.replays_refused.inc()

    def message_refused(self) -> None:
        self.messages_refused.inc()

    def peers_online(self, count: int) -> None:
        self.peers.set(count)

    # --- reading ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, float]:
        """Every sample as ``{"name{label=value}": value}``: what a control endpoint answers."""
        values = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
                values[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return values

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[int]:
        """Serve ``/metrics`` on 127.0.0.1:``port`` (0: any free port); yields the port."""
        server = make_server("127.0.0.1", port, make_wsgi_app(self.registry), _HTTPServer, handler_class=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": SERVE_POLL_SECONDS}, daemon=True)
        thread.start()
        try:
            yield server.server_port
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


class _HTTPServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # scrapes are not news: no line per request
        pass
