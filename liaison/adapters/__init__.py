"""What touches the network: the pika shells that drive the routing core.

``pika_router`` drives ``liaison.core.machine`` over a pika connection (with
``coalesce`` batching its socket writes), ``retry_relay`` moves the retry relay's
bytes, and ``pipelined`` publishes many messages with publisher confirms in flight.
"""
