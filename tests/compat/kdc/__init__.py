"""A throw-away MIT Kerberos KDC for kazoo's GSSAPI tests (see realm.py)."""
