"""The zoo.cfg key catalogues: what QuorumPeerConfig parses itself, which system properties
pyzk reads, which it knows and does not implement, and which it refuses for security.
"""

from __future__ import annotations

FOUR_LETTER_WORDS = frozenset({
    "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr",
    "stat", "wchc", "wchp", "wchs", "mntr", "isro", "hash",
})

METRICS_PROVIDER_DEFAULT = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"
METRICS_PROVIDER_PROMETHEUS = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
_METRICS_PROVIDERS = frozenset({
    METRICS_PROVIDER_DEFAULT,
    METRICS_PROVIDER_PROMETHEUS,
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
})


# ---------------------------------------------------------------------------------------------
# Key catalogues

# Keys QuorumPeerConfig.parseProperties handles itself (never become system properties).
_DIRECT_KEYS = frozenset({
    "dataDir", "dataLogDir", "clientPort", "localSessionsEnabled", "localSessionsUpgradingEnabled",
    "clientPortAddress", "secureClientPort", "secureClientPortAddress", "observerMasterPort",
    "clientPortListenBacklog", "tickTime", "maxClientCnxns", "minSessionTimeout",
    "maxSessionTimeout", "initLimit", "syncLimit", "connectToLearnerMasterLimit", "electionAlg",
    "quorumListenOnAllIPs", "peerType", "syncEnabled", "dynamicConfigFile",
    "autopurge.snapRetainCount", "autopurge.purgeInterval", "standaloneEnabled",
    "reconfigEnabled", "sslQuorum", "portUnification", "sslQuorumReloadCertFiles",
    "quorum.auth.enableSasl", "quorum.auth.serverRequireSasl", "quorum.auth.learnerRequireSasl",
    "quorum.auth.learner.saslLoginContext", "quorum.auth.server.saslLoginContext",
    "quorum.auth.kerberos.servicePrincipal", "quorum.cnxn.threads.size",
    "jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms", "jvm.pause.sleep.time.ms",
    "jvm.pause.monitor", "metricsProvider.className", "multiAddress.enabled",
    "multiAddress.reachabilityCheckTimeoutMs", "multiAddress.reachabilityCheckEnabled",
    "oraclePath",
})

# Direct keys whose feature pyzk does not implement: accepted, validated, and reported.
_DIRECT_KEYS_NOT_IMPLEMENTED = frozenset({
    "observerMasterPort", "sslQuorumReloadCertFiles", "quorum.cnxn.threads.size",
    "jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms", "jvm.pause.sleep.time.ms",
    "jvm.pause.monitor", "multiAddress.enabled", "multiAddress.reachabilityCheckTimeoutMs",
    "multiAddress.reachabilityCheckEnabled", "oraclePath",
})

# zoo.cfg keys that become `zookeeper.<key>` properties and that pyzk reads.
_PASSTHROUGH_KEYS_IMPLEMENTED = frozenset({
    "4lw.commands.whitelist", "admin.enableServer", "admin.serverAddress", "admin.serverPort",
    "admin.commandURL", "admin.idleTimeout", "snapCount", "snapSizeLimitInKb", "commitLogCount",
    "snapshotSizeFactor",
    "txnLogSizeLimitInKb", "preAllocSize", "forceSync", "skipACL", "globalOutstandingLimit",
    "maxCnxns", "digest.enabled", "closeSessionTxn.enabled", "extendedTypesEnabled",
    "emulate353TTLNodes", "enforceQuota", "DigestAuthenticationProvider.superDigest",
    "snapshot.compression.method", "snapshot.trust.empty", "db.autocreate",
    "datadir.autocreate", "serverCnxnFactory", "enforce.auth.enabled", "enforce.auth.schemes",
    "sessionRequireClientSASLAuth", "allowSaslFailedClients", "X509AuthenticationProvider.superUser",
})
_PASSTHROUGH_PREFIXES_IMPLEMENTED = ("authProvider.", "ssl.")

