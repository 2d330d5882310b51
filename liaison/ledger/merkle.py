"""RFC 6962 / RFC 9162 Merkle trees: roots, inclusion and consistency proofs.

Hashing (RFC 9162 section 2.1.1), SHA-256 throughout::

    leaf hash  = SHA-256(0x00 || leaf data)
    node hash  = SHA-256(0x01 || left || right)
    empty tree = SHA-256("")

A tree of ``n > 1`` leaves splits at ``k``, the largest power of two below ``n``:
the left subtree holds leaves ``[0, k)``, the right one ``[k, n)``.

:class:`Accumulator` keeps only the "right edge" of the tree (one perfect subtree
per set bit of the size), so the audit writer appends a leaf in amortised O(1)
hashes and gets the root in O(log n). The proof verifiers follow the algorithms
of RFC 9162 section 2.1.3.2 and 2.1.4.2, and refuse malformed input (wrong hash
length, proof of the wrong length, indices out of range) with :class:`ProofError`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from schemas.errors import LiaisonError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256


class ProofError(LiaisonError):
    """A Merkle proof that does not verify, or input that cannot be a proof."""


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


class Accumulator:
    """An append-only Merkle tree that remembers only its right edge.

    ``edge[i]`` is the root of a perfect subtree; their sizes are the set bits of
    ``size``, largest (leftmost) first.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self) -> None:
        self._edge: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        """How many leaves have been appended."""
        return self._size

    @property
    def edge(self) -> tuple[bytes, ...]:
        """The roots of the perfect subtrees on the right edge, leftmost first."""
        return tuple(self._edge)

    def append(self, leaf: bytes) -> None:
        """Add the leaf hash ``leaf`` (already hashed with :func:`leaf_hash`)."""
        edge = self._edge
        node = leaf
        # Each trailing one bit of the old size is a perfect subtree that the new
        # leaf completes: merge it in.
        size = self._size
        while size & 1:
            node = _sha256(b"\x01" + edge.pop() + node).digest()
            size >>= 1
        edge.append(node)
        self._size += 1

    @classmethod
    def restore(cls, size: int, edge: Sequence[bytes]) -> Accumulator:
        """The accumulator of a tree of ``size`` leaves from its saved right edge."""
        if size < 0 or len(edge) != size.bit_count() or any(len(h) != HASH_SIZE for h in edge):
            raise ValueError(f"an edge of {len(edge)} hashes cannot be a tree of {size} leaves")
        acc = cls()
        acc._edge, acc._size = list(edge), size
        return acc

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        """The root hash of the tree so far (the empty-tree hash when empty)."""
        if not self._edge:
            return EMPTY_ROOT
        node = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            node = _sha256(b"\x01" + left + node).digest()
        return node


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``leaf_hashes`` (RFC 9162 MTH)."""
    acc = Accumulator()
    acc.extend(leaf_hashes)
    return acc.root()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_root(leaf_hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    acc = Accumulator()
    for i in range(lo, hi):
        acc.append(leaf_hashes[i])
    return acc.root()


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges ``[lo, hi)`` whose roots form the inclusion proof of ``index``.

    Listed in proof order (nearest the leaf first), so a prover that streams the
    log can compute each range's root without holding every leaf hash.
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()
    return ranges


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of all ``leaf_hashes``."""
    return [
        _range_root(leaf_hashes, lo, hi) for lo, hi in inclusion_ranges(index, len(leaf_hashes))
    ]


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose roots form the consistency proof from ``size1`` to ``size2``."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    ranges: list[tuple[int, int]] = []
    # RFC 6962 SUBPROOF(m, D[lo:hi], b), iteratively; b says whether the subtree
    # [lo, lo + m) is one whose root the verifier already knows.
    m, lo, hi, known = size1, 0, size2, True
    while True:
        n = hi - lo
        if m == n:
            if not known:
                ranges.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo += k
            known = False
    ranges.reverse()
    return ranges


def consistency_proof(size1: int, size2: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The proof that the tree of ``size1`` leaves is a prefix of the one of ``size2``."""
    if size2 > len(leaf_hashes):
        raise ProofError(f"size {size2} exceeds the {len(leaf_hashes)} leaves given")
    if size1 == size2:
        return []
    return [_range_root(leaf_hashes, lo, hi) for lo, hi in consistency_ranges(size1, size2)]


def _check_hashes(what: str, hashes: Sequence[bytes]) -> None:
    for i, h in enumerate(hashes):
        if len(h) != HASH_SIZE:
            raise ProofError(f"{what}[{i}] is {len(h)} bytes, not {HASH_SIZE}")


def _decompose(index: int, size: int) -> tuple[int, int]:
    """How many proof hashes lie inside the perfect part of the path, and on the border."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def root_from_inclusion_proof(
    leaf_index: int, tree_size: int, leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that ``proof`` implies for ``leaf`` at ``leaf_index`` in ``tree_size``."""
    if not 0 <= leaf_index < tree_size:
        raise ProofError(f"leaf index {leaf_index} is outside a tree of size {tree_size}")
    if len(leaf) != HASH_SIZE:
        raise ProofError(f"leaf hash is {len(leaf)} bytes, not {HASH_SIZE}")
    _check_hashes("proof", proof)
    inner, border = _decompose(leaf_index, tree_size)
    if len(proof) != inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, expected {inner + border}")
    node = _chain_inner(leaf, proof[:inner], leaf_index)
    return _chain_border_right(node, proof[inner:])


def verify_inclusion(
    leaf_index: int, tree_size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``leaf_index`` of the tree with ``root``."""
    computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)
    if computed != root:
        raise ProofError(
            f"inclusion proof gives root {computed.hex()}, expected {root.hex() or '(empty)'}"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size1`` leaves with ``root1`` is a prefix of ``root2``'s."""
    if size1 < 0 or size2 < size1:
        raise ProofError(f"size2 ({size2}) is smaller than size1 ({size1})")
    if size1 == 0:
        # Every tree extends the empty one: such a proof says nothing, so refuse it.
        raise ProofError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if root1 != root2:
            raise ProofError("sizes are equal but the roots differ")
        return
    if not proof:
        raise ProofError("empty consistency proof between different sizes")
    _check_hashes("proof", proof)
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    # The proof starts with the root of the subtree of size 2**shift, unless
    # size1 is that very power of two (then root1 is that root).
    seed, start = proof[0], 1
    if size1 == 1 << shift:
        seed, start = root1, 0
    if len(proof) != start + inner + border:
        raise ProofError(f"proof has {len(proof)} hashes, expected {start + inner + border}")
    rest = proof[start:]
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    if hash1 != root1:
        raise ProofError("consistency proof does not match the first root")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    if hash2 != root2:
        raise ProofError("consistency proof does not match the second root")
