"""The I/O adapters: every module of the hub's message path that touches the network.

``pika_router`` drives ``liaison.core.machine`` over a pika connection (``coalesce``
batches its socket writes); ``retry_relay`` moves the retry relay's bytes;
``pipelined`` publishes many messages with publisher confirms in flight;
``connections`` builds connection parameters (failover, TLS); ``management`` is the
management HTTP client; ``audit_writer`` is the audit writer's consume/ack loop and
``replay`` the replay publisher. They drive the pure parts (the routing core in
:mod:`liaison.core`, the ledger in :mod:`liaison.ledger`), which import nothing from
here.
"""
