"""The operator tools of bin/ as importable modules, so an installed wheel has them as console
scripts (zkCleanup, zkTxnLogToolkit, zkSnapShotToolkit) and bin/*.py stay thin wrappers."""
