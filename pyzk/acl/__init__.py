"""ACLs and authentication: providers (ip, digest, sasl, x509), the registry built from system
properties, and the ACL rules (fixup, permission check, digest masking)."""

from pyzk.acl.checks import InvalidACL, check_acl, fixup_acl, mask_digest_acl
from pyzk.acl.providers import (
    AuthProvider,
    DigestAuthenticationProvider,
    IPAuthenticationProvider,
    SASLAuthenticationProvider,
    UnsupportedDigestAlgorithm,
    X509AuthenticationProvider,
    digest_id,
    java_host_address,
)
from pyzk.acl.registry import AuthRegistry

__all__ = [
    "AuthProvider",
    "AuthRegistry",
    "DigestAuthenticationProvider",
    "IPAuthenticationProvider",
    "InvalidACL",
    "SASLAuthenticationProvider",
    "UnsupportedDigestAlgorithm",
    "X509AuthenticationProvider",
    "check_acl",
    "digest_id",
    "fixup_acl",
    "java_host_address",
    "mask_digest_acl",
]
