"""The request pipeline, the same for every role and free of I/O:

decode (requests.py) -> dispatch (zkserver.py: ZooKeeperServer) -> prep (prep.py) -> commit
stage (commit/: standalone, leader, follower, read-only) -> apply (DataTree.apply) -> deliver
(zkserver.py: watch events, then the reply to the request the txn answers, origins.py).
roles.py assembles an ensemble role; the asyncio shell that feeds it is pyzk/server/.
"""
