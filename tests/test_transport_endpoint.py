"""The QUIC endpoint: pinned TLS, identity proofs bound to the session, framing, bounds, pings, clean shutdown."""

from __future__ import annotations

import pytest
import trio

from implementations import limits
from implementations.transport import auth, tls
from implementations.transport.auth import AuthError, Handshake, decode_proof, encode_proof
from implementations.transport.endpoint import (
    RECEIVE_BATCH,
    TIMER_GRANULARITY_SECONDS,
    PeerAddress,
    SendBufferFull,
    TransportError,
)
from implementations.transport.framing import HEADER, FrameReader, FramingError, frame
from implementations.transport.proxy import FaultProxy
from tests.transport_kit import address_of, make_keys, nothing_left_behind, opened, run

# --- framing and the identity proof, sans-I/O -------------------------------------------------


def test_frames_are_cut_right_wherever_the_stream_splits():
    messages = [b"", b"a", bytes(range(256)) * 3, b"xyz"]
    stream = b"".join(frame(message) for message in messages)
    for cut in range(len(stream) + 1):
        reader = FrameReader()
        assert [*reader.feed(stream[:cut]), *reader.feed(stream[cut:])] == messages
        assert reader.buffered == 0


def test_an_oversized_frame_is_refused_before_its_body_is_buffered():
    with pytest.raises(FramingError, match="MAX_FRAME_BYTES"):
        frame(bytes(11), limit=10)
    reader = FrameReader(limit=10)
    with pytest.raises(FramingError, match="frame of 11 bytes exceeds MAX_FRAME_BYTES"):
        list(reader.feed(HEADER.pack(11)))


def test_the_limit_may_change_between_two_frames_of_one_chunk():
    """The identity proof's frames have a tighter limit than the messages right behind them."""
    reader = FrameReader(limit=8, limit_name="MAX_AUTH_MESSAGE_BYTES")
    frames = reader.feed(frame(b"proof") + frame(bytes(100)))
    assert next(frames) == b"proof"
    reader.limit = 1000
    assert list(frames) == [bytes(100)]
    with pytest.raises(FramingError, match="exceeds MAX_AUTH_MESSAGE_BYTES"):
        list(FrameReader(limit=8, limit_name="MAX_AUTH_MESSAGE_BYTES").feed(frame(bytes(9))))


def _handshake(client_keys, server_keys, expected=None):
    client_fingerprint, server_fingerprint = client_keys.certificate.fingerprint, server_keys.certificate.fingerprint
    client = Handshake(client_keys.identity, client_fingerprint, True, server_fingerprint, expected)
    server = Handshake(server_keys.identity, server_fingerprint, False, server_fingerprint)
    return client, server


def _exchange(client: Handshake, server: Handshake) -> None:
    to_server = client.start()
    while to_server:
        to_client = [reply for message in to_server for reply in server.receive(message)]
        to_server = [reply for message in to_client for reply in client.receive(message)]


def test_both_sides_prove_their_identity(tmp_path):
    keys = make_keys(tmp_path, "a", "b")
    client, server = _handshake(keys["a"], keys["b"], expected=keys["b"].identity.public_key)
    _exchange(client, server)
    assert client.peer_public_key == keys["b"].identity.public_key
    assert server.peer_public_key == keys["a"].identity.public_key


@pytest.mark.parametrize("rewrite", [False, True])
def test_a_relayed_handshake_fails(tmp_path, rewrite):
    """Mallory relays between a (who dialed her) and b, to pass for a at b: a never signs for b's session."""
    keys = make_keys(tmp_path, "a", "b", "mallory")
    a, _ = _handshake(keys["a"], keys["mallory"])  # a pinned Mallory's certificate
    _, b = _handshake(keys["mallory"], keys["b"])
    (hello_a,) = a.start()
    hello_b, proof_b = b.receive(hello_a)  # Mallory forwards a's hello to b, and b's answer to a
    if rewrite:  # ... naming her own certificate in b's hello: b's signature then covers the wrong transcript
        body = auth.decode_hello(hello_b)
        hello_b = auth.encode_hello(auth.Hello(body.public_key, body.nonce, keys["mallory"].certificate.fingerprint))
        a.receive(hello_b)
        with pytest.raises(AuthError, match="does not verify"):
            a.receive(proof_b)
    else:
        with pytest.raises(AuthError, match="certificate other than the one pinned"):
            a.receive(hello_b)


