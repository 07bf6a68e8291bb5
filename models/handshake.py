"""Which node is at the other end of a connection: the identity proof, as a side sees it.

Once TLS is up, the two ends of a connection prove their node identities (a signing key
each) on the connection's stream. The client has *pinned* the certificate fingerprint of the
listener it dialed (TLS checked that the listener holds that certificate) and may also know
the identity key it dialed (``expected``). Each side has its own hello: its public key, a
fresh nonce, its own certificate fingerprint.

1. the client sends its hello;
2. the server takes it and answers with its hello and its proof;
3. the client takes the server's hello, then its proof, and answers with its own proof.

A proof is a signature over a *transcript*: ``(role, server fingerprint, client fingerprint,
client nonce, server nonce)``, where ``role`` is the signer's role ("server" or "client"),
the server fingerprint is the one the client pinned (the server's own, on the server), the
client fingerprint is the one the client's hello names, and the nonces are the two hellos'.

The model does no cryptography: a machine tells it what each message is. A hello is a
``Hello``; a proof is a ``Proof`` naming the key that made the signature (None for bytes no
key made) and the transcript it covers; anything else is ``Unreadable`` (bytes that do not
decode as the message due, or more bytes than a handshake message may have: ``oversize``).

A side takes the next message and refuses it with the first reason that applies:

1. "already finished": the side has finished; nothing more is a handshake message;
   "already refused": the side refused a message before; it takes nothing more (a peer
   that failed once does not get a second try on the same connection);
2. "limit": the message is oversize;
3. "hello" (no hello taken yet) or "proof" (after the hello): it is not that message;
4. on a hello: "echoed nonce": its nonce is the side's own;
   on the client: "not the node dialed": it knows the key it dialed, and the hello names
   another; "other certificate": the hello names a fingerprint other than the pinned one;
   on the server: "own identity": the hello names the server's own key;
5. on a proof: "bad proof": it was not made by the key the peer's hello names, or not over
   this session's transcript for the peer's role.

A hello taken is kept (the server answers it with its hello and its proof); a proof taken
finishes the side (the client answers it with its own proof), which then knows the peer's
key. A refused side knows no peer and stays refused: the connection closes and delivers
nothing, and what still arrives before it is closed is refused too. So a side
finishes only if the key its peer names made a signature over exactly this session's nonces,
the pinned fingerprint and the peer's role: a signature from another session, for the other
role, or made for a listener with another certificate (a relay) does not do.
"""

from __future__ import annotations

import attrs

SERVER, CLIENT = "server", "client"
REFUSALS = ("already finished", "already refused", "limit", "hello", "proof", "echoed nonce", "not the node dialed",
            "other certificate", "own identity", "bad proof")


@attrs.frozen
class Hello:
    key: bytes
    nonce: bytes
    fingerprint: bytes


@attrs.frozen
class Transcript:
    role: str
    server_fingerprint: bytes
    client_fingerprint: bytes
    client_nonce: bytes
    server_nonce: bytes


@attrs.frozen
class Proof:
    #: The key that made the signature, or None: bytes no key made.
    signer: bytes | None
    transcript: Transcript | None


@attrs.frozen
class Unreadable:
    oversize: bool = False


Message = Hello | Proof | Unreadable


@attrs.frozen
class Side:
    role: str
    own: Hello
    #: The server's certificate fingerprint: the pinned one on the client, its own on the server.
    pinned: bytes
    expected: bytes | None = None
    peer: Hello | None = None
    done: bool = False
    #: The first refusal the side made, or None.
    refused: str | None = None

    @property
    def peer_key(self) -> bytes | None:
        """What the side knows of its peer: its key once finished, else nothing."""
        return self.peer.key if self.done and self.peer is not None else None


def other(role: str) -> str:
    return CLIENT if role == SERVER else SERVER


def transcript(side: Side, role: str) -> Transcript:
    """The transcript of ``side``'s session signed by ``role`` (the side has taken a hello)."""
    assert side.peer is not None
    server, client = (side.peer, side.own) if side.role == CLIENT else (side.own, side.peer)
    return Transcript(role, side.pinned, client.fingerprint, client.nonce, server.nonce)


def start(side: Side) -> tuple[Message, ...]:
    """What a side sends first: the client its hello, the server nothing."""
    return (side.own,) if side.role == CLIENT else ()


def receive(side: Side, message: Message) -> tuple[Side, tuple[Message, ...], str | None]:
    """``side`` after taking ``message``: (the side, what it sends, the refusal or None).
    A side that refuses learns nothing from the message and is refused from then on."""
    if side.done:
        return side, (), "already finished"
    if side.refused is not None:
        return side, (), "already refused"
    after, out, refusal = _receive(side, message)
    if refusal is not None:
        return attrs.evolve(side, refused=refusal), (), refusal
    return after, out, None


def _receive(side: Side, message: Message) -> tuple[Side, tuple[Message, ...], str | None]:
    if isinstance(message, Unreadable) and message.oversize:
        return side, (), "limit"
    if side.peer is None:
        if not isinstance(message, Hello):
            return side, (), "hello"
        refusal = hello_refusal(side, message)
        if refusal is not None:
            return side, (), refusal
        side = attrs.evolve(side, peer=message)
        if side.role == CLIENT:
            return side, (), None  # the server's proof follows its hello
        return side, (side.own, Proof(side.own.key, transcript(side, SERVER))), None
    if not isinstance(message, Proof):
        return side, (), "proof"
    if message.signer != side.peer.key or message.transcript != transcript(side, other(side.role)):
        return side, (), "bad proof"
    side = attrs.evolve(side, done=True)
    if side.role == CLIENT:
        return side, (Proof(side.own.key, transcript(side, CLIENT)),), None
    return side, (), None


def hello_refusal(side: Side, hello: Hello) -> str | None:
    if hello.nonce == side.own.nonce:
        return "echoed nonce"
    if side.role == CLIENT:
        if side.expected is not None and hello.key != side.expected:
            return "not the node dialed"
        if hello.fingerprint != side.pinned:
            return "other certificate"
        return None
    if hello.key == side.own.key:
        return "own identity"
    return None
