"""A node's self-signed TLS certificate and the QUIC configurations that pin it.

A node makes its certificate (an ECDSA P-256 key, ``cryptography``) the first time it starts
and keeps it beside its data (``transport-cert.pem``, ``transport-key.pem`` readable by the
owner only), so a restart on the same directory presents the same certificate and its peers'
pins stay valid. A peer's address carries the certificate (``PeerAddress.certificate``);
a client trusts that certificate and nothing else (``load_verify_locations(cadata=...)``,
no system roots) and names it by ``SERVER_NAME``, which every node certificate carries.

TLS only authenticates the listening side (aioquic has no client certificates) and only
says "the holder of this certificate's key": which *node* is at either end is proven above
TLS, by signatures of the node identity bound to this certificate's fingerprint
(``implementations.transport.auth``).
"""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from aioquic.quic.configuration import QuicConfiguration
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from implementations import limits

#: The name in every node certificate and the ``server_name`` every client asks for. The
#: pin is the certificate itself, so one name for all nodes is enough.
SERVER_NAME = "mbt-node"
#: The application protocol; both sides must offer it or the handshake fails.
ALPN = "mbt/1"
CERT_FILE, KEY_FILE = "transport-cert.pem", "transport-key.pem"
#: A node certificate is valid from a day before it is made (clock skew) for ten years.
VALIDITY = datetime.timedelta(days=3650)


class CertificateError(ValueError):
    """Certificate bytes that are not one PEM certificate, or a stored key that does not match."""


@dataclass(frozen=True)
class NodeCertificate:
    """A node's certificate and private key, PEM encoded."""

    certificate_pem: bytes
    private_key_pem: bytes

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.certificate_pem)


def fingerprint(certificate_pem: bytes) -> bytes:
    """SHA-256 of the certificate's DER bytes: what a pin and an identity proof name."""
    return _load(certificate_pem).fingerprint(hashes.SHA256())


def _load(certificate_pem: bytes) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(certificate_pem)
    except (ValueError, TypeError) as error:
        raise CertificateError(f"not a PEM certificate: {error}") from None


def load_or_create(directory: str | os.PathLike) -> NodeCertificate:
    """The certificate stored in ``directory``, made and stored first if there is none."""
    directory = Path(directory)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if cert_path.exists() and key_path.exists():
        stored = NodeCertificate(cert_path.read_bytes(), key_path.read_bytes())
        key = serialization.load_pem_private_key(stored.private_key_pem, password=None)
        if _load(stored.certificate_pem).public_key() != key.public_key():
            raise CertificateError(f"{cert_path}: certificate does not match {key_path}")
        return stored
    directory.mkdir(parents=True, exist_ok=True)
    made = make_certificate()
    _write_private(key_path, made.private_key_pem)
    tmp = cert_path.with_suffix(".tmp")
    tmp.write_bytes(made.certificate_pem)
    os.replace(tmp, cert_path)  # the certificate appears whole or not at all, after its key
    return made


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def make_certificate() -> NodeCertificate:
    """A fresh self-signed certificate for ``SERVER_NAME``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return NodeCertificate(
        certificate.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


def _configuration(is_client: bool) -> QuicConfiguration:
    return QuicConfiguration(
        is_client=is_client,
        alpn_protocols=[ALPN],
        idle_timeout=limits.IDLE_TIMEOUT_SECONDS,
        max_data=limits.QUIC_MAX_DATA,
        max_stream_data=limits.QUIC_MAX_STREAM_DATA,
        max_datagram_size=limits.QUIC_DATAGRAM_BYTES,
    )


def server_configuration(own: NodeCertificate) -> QuicConfiguration:
    """The listening side: presents ``own``."""
    configuration = _configuration(is_client=False)
    configuration.certificate = x509.load_pem_x509_certificate(own.certificate_pem)
    configuration.private_key = serialization.load_pem_private_key(own.private_key_pem, password=None)
    return configuration


def client_configuration(peer_certificate_pem: bytes) -> QuicConfiguration:
    """The dialing side: trusts exactly the peer's pinned certificate."""
    _load(peer_certificate_pem)
    configuration = _configuration(is_client=True)
    configuration.server_name = SERVER_NAME
    configuration.verify_mode = ssl.CERT_REQUIRED
    configuration.load_verify_locations(cadata=peer_certificate_pem)
    return configuration
