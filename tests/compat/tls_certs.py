"""Throw-away certificates for TLS tests: a CA, members it signs, stores both kinds read.

Key stores are PKCS12 (Java reads them natively, pyzk through cryptography); trust stores are
JKS (Java ignores certificate-only PKCS12 entries without its own trust attribute), written
with pyjks, which pyzk also reads them with.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import jks
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

PASSWORD = "changeit"
KEY_BITS = 2048
VALID_DAYS = 30


@dataclass
class Authority:
    name: str
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def pem(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def trust_store(self, path: Path, *also: Authority) -> Path:
        """A JKS trust store holding this CA (and `also`)."""
        entries = [
            jks.TrustedCertEntry.new(ca.name.lower(), ca.cert.public_bytes(serialization.Encoding.DER))
            for ca in (self, *also)
        ]
        jks.KeyStore.new("jks", entries).save(str(path), PASSWORD)
        return path

    def member(self, path: Path, common_name: str, *, ips: tuple[str, ...] = ("127.0.0.1",),
               dns: tuple[str, ...] = ("localhost",)) -> Path:
        """A PKCS12 key store: a key and a certificate this CA signs, naming `ips` and `dns`
        (beside it, `<name>.pem`: the same key and chain unencrypted, for test clients)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
        names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
        builder = _builder(common_name, self.cert.subject, key).add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        path.with_suffix(".pem").write_bytes(  # the same key and chain for Python's ssl probes
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
            + cert.public_bytes(serialization.Encoding.PEM) + self.cert.public_bytes(serialization.Encoding.PEM))
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            common_name.encode(), key, cert, [self.cert],
            serialization.BestAvailableEncryption(PASSWORD.encode())))
        return path


def _builder(common_name: str, issuer: x509.Name, key: rsa.RSAPrivateKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=VALID_DAYS)))


def authority(name: str) -> Authority:
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (_builder(name, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return Authority(name, key, cert)


def quorum_tls_cfg(key_store: Path, trust_store: Path, **extra: str) -> dict[str, str | None]:
    """zoo.cfg lines turning quorum TLS on with these stores."""
    cfg: dict[str, str | None] = {
        "sslQuorum": "true",
        "ssl.quorum.keyStore.location": str(key_store),
        "ssl.quorum.keyStore.password": PASSWORD,
        "ssl.quorum.trustStore.location": str(trust_store),
        "ssl.quorum.trustStore.password": PASSWORD,
    }
    cfg.update(extra)
    return cfg