def test_a_proof_from_another_session_or_role_is_refused(tmp_path):
    keys = make_keys(tmp_path, "a", "b")
    first_client, first_server = _handshake(keys["a"], keys["b"])
    _exchange(first_client, first_server)
    client, server = _handshake(keys["a"], keys["b"])
    (hello,) = client.start()
    server_hello, server_proof = server.receive(hello)
    client.receive(server_hello)
    (client_proof,) = client.receive(server_proof)
    replayed = encode_proof(keys["a"].identity.sign(b"not this session's transcript"))
    for bad in (replayed, server_proof, encode_proof(bytes(64))):  # a replay, the server's own proof, garbage
        with pytest.raises(AuthError, match="does not verify"):
            Handshake.receive(_fresh_copy(server), bad)
    assert server.receive(client_proof) == [] and server.done
    assert decode_proof(client_proof) != decode_proof(server_proof)


def _fresh_copy(handshake: Handshake) -> Handshake:
    copy = Handshake.__new__(Handshake)
    copy.__dict__.update(handshake.__dict__)
    return copy


def test_a_certificate_is_made_at_the_first_start_and_kept(tmp_path):
    first = tls.load_or_create(tmp_path)
    assert tls.load_or_create(tmp_path) == first
    (tmp_path / tls.KEY_FILE).write_bytes(tls.make_certificate().private_key_pem)
    with pytest.raises(tls.CertificateError, match="does not match"):
        tls.load_or_create(tmp_path)


def test_peer_addresses_travel_as_json_and_stay_on_loopback(tmp_path):
    keys = make_keys(tmp_path, "a")["a"]
    address = PeerAddress("127.0.0.1", 4433, keys.certificate.certificate_pem, keys.identity.public_key)
    assert PeerAddress.from_json(address.to_json()) == address
    with pytest.raises(ValueError, match="loopback"):
        PeerAddress.from_json({**address.to_json(), "host": "10.0.0.1"})
    with pytest.raises(ValueError, match="not a peer address"):
        PeerAddress.from_json({"host": "127.0.0.1"})


# --- over real sockets ------------------------------------------------------------------------


def test_messages_flow_both_ways_in_order_between_proven_nodes(tmp_path):
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            assert conn.peer_public_key == keys["b"].identity.public_key
            for i in range(500):  # queued in one step: batched into few datagrams
                conn.send_nowait(i.to_bytes(4, "big"))
            received = [await b.receive() for _ in range(500)]
            assert received == [(keys["a"].identity.public_key, i.to_bytes(4, "big")) for i in range(500)]
            assert a.stats["datagrams_sent"] < 100
            b.connection_to(keys["a"].identity.public_key).send_nowait(b"back")
            assert await a.receive() == (keys["b"].identity.public_key, b"back")
            assert a.peers() == {keys["b"].identity.public_key} and b.peers() == {keys["a"].identity.public_key}

    with nothing_left_behind():
        run(scenario)


def test_only_the_pinned_certificate_and_the_expected_node_are_accepted(tmp_path):
    keys = make_keys(tmp_path, "a", "b", "c")

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            real = address_of(b)
            wrong_certificate = PeerAddress(real.host, real.port, keys["c"].certificate.certificate_pem, real.public_key)
            with pytest.raises(TransportError):
                await a.connect(wrong_certificate)
            wrong_node = PeerAddress(real.host, real.port, real.certificate, keys["c"].identity.public_key)
            with pytest.raises(TransportError, match="not the node dialed"):
                await a.connect(wrong_node)
            assert b.peers() == set()  # b never took a for proven

    run(scenario)


