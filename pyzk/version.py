"""The version pyzk reports. It speaks the ZooKeeper 3.8 protocol, so tools that parse
"Zookeeper version: X.Y.Z" (kazoo's server_version, zkServer.sh status) see 3.8.0."""

PYZK_VERSION = "0.1.0"
PROTOCOL_VERSION = "3.8.0"
FULL_VERSION = f"{PROTOCOL_VERSION}-pyzk-{PYZK_VERSION}, built on 2026-11-22 00:00 UTC"
