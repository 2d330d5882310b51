"""The procedures service: the part of the hub that remembers and chases.

Layers, each importing only those before it:

- ``calendar``  durations ("2 working days", "15 minutes") and Luxembourg's working days;
- ``config``    acknowledgement rules (data), checked against the directory at start-up;
- ``core``      the procedures as pure folds: (state, one envelope, now) → changes, messages;
- ``store``     the database (SQLAlchemy Core; SQLite or PostgreSQL) and its migrations;
- ``service``   the shell: inbox → one transaction → outbox → publish with confirms → ack;
- ``rebuild``   the same folds over the audit ledger, compared with the live database.
"""
