#!/usr/bin/env bash
# Install the oracle, Apache ZooKeeper 3.8 from Debian (zookeeper + zookeeper-bin), when its
# jar is absent.  Bounded: a few attempts, each waiting a bounded time for the dpkg lock.
set -euo pipefail

if [ -e /usr/share/java/zookeeper.jar ] && [ -x /usr/lib/zookeeper/bin/cli_mt ]; then
    exit 0
fi

sudo_prefix=()
if [ "$(id -u)" -ne 0 ]; then
    sudo_prefix=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
apt_options=(-o DPkg::Lock::Timeout=120 -o Acquire::Retries=3)

for attempt in 1 2 3; do
    if "${sudo_prefix[@]}" apt-get "${apt_options[@]}" update -q \
        && "${sudo_prefix[@]}" apt-get "${apt_options[@]}" install -y -q --no-install-recommends \
            zookeeper zookeeper-bin; then
        test -e /usr/share/java/zookeeper.jar
        exit 0
    fi
    echo "install_oracle: attempt ${attempt} failed; retrying in 10 s" >&2
    sleep 10
done
echo "install_oracle: could not install zookeeper zookeeper-bin" >&2
exit 1
