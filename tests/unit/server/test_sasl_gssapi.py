"""The authorized id a GSSAPI login yields (SaslServerCallbackHandler.handleAuthorizeCallback)."""

from pyzk.server.sasl_gssapi import authorized_id


def test_user_principal_keeps_its_realm_by_default() -> None:
    assert authorized_id("client@KAZOOTEST.ORG", False, False) == "client@KAZOOTEST.ORG"


def test_service_principal_keeps_host_and_realm_by_default() -> None:
    assert authorized_id("zk/host1@EX.ORG", False, False) == "zk/host1@EX.ORG"


def test_remove_host_and_realm_properties() -> None:
    assert authorized_id("zk/host1@EX.ORG", True, False) == "zk@EX.ORG"
    assert authorized_id("zk/host1@EX.ORG", False, True) == "zk/host1"
    assert authorized_id("client@KAZOOTEST.ORG", True, True) == "client"
