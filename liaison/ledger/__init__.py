"""The audit ledger: a hash-chained log of the hub's events, signed Merkle checkpoints, proofs.

Pure file I/O and cryptography: nothing here talks to a broker (no pika, kombu or
httpx), so an auditor can verify a ledger, query it and check proofs with this
package alone. The audit writer that fills it from ``hub.audit`` and the replay
that re-publishes from it live in :mod:`liaison.adapters`.
"""