@pytest.mark.parametrize(
    ("abuse", "reason"),
    [
        (lambda quic: quic.send_stream_data(0, HEADER.pack(limits.MAX_FRAME_BYTES + 1)), "exceeds MAX_FRAME_BYTES"),
        (lambda quic: quic.send_stream_data(4, b"x"), "a connection carries one stream"),
        (lambda quic: quic.send_stream_data(0, b"", end_stream=True), "ended the message stream"),
    ],
)
def test_a_peer_breaking_the_framing_rules_is_disconnected_with_the_reason(tmp_path, abuse, reason):
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            abuse(conn.quic)
            conn.flush()
            await conn.closed.wait()
            assert reason in conn.reason
            assert b.peers() == set()

    run(scenario)


def test_a_full_receive_queue_holds_the_sender_back_and_loses_nothing(tmp_path, monkeypatch):
    """Past MAX_RECEIVE_QUEUE messages not taken, the endpoint stops reading its socket: it holds
    at most the limit and what one batch of datagrams completes (messages of 1,000 bytes: at most
    one more than fit whole end in a datagram of ``QUIC_DATAGRAM_BYTES``), and once the node takes
    them the rest follow, none lost."""
    monkeypatch.setattr(limits, "MAX_RECEIVE_QUEUE", 4)
    keys = make_keys(tmp_path, "a", "b")
    sent = [i.to_bytes(2, "big") * 500 for i in range(300)]

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            for message in sent:
                await conn.send(message)
            await trio.sleep(0.2)  # b reads nothing meanwhile
            held = b.stats["messages_received"]
            ending = limits.QUIC_DATAGRAM_BYTES // (1000 + HEADER.size) + 1  # messages ending in one datagram
            assert held <= 4 + ending * RECEIVE_BATCH, f"b took {held} of {len(sent)} messages while its queue was full"
            assert [(await b.receive())[1] for _ in sent] == sent

    run(scenario)


def test_the_send_buffer_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(limits, "MAX_SEND_BUFFER_BYTES", 64 * 1024)
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            sent = 0
            with pytest.raises(SendBufferFull, match="MAX_SEND_BUFFER_BYTES"):
                while True:  # no checkpoint: nothing can be acknowledged meanwhile
                    conn.send_nowait(bytes(1000))
                    sent += 1
            assert sent == 64 * 1024 // (1000 + HEADER.size) and conn.unacknowledged() <= 64 * 1024
            await conn.send(bytes(1000))  # waits for acknowledgements, then goes
            for _ in range(sent + 1):
                await b.receive()

    run(scenario)


@pytest.mark.parametrize("pings", [True, False])
def test_idle_pings_keep_a_quiet_connection_open(tmp_path, monkeypatch, pings):
    monkeypatch.setattr(limits, "IDLE_TIMEOUT_SECONDS", 0.3)
    monkeypatch.setattr(limits, "PING_INTERVAL_SECONDS", 0.08 if pings else 60)
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            await trio.sleep(0.8)
            if pings:
                assert conn.is_open and a.stats["pings_sent"] > 0
            else:
                assert conn.closed.is_set() and "Idle timeout" in conn.reason

    run(scenario)


def test_closing_an_endpoint_closes_every_connection_with_a_reason_and_leaves_nothing(tmp_path):
    keys = make_keys(tmp_path, "a", "b", "c")

    async def scenario():
        async with opened(keys["a"]) as a:
            async with opened(keys["b"]) as b, opened(keys["c"]) as c:
                to_b, to_c = await a.connect(address_of(b)), await a.connect(address_of(c))
                await c.connect(address_of(b))
            await to_b.closed.wait()
            await to_c.closed.wait()
            assert to_b.reason == to_c.reason == "closed: endpoint closed"
            assert a.peers() == set() and all(conn.closed.is_set() for conn in a.connections)

    with nothing_left_behind():
        run(scenario)


