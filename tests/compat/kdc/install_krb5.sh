#!/usr/bin/env bash
# Install MIT Kerberos (KDC, admin tools, kinit, headers for the `kerberos` Python module) when
# any of its tools or headers is absent.  Idempotent, non-interactive, bounded: a few attempts,
# each waiting a bounded time for the dpkg lock.  Configures nothing under /etc: the realm is
# made per run by tests/compat/kdc/realm.py.
set -euo pipefail

if command -v krb5kdc >/dev/null && command -v kdb5_util >/dev/null \
    && command -v kadmin.local >/dev/null && command -v kinit >/dev/null \
    && command -v krb5-config >/dev/null; then
    exit 0
fi

sudo_prefix=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_prefix=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=120 -o Acquire::Retries=3)
packages=(krb5-kdc krb5-admin-server krb5-user libkrb5-dev)

for attempt in 1 2 3; do
    # update only when the package lists do not know the packages yet.
    if apt-cache show "${packages[@]}" >/dev/null 2>&1 \
        || "${sudo_prefix[@]}" apt-get "${apt_options[@]}" update -q; then
        if "${sudo_prefix[@]}" apt-get "${apt_options[@]}" install -y -q \
            --no-install-recommends "${packages[@]}"; then
            exit 0
        fi
    fi
    echo "install_krb5: attempt ${attempt} failed; retrying in 10 s" >&2
    sleep 10
done
echo "install_krb5: could not install ${packages[*]}" >&2
exit 1
