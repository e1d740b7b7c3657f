#!/usr/bin/env bash
# apt_install.sh NAME PACKAGE... : install Debian packages for the compat suites.
# Non-interactive and bounded: 3 attempts, each waiting at most 120 s for the dpkg lock; the
# package lists are refreshed only when they do not know the packages yet. NAME labels the
# messages (the calling script).
set -euo pipefail

name=$1
shift
packages=("$@")

sudo_prefix=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_prefix=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=120 -o Acquire::Retries=3)

for attempt in 1 2 3; do
    if apt-cache show "${packages[@]}" >/dev/null 2>&1 \
        || "${sudo_prefix[@]}" apt-get "${apt_options[@]}" update -q; then
        if "${sudo_prefix[@]}" apt-get "${apt_options[@]}" install -y -q \
            --no-install-recommends "${packages[@]}"; then
            exit 0
        fi
    fi
    echo "${name}: attempt ${attempt} failed; retrying in 10 s" >&2
    sleep 10
done
echo "${name}: could not install ${packages[*]}" >&2
exit 1
