"""The audit ledger: events from the hub, a hash-chained log, signed Merkle checkpoints."""
