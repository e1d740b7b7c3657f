#!/usr/bin/env bash
# Install MIT Kerberos (KDC, admin tools, kinit, headers for the `kerberos` Python module) when
# any of its tools or headers is absent (apt_install.sh: bounded, non-interactive). Configures
# nothing under /etc: the realm is made per run by tests/compat/kdc/realm.py.
set -euo pipefail

if command -v krb5kdc >/dev/null && command -v kdb5_util >/dev/null \
    && command -v kadmin.local >/dev/null && command -v kinit >/dev/null \
    && command -v krb5-config >/dev/null; then
    exit 0
fi

exec bash "$(dirname "$0")/../apt_install.sh" install_krb5 \
    krb5-kdc krb5-admin-server krb5-user libkrb5-dev
