"""The log's tree and signed notes (specs/log.md §2, §3.1), written from the spec alone: RFC 6962
trees over the suite's hash, RFC 9162's proof checks, and C2SP signed notes with Tongban's SM2
signature types."""

from __future__ import annotations

import base64
import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import tongban_spec as ts

# log.md §3.1: type identifier -> (suite, role)
TYPES = {
    b"\x01": ("ed25519", "log"),
    b"\x04": ("ed25519", "witness"),
    b"\xfftongban-sm2/v1": ("sm2", "log"),
    b"\xfftongban-sm2-cosignature/v1": ("sm2", "witness"),
}


def tree_hash(suite: str):
    """log.md §2: SHA-256 in ed25519, SM3 in sm2."""
    return ts.sm3 if suite == "sm2" else (lambda b: hashlib.sha256(b).digest())


def leaf_hash(suite: str, entry: bytes) -> bytes:
    return tree_hash(suite)(b"\x00" + entry)


def node_hash(suite: str, left: bytes, right: bytes) -> bytes:
    return tree_hash(suite)(b"\x01" + left + right)


def root(suite: str, leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, split at the largest power of two smaller than n."""
    n = len(leaves)
    if n == 0:
        return tree_hash(suite)(b"")
    if n == 1:
        return leaf_hash(suite, leaves[0])
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(suite, root(suite, leaves[:k]), root(suite, leaves[k:]))


def verify_inclusion(suite: str, leaf: bytes, index: int, size: int, root_: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(suite, p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(suite, r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_


def verify_consistency(suite: str, old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2."""
    if old == new:
        return not proof and old_root == new_root
    if not 0 < old < new or not proof:
        return False
    if old & (old - 1) == 0:  # a power of two: the old root starts the path
        proof = [old_root] + proof
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(suite, c, fr)
            sr = node_hash(suite, c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(suite, sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


class Verifier:
    """A signed-note verifier key `<name>+<hex id>+<base64(type identifier || key)>` (log.md §3.1)."""

    def __init__(self, vkey: str):
        name, key_id, material = vkey.split("+", 2)
        material = base64.b64decode(material, validate=True)
        for ident, (suite, role) in TYPES.items():
            if material.startswith(ident):
                self.key = material[len(ident):]
                self.suite, self.role, self.ident = suite, role, ident
                break
        else:
            raise ValueError("unknown signature type")
        if ts.key_suite(self.key) != self.suite:
            raise ValueError("key of another suite than its type")
        self.name = name
        self.id = key_id_of(name, self.ident, self.key, self.suite)
        if f"{self.id:08x}" != key_id:
            raise ValueError("key id does not match")

    def verify(self, message: bytes, sig: bytes) -> bool:
        if self.suite == "sm2":
            return ts.sm2_verify(self.key, message, sig)
        try:
            Ed25519PublicKey.from_public_bytes(self.key).verify(sig, message)
            return True
        except InvalidSignature:
            return False


def key_id_of(name: str, ident: bytes, key: bytes, suite: str) -> int:
    """H(name || 0x0A || type identifier || key)[:4], H SHA-256 or SM3 (log.md §3.1)."""
    return int.from_bytes(tree_hash(suite)(name.encode() + b"\n" + ident + key)[:4], "big")


def signature_line(name: str, ident: bytes, key: bytes, suite: str, body: bytes) -> str:
    key_id = key_id_of(name, ident, key, suite).to_bytes(4, "big")
    return f"— {name} {base64.b64encode(key_id + body).decode()}\n"


def open_checkpoint(note: str, log: Verifier, witness: Verifier) -> str:
    """What a verifier finds in a checkpoint note: `ok` (the log's signature and the witness's
    cosignature verify), `log-signature`, `cosignature`, `unsigned` or `not cosigned`."""
    text, _, lines = note.rpartition("\n\n")
    text += "\n"
    found = set()
    for line in lines.rstrip("\n").split("\n"):
        name, blob = line.removeprefix("— ").split(" ", 1)
        blob = base64.b64decode(blob)
        key_id, body = int.from_bytes(blob[:4], "big"), blob[4:]
        if name == log.name and key_id == log.id:
            if not log.verify(text.encode(), body):
                return "log-signature"
            found.add("log")
        elif name == witness.name and key_id == witness.id:
            t = int.from_bytes(body[:8], "big")
            message = f"cosignature/v1\ntime {t}\n".encode() + text.encode()
            if len(body) != 72 or not witness.verify(message, body[8:]):
                return "cosignature"
            found.add("witness")
    if "log" not in found:
        return "unsigned"
    return "ok" if "witness" in found else "not cosigned"
