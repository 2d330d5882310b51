"""RFC 6962 / RFC 9162 Merkle trees: the shared test vectors, and properties of our proofs."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liaison.ledger import merkle
from schemas.errors import LiaisonError

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT.parent / "shared" / "vectors" / "rfc6962"


def _vector_files(kind: str) -> list[str]:
    # Collected at import time (parametrisation needs names); the fixture still
    # decides whether the folder is there, and fails (or skips) accordingly. Without
    # the folder, one placeholder keeps the test collected: an empty parameter set
    # would skip it silently.
    found = sorted(str(p.relative_to(VECTORS)) for p in (VECTORS / kind).rglob("*.json"))
    return found or [f"{kind}: no vectors found"]


def _load(shared_dir: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir / "vectors" / "rfc6962" / name).read_text())
    return data


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


#: The RFC 6962 reference leaves and the roots of their first 1..8 (from certificate-transparency).
REFERENCE_LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
]
REFERENCE_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


class TestVectors:
    @pytest.mark.parametrize("name", _vector_files("inclusion"))
    def test_inclusion(self, shared_dir: Path, name: str) -> None:
        """Every inclusion vector: honest proofs verify, tampered ones are refused."""
        case = _load(shared_dir, name)
        args = (
            case["leafIdx"],
            case["treeSize"],
            _b64(case["leafHash"]),
            [_b64(p) for p in case["proof"] or []],
            _b64(case["root"]),
        )
        if case["wantErr"]:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion(*args)
        else:
            merkle.verify_inclusion(*args)

    @pytest.mark.parametrize("name", _vector_files("consistency"))
    def test_consistency(self, shared_dir: Path, name: str) -> None:
        """Every consistency vector: honest proofs verify, tampered ones are refused."""
        case = _load(shared_dir, name)
        args = (
            case["size1"],
            case["size2"],
            _b64(case["root1"]),
            _b64(case["root2"]),
            [_b64(p) for p in case["proof"] or []],
        )
        if case["wantErr"]:
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(*args)
        else:
            merkle.verify_consistency(*args)

    def test_vectors_are_all_collected(self, shared_dir: Path) -> None:
        """The parametrisation found the vectors (a moved folder must not pass silently)."""
        assert len(_vector_files("inclusion")) + len(_vector_files("consistency")) >= 190


class TestTree:
    def test_reference_roots(self) -> None:
        """The roots of the RFC 6962 reference leaves match certificate-transparency's."""
        leaves = [merkle.leaf_hash(d) for d in REFERENCE_LEAVES]
        for n, expected in enumerate(REFERENCE_ROOTS, start=1):
            assert merkle.root(leaves[:n]).hex() == expected

    def test_empty_tree(self) -> None:
        """The empty tree's root is SHA-256 of nothing."""
        assert merkle.root([]) == hashlib.sha256(b"").digest() == merkle.Accumulator().root()

    def test_proof_error_is_a_liaison_error(self) -> None:
        """Callers can catch every project error at the root."""
        assert issubclass(merkle.ProofError, LiaisonError)

    def test_out_of_range_index_refused(self) -> None:
        """A proof for a leaf beyond the tree cannot be asked for."""
        with pytest.raises(merkle.ProofError):
            merkle.inclusion_proof(3, [merkle.leaf_hash(b"x")] * 3)


def _leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _recursive_root(hashes: list[bytes]) -> bytes:
    """RFC 9162's definition, verbatim: the reference the accumulator must agree with."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return merkle.node_hash(_recursive_root(hashes[:k]), _recursive_root(hashes[k:]))


class TestProperties:
    @given(st.integers(min_value=0, max_value=300))
    @settings(max_examples=60, deadline=None)
    def test_incremental_root_is_batch_root(self, n: int) -> None:
        """Appending one leaf at a time gives the recursive definition's root at every size."""
        leaves = _leaves(n)
        acc = merkle.Accumulator()
        for i, leaf in enumerate(leaves):
            acc.append(leaf)
            if i % 17 == 0 or i == n - 1:
                assert acc.root() == _recursive_root(leaves[: i + 1])
        assert merkle.root(leaves) == _recursive_root(leaves)

    @given(st.integers(min_value=1, max_value=200), st.data())
    @settings(max_examples=60, deadline=None)
    def test_every_inclusion_proof_verifies(self, n: int, data: st.DataObject) -> None:
        """A generated inclusion proof verifies, and fails for another leaf or index."""
        leaves = _leaves(n)
        root = merkle.root(leaves)
        index = data.draw(st.integers(min_value=0, max_value=n - 1))
        proof = merkle.inclusion_proof(index, leaves)
        merkle.verify_inclusion(index, n, leaves[index], proof, root)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(index, n, merkle.leaf_hash(b"forged"), proof, root)
        if n > 1:
            with pytest.raises(merkle.ProofError):
                merkle.verify_inclusion((index + 1) % n, n, leaves[index], proof, root)

    def test_all_inclusion_proofs_small_trees(self) -> None:
        """Exhaustively, for trees up to 40 leaves, every leaf's proof verifies."""
        for n in range(1, 41):
            leaves = _leaves(n)
            root = merkle.root(leaves)
            for i in range(n):
                merkle.verify_inclusion(i, n, leaves[i], merkle.inclusion_proof(i, leaves), root)

    @given(st.integers(min_value=1, max_value=200), st.data())
    @settings(max_examples=60, deadline=None)
    def test_every_consistency_proof_verifies(self, n: int, data: st.DataObject) -> None:
        """A generated consistency proof verifies, and fails against another first root."""
        leaves = _leaves(n)
        size1 = data.draw(st.integers(min_value=1, max_value=n))
        proof = merkle.consistency_proof(size1, n, leaves)
        root1, root2 = merkle.root(leaves[:size1]), merkle.root(leaves)
        merkle.verify_consistency(size1, n, root1, root2, proof)
        if size1 < n:
            with pytest.raises(merkle.ProofError):
                merkle.verify_consistency(size1, n, merkle.leaf_hash(b"x"), root2, proof)

    def test_all_consistency_proofs_small_trees(self) -> None:
        """Exhaustively, for trees up to 33 leaves, every prefix's consistency proof verifies."""
        for n in range(1, 34):
            leaves = _leaves(n)
            for m in range(1, n + 1):
                proof = merkle.consistency_proof(m, n, leaves)
                merkle.verify_consistency(m, n, merkle.root(leaves[:m]), merkle.root(leaves), proof)
