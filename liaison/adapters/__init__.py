"""The I/O adapters: every module of the hub that touches the network lives here.

The pika router shell and its send coalescing, connection parameters (failover,
TLS), the management HTTP client, the audit writer's consume/ack loop and the
replay publisher. They drive the pure parts (the routing core in
:mod:`liaison.core`, the ledger in :mod:`liaison.ledger`), which import nothing
from here.
"""
