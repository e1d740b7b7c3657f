#!/usr/bin/env bash
# Install the oracle, Apache ZooKeeper 3.8 from Debian (zookeeper + zookeeper-bin), when its
# jar or the C client is absent (apt_install.sh: bounded, non-interactive).
set -euo pipefail

if [ -e /usr/share/java/zookeeper.jar ] && [ -x /usr/lib/zookeeper/bin/cli_mt ]; then
    exit 0
fi
bash "$(dirname "$0")/apt_install.sh" install_oracle zookeeper zookeeper-bin
test -e /usr/share/java/zookeeper.jar