def test_a_peer_silent_with_data_unacknowledged_is_dropped_and_dialed_again(tmp_path, monkeypatch):
    """What a crashed and restarted peer looks like: it answers nothing on the old connection."""
    monkeypatch.setattr(limits, "UNANSWERED_SECONDS", 0.2)
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with trio.open_nursery() as nursery, opened(keys["a"]) as a, opened(keys["b"]) as b:
            proxy = await nursery.start(FaultProxy(seed=1).run)
            through_proxy = address_of(b, await proxy.add_link("a", a.address, "b", b.address))
            first = await a.connect(through_proxy)
            proxy.partition([["a"], ["b"]])
            first.send_nowait(b"into the void")
            await first.closed.wait()
            assert "UNANSWERED_SECONDS" in first.reason and a.connection_to(keys["b"].identity.public_key) is None
            proxy.heal()
            a.send_to(through_proxy, b"again")  # dials a new connection
            assert (await b.receive())[1] == b"again"  # what was sent into the partition is lost with its connection
            nursery.cancel_scope.cancel()

    run(scenario)


def test_a_closed_connection_waits_for_aioquic_not_for_a_ping_it_will_not_send(tmp_path):
    """Once a connection has closed, ``_check_peer`` pings no more: a ping deadline in the past must not
    bound ``_drive``'s wait, or the drive comes round at once, again and again, until aioquic's draining
    ends (the realnet machine's in-process loop never went idle after a partition: its trace
    realnet-partition-healed-by-anti-entropy, replayed in process on a loaded machine)."""
    keys = make_keys(tmp_path, "a", "b")

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            conn.close("done with it")
            conn.last_heard = conn._last_ping = trio.current_time() - 10 * limits.PING_INTERVAL_SECONDS
            assert not conn.terminated.is_set()  # aioquic drains it for a while yet
            assert conn._deadline() > trio.current_time()
            assert conn._deadline() == conn.quic.get_timer()

    run(scenario)


def test_a_timer_aioquic_leaves_due_is_looked_at_again_one_granularity_later(tmp_path):
    """aioquic's loss time for a packet is ``sent_time + loss_delay``, and at that time it declares the packet
    lost only if ``sent_time <= now - loss_delay``, which floating point can make false: ``handle_timer`` then
    leaves the timer where it was, due. On a clock that does not move while the loop is busy, ``_drive`` came
    round at once, for ever (the realnet machine's in-process loop, a nightly run: a loss on a link of
    duplicates, delays and reorders; the loop never idle again, its settle not answering in 60 s). A timer left
    due is looked at again no sooner than ``TIMER_GRANULARITY_SECONDS`` (RFC 9002's kGranularity) later."""
    keys = make_keys(tmp_path, "a", "b")
    clock = trio.testing.MockClock(autojump_threshold=0)  # moves only when every task waits

    async def scenario():
        async with opened(keys["a"]) as a, opened(keys["b"]) as b:
            conn = await a.connect(address_of(b))
            await trio.testing.wait_all_tasks_blocked()
            due, looks = trio.current_time(), []

            def stuck_timer() -> float:  # what aioquic answers at the rounding edge, however often it is handled
                looks.append(trio.current_time())
                if len(looks) > 1_000:
                    raise AssertionError("the drive keeps looking at a timer left due without waiting")
                return due

            conn.quic.get_timer, conn.quic.handle_timer = stuck_timer, lambda now: None
            conn.wake.set()
            await trio.testing.wait_all_tasks_blocked()  # never returns while the drive spins
            assert trio.current_time() == due and len(looks) <= 4
            clock.jump(TIMER_GRANULARITY_SECONDS)
            await trio.testing.wait_all_tasks_blocked()
            assert len(looks) <= 8 and looks[-1] == due + TIMER_GRANULARITY_SECONDS
            conn.close("done with it")

    async def bounded():
        with trio.fail_after(10):  # the mock clock's seconds: a spin shows as the looks' error above
            await scenario()

    trio.run(bounded, clock=clock)
