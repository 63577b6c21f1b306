"""A throwaway certificate authority for `cdc sandbox up --tls`: CA, server and client certificates (PEM).

The server certificate names 127.0.0.1 and localhost, so clients can verify both the chain and the
name (PostgreSQL `sslmode=verify-full`, MariaDB `ssl_verify_identity=true`). Keys are written 0600;
each server gets its own copy of its certificate and key, owned by the user it runs as.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TLS_DIR = "tls"
VALID_DAYS = 30


@dataclass(slots=True, frozen=True)
class TlsFiles:
    """Where the sandbox's CA and certificates are (PEM files)."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def files_in(directory: Path) -> TlsFiles:
    """The TLS file paths of the sandbox in `directory` (made by `make_certificates`)."""
    tls = directory / TLS_DIR
    return TlsFiles(tls / "ca.pem", tls / "server.pem", tls / "server.key", tls / "client.pem", tls / "client.key")


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cdc sandbox"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
        out.write(data)


def _certificate(subject: x509.Name, key, issuer: x509.Name, issuer_key, *, ca: bool,
                 names: list[x509.GeneralName] = (), usage=None) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                                        critical=True)
    else:
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                                        critical=False)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, ec.EllipticCurvePrivateKey]:
    """A self-signed CA in directory/<name>.pem; its key stays in memory (nothing outlives the sandbox)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(f"cdc sandbox {name} {os.urandom(4).hex()}")
    certificate = _certificate(subject, key, subject, key, ca=True)
    path = directory / f"{name}.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path, key


def make_certificates(directory: Path) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate, under DIR/tls."""
    files = files_in(directory)
    ca_path, ca_key = make_ca(files.ca.parent)
    issuer = x509.load_pem_x509_certificate(ca_path.read_bytes()).subject
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate(_name("localhost"), server_key, issuer, ca_key, ca=False,
                          names=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
                          usage=ExtendedKeyUsageOID.SERVER_AUTH)
    files.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(files.server_key, server_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate(_name("cdc"), client_key, issuer, ca_key, ca=False, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    files.client_cert.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(files.client_key, client_key)
    return files


def install_server_files(files: TlsFiles, home: Path, user: str | None) -> tuple[Path, Path, Path]:
    """Copy (CA, server certificate, server key) into a server's home, owned by its user; their new paths."""
    target = home / TLS_DIR
    target.mkdir(mode=0o700, exist_ok=True)
    copies = []
    for source in (files.ca, files.server_cert, files.server_key):
        copy = target / source.name
        shutil.copyfile(source, copy)
        copy.chmod(0o600)
        copies.append(copy)
    if user:
        entry = pwd.getpwnam(user)
        for path in (target, *copies):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return copies[0], copies[1], copies[2]