# The ssl.quorum.* keys QuorumX509Util reads (X509Util's properties under its prefix), read by
# pyzk/config/quorum_tls.py with sslQuorum or portUnification; crl, ocsp,
# context.supplier.class and authProvider are known but refused when set.
QUORUM_SSL_KEYS = frozenset("ssl.quorum." + name for name in (
    "protocol", "enabledProtocols", "ciphersuites", "keyStore.location", "keyStore.password",
    "keyStore.passwordPath", "keyStore.type", "trustStore.location", "trustStore.password",
    "trustStore.passwordPath", "trustStore.type", "context.supplier.class",
    "hostnameVerification", "crl", "ocsp", "clientAuth", "handshakeDetectionTimeoutMillis",
    "authProvider",
))

# Other zoo.cfg keys Apache ZooKeeper 3.8 documents: known (so they are no typo), not implemented.
_PASSTHROUGH_KEYS_KNOWN = frozenset({
    "admin.portUnification", "admin.forceHttps",
    "leaderServes", "cnxTimeout", "fastleader.minNotificationInterval",
    "fastleader.maxNotificationInterval", "requestThrottleLimit", "requestThrottleStallTime",
    "requestThrottleDropStale", "largeRequestMaxBytes", "largeRequestThreshold",
    "learner.asyncSending", "learner.closeSocketAsync", "leader.closeSocketAsync",
    "flushDelay", "maxWriteQueuePollTime", "maxBatchSize", "requestStaleLatencyCheck",
    "requestStaleConnectionCheck", "connection_throttle_tokens", "connection_throttle_fill_time",
    "connection_throttle_fill_count", "connection_throttle_freeze_time",
    "connection_throttle_drop_increase", "connection_throttle_drop_decrease",
    "connection_throttle_decrease_ratio", "connection_throttle_weight_enabled",
    "audit.enable", "watchManagerName", "watcherCleanThreshold", "watcherCleanIntervalInSeconds",
    "watcherCleanThreadsNum", "maxInProcessingDeadWatchers", "fips-mode", "nio.numSelectorThreads",
    "nio.numWorkerThreads", "nio.shutdownTimeout", "nio.sessionlessCnxnTimeout",
    "netty.server.outboundBuffer.maxSize", "netty.server.earlyDropSecure",
    "netty.advancedFlowControl.enabled", "kerberos.removeHostFromPrincipal",
    "kerberos.removeRealmFromPrincipal", "kerberos.canonicalizeHostNames",
    "superUser", "clientPortUnification",
    "quorumCnxnTimeoutMs", "electionPortBindRetry", "tcpKeepAlive", "clientTcpKeepAlive",
    "jute.maxbuffer", "maxResponseCacheSize",
    "maxGetChildrenResponseCacheSize", "syncLimit", "ttlNodeMaxTtl", "follower.nodelay",
    "serializeLastProcessedZxid.enabled", "snapshot.trust.empty",
})

# Security settings pyzk does not implement. Set to anything but their off value they would
# change who may connect or do what (quorum TLS certificate reloading), so instead of running
# without them pyzk refuses to start, naming the key and its line. Their off value is accepted.
# Quorum TLS itself (sslQuorum, portUnification, ssl.quorum.*) is implemented:
# pyzk/config/quorum_tls.py judges its settings, refusing the ones pyzk cannot honour. So is
# quorum SASL, DIGEST-MD5 and Kerberos (quorum.auth.*; pyzk/server/quorum_sasl.py judges the JAAS logins).
_SECURITY_DIRECT_KEYS_REFUSED = {
    "sslQuorumReloadCertFiles": "reloading the quorum TLS key and trust stores when their files change",
}
X509_PROVIDER_CLASS = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
SSL_AUTH_PROVIDER_PROPERTY = "zookeeper.ssl.authProvider"
SSL_QUORUM_AUTH_PROVIDER_PROPERTY = "zookeeper.ssl.quorum.authProvider"

_TYPO_CANDIDATES = sorted(
    _DIRECT_KEYS | _PASSTHROUGH_KEYS_IMPLEMENTED | _PASSTHROUGH_KEYS_KNOWN
)


def _is_quorum_key(key: str) -> bool:
    # QuorumPeerConfig and QuorumMaj/QuorumHierarchical test these exact prefixes.
    return key.startswith(("server.", "group", "weight"))
