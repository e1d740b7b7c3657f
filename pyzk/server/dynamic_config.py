"""The config files a reconfigEnabled ensemble member rewrites (QuorumPeerConfig, QuorumPeer).

Rule 1: only with reconfigEnabled=true; then, as Apache ZooKeeper 3.8 does:
        at start-up a static zoo.cfg (no dynamicConfigFile) is copied to zoo.cfg.bak;
        whenever a newer config is activated, `<zoo.cfg>.dynamic.<hex version>` is written
        (sorted server lines) and zoo.cfg is rewritten without its quorum keys, ending in
        `dynamicConfigFile=<absolute path>`.
Rule 2: every file is written atomically (temporary file, fsync, rename), as Java's
        AtomicFileWritingIdiom does; a failure is logged, never fatal (Java logs it too).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pyzk.config import ServerConfig
from pyzk.quorum.reconfig import dynamic_file_text, static_file_text
from pyzk.quorum.verifier import QuorumMaj

logger = logging.getLogger(__name__)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def backup_static_config(config: ServerConfig) -> None:
    """QuorumPeerConfig.backupOldConfig: zoo.cfg -> zoo.cfg.bak, for a static-only config."""
    path = config.config_path
    if path is None or not config.reconfig_enabled or config.standalone or config.dynamic_config_path:
        return
    try:
        _write_atomically(path.with_name(path.name + ".bak"), path.read_bytes())
    except OSError as error:
        logger.error("Error backing up %s: %s", path, error)


def write_activated_config(config: ServerConfig, verifier: QuorumMaj) -> None:
    """QuorumPeer.setQuorumVerifier(qv, writeToDisk=true): the dynamic file, then zoo.cfg."""
    path = config.config_path
    if path is None:
        logger.info("writeToDisk == true but there is no config file")
        return
    dynamic_path = path.with_name(f"{path.name}.dynamic.{verifier.version:x}").resolve()
    me = config.my_id
    my_line = ({**verifier.voters, **verifier.observers}.get(me, "") if me is not None else "")
    try:
        _write_atomically(dynamic_path, dynamic_file_text(verifier).encode())
        static_text = static_file_text(path.read_text(encoding="utf-8"), str(dynamic_path),
                                       erase_client_address=";" in my_line)
        _write_atomically(path, static_text.encode())
    except OSError as error:
        logger.error("Error writing the dynamic config %s: %s", dynamic_path, error)
        return
    logger.info("Wrote dynamic config version %x to %s", verifier.version, dynamic_path)
