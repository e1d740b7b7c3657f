"""Quorum TLS settings: sslQuorum, portUnification and ssl.quorum.* as QuorumX509Util reads them,
and the settings pyzk cannot honour refused at start-up with where they were set."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.config import ConfigError, parse_config
from pyzk.config.quorum_tls import DEFAULT_CIPHER_SUITES, openssl_cipher_name

ENSEMBLE = (
    "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=/var/lib/zk\nclientPort=2181\n"
    "server.1=10.0.0.1:2888:3888\nserver.2=10.0.0.2:2888:3888\nserver.3=10.0.0.3:2888:3888\n"
)
TLS = "sslQuorum=true\nssl.quorum.keyStore.location=/k.p12\n"  # lines 9 and 10


def parse(text: str, **kwargs: object):  # type: ignore[no-untyped-def]
    return parse_config(text, config_path=Path("zoo.cfg"), myid_text="1", **kwargs)  # type: ignore[arg-type]


def error_of(text: str, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text, **kwargs)
    return str(caught.value)


def test_off_by_default_and_plaintext() -> None:
    assert parse(ENSEMBLE).quorum_tls is None
    assert parse(ENSEMBLE + "sslQuorum=false\nportUnification=false\n").quorum_tls is None


def test_apache_defaults() -> None:
    config = parse(ENSEMBLE + TLS)
    tls = config.quorum_tls
    assert tls is not None
    assert (tls.ssl_quorum, tls.port_unification, tls.tls_accepted, tls.plaintext_accepted) == (True, False, True, False)
    assert (tls.protocol, tls.enabled_protocols) == ("TLSv1.2", ("TLSv1.2",))
    assert tls.cipher_suites == DEFAULT_CIPHER_SUITES and len(tls.openssl_ciphers) == 12
    assert tls.openssl_ciphers[:2] == ("ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256")
    assert (tls.client_auth, tls.hostname_verification, tls.handshake_detection_timeout_ms) == ("need", True, 5000)
    assert tls.key_store_location == "/k.p12" and tls.trust_store_location == ""
    assert "sslQuorum" not in config.unknown_keys and "ssl.quorum.keyStore.location" not in config.unknown_keys
    assert not any("ssl" in warning.lower() for warning in config.warnings)


def test_every_setting_is_read() -> None:
    tls = parse(ENSEMBLE + TLS + (
        "ssl.quorum.keyStore.password=kp\nssl.quorum.keyStore.type=pkcs12\n"
        "ssl.quorum.trustStore.location=/t.jks\nssl.quorum.trustStore.password=tp\n"
        "ssl.quorum.trustStore.type=JKS\nssl.quorum.trustStore.passwordPath=/secret\n"
        "ssl.quorum.protocol=TLSv1.3\nssl.quorum.enabledProtocols=TLSv1.3,TLSv1.2\n"
        "ssl.quorum.ciphersuites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256,"
        "TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256\n"
        "ssl.quorum.clientAuth=WANT\nssl.quorum.hostnameVerification=false\n"
        "ssl.quorum.handshakeDetectionTimeoutMillis=250\nportUnification=true\n")).quorum_tls
    assert tls is not None
    assert (tls.key_store_password, tls.key_store_type) == ("kp", "PKCS12")
    assert (tls.trust_store_location, tls.trust_store_password, tls.trust_store_type,
            tls.trust_store_password_path) == ("/t.jks", "tp", "JKS", "/secret")
    assert (tls.protocol, tls.enabled_protocols) == ("TLSv1.3", ("TLSv1.3", "TLSv1.2"))
    assert tls.openssl_ciphers == ("ECDHE-RSA-AES256-GCM-SHA384",)
    assert (tls.client_auth, tls.hostname_verification, tls.handshake_detection_timeout_ms) == ("want", False, 250)
    assert tls.plaintext_accepted and tls.tls_accepted


def test_system_properties_count_as_zoo_cfg_keys() -> None:
    tls = parse(ENSEMBLE + "sslQuorum=true\n", system_properties={
        "zookeeper.ssl.quorum.keyStore.location": "/from-d.p12", "zookeeper.ssl.quorum.clientAuth": "none"}).quorum_tls
    assert tls is not None and (tls.key_store_location, tls.client_auth) == ("/from-d.p12", "none")


def test_port_unification_alone_accepts_both_and_dials_plaintext() -> None:
    tls = parse(ENSEMBLE + "portUnification=true\n").quorum_tls
    assert tls is not None
    assert (tls.ssl_quorum, tls.tls_accepted, tls.plaintext_accepted, tls.key_store_location) == (False, True, True, "")


def test_standalone_warns_that_quorum_tls_has_no_effect() -> None:
    config = parse_config("tickTime=2000\ndataDir=/var/lib/zk\nclientPort=2181\nsslQuorum=true\n")
    assert config.quorum_tls is None
    assert any("sslQuorum: no effect on a standalone server" in warning for warning in config.warnings)


def test_without_a_trust_store_only_disabled_protocols_are_dropped() -> None:
    # TLSv1.2 and 1.3 enabled, only 1.2 suites listed: Java never negotiates 1.3, nor does pyzk.
    tls = parse(ENSEMBLE + TLS + "ssl.quorum.protocol=TLSv1.3\nssl.quorum.enabledProtocols=TLSv1.2,TLSv1.3\n").quorum_tls
    assert tls is not None and tls.enabled_protocols == ("TLSv1.2",)


@pytest.mark.parametrize(("line", "expected"), [
    ("sslQuorum=true\n", "zoo.cfg:9: sslQuorum: ssl.quorum.keyStore.location: sslQuorum=true needs a key store"),
    (TLS + "ssl.quorum.clientAuth=maybe\n",
     "zoo.cfg:11: ssl.quorum.clientAuth: invalid value 'maybe' (NONE, WANT or NEED)"),
    (TLS + "ssl.quorum.protocol=TLSv1.1\n",
     "zoo.cfg:11: ssl.quorum.protocol: protocol 'TLSv1.1' is not supported (TLSv1.2 or TLSv1.3)"),
    (TLS + "ssl.quorum.enabledProtocols=TLSv1.2, TLSv1.3\n",
     "zoo.cfg:11: ssl.quorum.enabledProtocols: protocol ' TLSv1.3' is not supported"),
    (TLS + "ssl.quorum.enabledProtocols=TLSv1.3\n",
     "zoo.cfg:11: ssl.quorum.enabledProtocols: TLSv1.3 is enabled but ssl.quorum.protocol is TLSv1.2"),
    (TLS + "ssl.quorum.protocol=TLSv1.3\n",
     "zoo.cfg:11: ssl.quorum.protocol: no cipher suite is listed for TLSv1.3 (the default suites are TLS 1.2"),
    (TLS + "ssl.quorum.ciphersuites=TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA\n",
     "zoo.cfg:11: ssl.quorum.ciphersuites: cipher suite 'TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA' is not supported"),
    (TLS + "ssl.quorum.protocol=TLSv1.3\nssl.quorum.ciphersuites=TLS_AES_128_GCM_SHA256\n",
     "zoo.cfg:12: ssl.quorum.ciphersuites: pyzk cannot choose among the TLS 1.3 suites"),
    (TLS + "ssl.quorum.hostnameVerification=yes\n",
     "zoo.cfg:11: ssl.quorum.hostnameVerification: invalid boolean 'yes' (true or false)"),
    (TLS + "ssl.quorum.keyStore.type=BCFKS\n",
     "zoo.cfg:11: ssl.quorum.keyStore.type: store type BCFKS is not supported (JKS, PEM or PKCS12)"),
    (TLS + "ssl.quorum.crl=true\n", "zoo.cfg:11: ssl.quorum.crl: certificate revocation checks"),
    (TLS + "ssl.quorum.ocsp=true\n", "zoo.cfg:11: ssl.quorum.ocsp: certificate revocation checks"),
    (TLS + "ssl.quorum.context.supplier.class=com.example.Ctx\n",
     "zoo.cfg:11: ssl.quorum.context.supplier.class: an SSLContext supplier class is Java code"),
    (TLS + "ssl.quorum.handshakeDetectionTimeoutMillis=soon\n",
     "zoo.cfg:11: ssl.quorum.handshakeDetectionTimeoutMillis: invalid integer 'soon'"),
    (TLS + "sslQuorumReloadCertFiles=true\n", "zoo.cfg:11: sslQuorumReloadCertFiles: reloading the quorum TLS"),
    ("sslQuorum=maybe\n", "zoo.cfg:9: sslQuorum: Invalid option maybe for sslQuorum. Choose 'true' or 'false.'"),
    (TLS + "ssl.quorum.authProvider=x509\n",
     "zoo.cfg:11: ssl.quorum.authProvider: a TLS authentication provider is not implemented"),
], ids=["no-key-store", "client-auth", "protocol", "enabled-untrimmed", "enabled-above-protocol",
        "tls13-without-suites", "unknown-suite", "some-tls13-suites", "hostname-verification", "bcfks",
        "crl", "ocsp", "supplier", "detection-timeout", "reload", "bad-boolean", "auth-provider"])
def test_settings_pyzk_cannot_honour_stop_start_up(line: str, expected: str) -> None:
    assert error_of(ENSEMBLE + line).startswith(expected)


def test_a_refused_system_property_is_named() -> None:
    message = error_of(ENSEMBLE + TLS, system_properties={"zookeeper.ssl.quorum.ocsp": "true"})
    assert message.startswith("command line: -Dzookeeper.ssl.quorum.ocsp: certificate revocation checks")


def test_detection_timeout_below_one_is_the_default_with_a_warning() -> None:
    config = parse(ENSEMBLE + TLS + "ssl.quorum.handshakeDetectionTimeoutMillis=0\n")
    assert config.quorum_tls is not None and config.quorum_tls.handshake_detection_timeout_ms == 5000
    assert any("handshakeDetectionTimeoutMillis: 0, using the default value of 5000" in w for w in config.warnings)


def test_unknown_quorum_ssl_key_is_reported_with_a_suggestion() -> None:
    config = parse(ENSEMBLE + TLS + "ssl.quorum.keystore.password=x\n")
    assert "ssl.quorum.keystore.password" in config.unknown_keys
    assert any("did you mean ssl.quorum.keyStore.password?" in w for w in config.warnings)


@pytest.mark.parametrize(("java", "openssl"), [
    ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
    ("TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "ECDHE-ECDSA-AES256-SHA384"),
    ("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", "ECDHE-RSA-AES256-SHA"),
    ("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256"),
    ("TLS_RSA_WITH_AES_128_CBC_SHA", "AES128-SHA"),
    ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"),
    ("TLS_ECDHE_RSA_WITH_AES_128_CCM", None),
    ("SSL_RSA_WITH_RC4_128_MD5", None),
    ("TLS_AES_128_GCM_SHA256", None),  # a TLS 1.3 suite has no TLS 1.2 name
])
def test_openssl_names_of_java_suites(java: str, openssl: str | None) -> None:
    assert openssl_cipher_name(java) == openssl
