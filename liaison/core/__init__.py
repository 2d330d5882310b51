"""The routing core: pure, broker-free decisions about messages.

What comes in (``values``), what the router decides (``decide``, with ``rules``,
``conditions`` and ``tokens``), the outcomes it builds (``outcomes``), the audit
event vocabulary (``events``), the relay protocol (``relay``), the dedupe-key
scheme (``dedupe``), the windows the router keeps (``window``), the retry relay's
decision (``retry``) and the router's state machine (``machine``). Nothing here
opens a connection: the adapters (``liaison.adapters``) move the bytes.
"""
