"""The x509 scheme: X500Principal.getName() of certificate subjects, X500Principal(String)'s
validity (the provider's isValid), and the provider's ids and matching.

The expected names and verdicts below came from JDK 17's X500Principal (OpenJDK
17.0.15, Debian): X500Principal(nameDer).getName() for each DER Name, and whether
new X500Principal(text) throws IllegalArgumentException for each text. The DER Names were made
with cryptography's x509.Name(...).public_bytes() (a multi-valued RDN, non-ASCII, a BMPString,
a T61String, a UniversalString, invalid UTF-8 written as UTF8String bytes by hand).
"""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from jute.data import Id
from pyzk.acl import AuthRegistry
from pyzk.acl.providers import X509AuthenticationProvider
from pyzk.acl.x500 import certificate_subject_name, is_valid_x500_name, rfc2253_name

X509_CLASS = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"

NAMES = [
    ('simple', '303b310b3009060355040613025553310c300a060355040a0c034f7267310d300b060355040b0c0454657374310f300d06035504030c06636c69656e74',
     'CN=client,OU=Test,O=Org,C=US'),
    ('specials', '301e311c301a06035504030c13612c623d632b643c653e6623673b6822695c6a',
     'CN=a\\,b\\=c\\+d\\<e\\>f\\#g\\;h\\"i\\\\j'),
    ('leading_hash_spaces', '301e311c301a06035504030c132320206c65616420616e6420747261696c2020',
     'CN=\\#  lead and trail\\ \\ '),
    ('cr', '300e310c300a06035504030c030d780d',
     'CN=\\\rx\\\r'),
    ('nul', '300e310c300a06035504030c03610062',
     'CN=a\\00b'),
    ('multivalued', '302b311c300806035504030c01783010060a0992268993f22c6401010c027531310b3009060355040a0c024f31',
     'O=O1,CN=x+UID=u1'),
    ('nonascii', '30373125302306035504030c1c5a6fc3ab20c39c6ec3af63c3b864c3a920e697a5e69cac20f09f9880310e300c06035504070c054bc3b66c6e',
     'L=Köln,CN=Zoë Ünïcødé 日本 😀'),
    ('email_serial', '3037311a301806092a864886f70d010901160b6140622e6578616d706c65310d300b0603550405130431323334310a300806035504030c0163',
     'CN=c,2.5.4.5=#130431323334,1.2.840.113549.1.9.1=#160b6140622e6578616d706c65'),
    ('dc_street_st', '304f31133011060a0992268993f22c6401191603636f6d31173015060a0992268993f22c64011916076578616d706c653112301006035504090c0931204d61696e205374310b300906035504080c024341',
     'ST=CA,STREET=1 Main St,DC=example,DC=com'),
    ('title_surname_given', '303d310b3009060355040c0c024472310e300c06035504040c05536d697468310c300a060355042a0c03416e6e3110300e06042a0304050c06637573746f6d',
     '1.2.3.4.5=#0c06637573746f6d,2.5.4.42=#0c03416e6e,2.5.4.4=#0c05536d697468,2.5.4.12=#0c024472'),
    ('bmp', '30153113301106035504031e0a0062006d0070002000e9',
     'CN=\\00b\\00m\\00p\\00 \\00�'),
    ('t61', '300e310c300a06035504031403743631',
     'CN=t61'),
    ('universal', '30173115301306035504031c0c000000750000006e00000069',
     'CN=#1c0c000000750000006e00000069'),
    ('ia5_cn', '300e310c300a06035504031603696135',
     'CN=ia5'),
    ('printable_spaces', '300e310c300a06035504031303207020',
     'CN=\\ p\\ '),
    ('empty', '3000',
     ''),
    ('big_oid', '3011310f300d06088837a3f78fec894b0c0176',
     '2.999.1234567890123=#0c0176'),
    ('equals_plus_in_multivalue', '301a3118300a06035504030c03612b62300a060355040b0c03633d64',
     'CN=a\\+b+OU=c\\=d'),
    ('badutf8_ff', '300c310a300806035504030c01ff',
     'CN=�'),
    ('badutf8_trunc', '300d310b300906035504030c02e282',
     'CN=�'),
    ('badutf8_trunc_ascii', '300e310c300a06035504030c03e28241',
     'CN=�A'),
    ('badutf8_overlong', '300d310b300906035504030c02c0af',
     'CN=��'),
    ('badutf8_surrogate', '300e310c300a06035504030c03eda080',
     'CN=�'),
    ('badutf8_big', '300f310d300b06035504030c04f4908080',
     'CN=����'),
    ('t61_latin1', '300c310a300806035504031401e9',
     'CN=�'),
    ('surrogate_then_ascii', '300e310c300a06035504030c03eda041',
     'CN=�A'),
    ('surrogate_end', '300d310b300906035504030c02eda0',
     'CN=�'),
]
VALID_NAMES = [
    '',
    'CN=client,OU=Test,O=Org,C=US',
    'cn=a',
    'CN=a;O=b',
    'CN=',
    'CN= ',
    'OID.2.5.4.3=a',
    'oid.2.5.4.3=a',
    '2.5.4.3=a',
    '2.40=a',
    'CN=#0403616263',
    'CN="a,b"',
    'CN="a\\"b"',
    'CN="a"  ',
    'CN="\\41\\42"',
    'CN=a\\,b',
    'CN=a\\\\\\,b',
    'CN=a\\41b',
    'CN=a=b',
    'CN=a#b',
    'CN=a+O=b',
    'CN=a\\+O=b',
    ' CN=a',
    '\tCN=a',
    '\nCN=a',
    ' \tCN=a',
    'CN=a, O=b',
    'CN = a , O = b',
    'CN=a\nO=b',
    'EMAILADDRESS=a@b',
    'UID=x,DC=com',
    'SERIALNUMBER=1+T=2',
    'IP=1.2.3.4',
    'CN=Zoë',
    'CN=\\c3\\a9',
    'CN=\\\\',
    'CN=a\\ ',
    'CN= a ',
    'CN="a;b"',
    'CN="a,b",O=c',
    'CN=\\,',
    'CN=a\\\\\\\\,O=b',
    'CN=\\#a',
    'CN=\\=',
    'CN=\\\n',
    'CN=\\<',
    'DNQ=a',
    'S=a',
    'T=a',
    '0.39=a',
    '2.5.4.3 =a',
    ' OID.2.5.4.3 =a',
    'CN=#30800000',
    'CN=#04820003616263',
    'CN=#8000',
    'CN=#0000',
]
INVALID_NAMES = [
    'CN=a,',
    ',CN=a',
    'CN',
    '=a',
    'FOO=a',
    '3.5=a',
    '1.40=a',
    '1.2.-3=a',
    '1=a',
    '1.2.+3=a',
    'CN=#04036162',
    'CN=#0403616263ff',
    'CN=#',
    'CN=#0',
    'CN=#zz',
    'CN=#2280',
    'CN=#3080',
    'CN="unterminated',
    'CN="a" x',
    'CN="a\\qb"',
    'CN="\\4"',
    'CN=a\\\\,b',
    'CN=a\\q',
    'CN=a\\',
    'CN=a\\4',
    'CN=a<b',
    'CN=a>b',
    'CN=a"b',
    'CN=a+',
    '+CN=a',
    'CN=a++O=b',
    'CN=a;',
    'CN=a"b,c"',
    'CN=x,,O=y',
    '\\,CN=a',
    '2.5.4.3.=a',
    '2..4=a',
    '0.40=a',
    'CN=#308000',
    'CN=#2280',
    'CN=#0481036162',
    'CN=#1f0100',
]


@pytest.mark.parametrize(("name_der", "expected"), [(der, name) for _, der, name in NAMES],
                         ids=[case for case, _, _ in NAMES])
def test_rfc2253_name_is_what_java_prints(name_der: str, expected: str) -> None:
    assert rfc2253_name(bytes.fromhex(name_der)) == expected


@pytest.mark.parametrize("text", VALID_NAMES)
def test_names_java_accepts(text: str) -> None:
    assert is_valid_x500_name(text)


@pytest.mark.parametrize("text", INVALID_NAMES)
def test_names_java_refuses(text: str) -> None:
    assert not is_valid_x500_name(text)


def _certificate(subject: x509.Name) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")]))
        .public_key(key.public_key()).serial_number(7)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256()))
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.DER)


SIMPLE = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Org"),
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Test"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "client")])


def test_certificate_subject_is_read_from_the_der() -> None:
    assert certificate_subject_name(_certificate(SIMPLE)) == "CN=client,OU=Test,O=Org,C=US"


def test_provider_ids_super_user_and_matching() -> None:
    cert = _certificate(SIMPLE)
    dn = "CN=client,OU=Test,O=Org,C=US"
    plain = X509AuthenticationProvider()
    assert plain.authenticate_certificate(cert) == [Id("x509", dn)]
    assert plain.authenticate_certificate(None) is None
    assert plain.authenticate(b"anything", "127.0.0.1") is None  # no certificate: AUTHFAILED
    assert plain.matches(dn, dn) and not plain.matches(dn, "CN=other")
    superuser = X509AuthenticationProvider(super_user=dn)
    assert superuser.authenticate_certificate(cert) == [Id("super", dn), Id("x509", dn)]
    assert superuser.matches(dn, "CN=other")  # the superUser matches every x509 ACL
    assert not superuser.matches("CN=other", dn)
    assert plain.is_authenticated() and plain.user_name(dn) == dn
    # No trust store: Java's provider has no trust manager and fails every certificate.
    assert X509AuthenticationProvider(trust_store_configured=False).authenticate_certificate(cert) is None


def test_registry_loads_x509_and_routes_certificates() -> None:
    cert = _certificate(SIMPLE)
    dn = "CN=client,OU=Test,O=Org,C=US"
    registry = AuthRegistry.from_properties({
        "zookeeper.authProvider.x509": X509_CLASS,
        "zookeeper.ssl.trustStore.location": "/trust.jks",
        "zookeeper.X509AuthenticationProvider.superUser": dn,
    })
    assert "x509" in registry.schemes() and not registry.unsupported_provider_classes
    assert registry.tls_client_ids(cert) == [Id("super", dn), Id("x509", dn)]
    assert registry.authenticate("x509", b"", "127.0.0.1", cert) == [Id("super", dn), Id("x509", dn)]
    assert registry.authenticate("x509", b"", "127.0.0.1") is None
    assert registry.user_name(Id("x509", dn)) == dn
    # Without the provider (or with ssl.authProvider naming another scheme) a certificate
    # closes the connection.
    assert AuthRegistry.from_properties({}).tls_client_ids(cert) is None
    other = AuthRegistry.from_properties({"zookeeper.authProvider.x509": X509_CLASS,
                                          "zookeeper.ssl.trustStore.location": "/t",
                                          "zookeeper.ssl.authProvider": "digest"})
    assert other.tls_client_ids(cert) is None
