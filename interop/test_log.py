"""The suites' log vectors (specs/vectors/README.md `suites[].log`) checked by the Python
implementation of specs/log.md §2-§3.1, and Python-made checkpoints checked against them."""

import json
from pathlib import Path

import blake3
import pytest

import tongban_log as tl
import tongban_spec as ts

VECTORS = json.loads((Path(__file__).parent.parent / "specs/vectors/vectors.json").read_text())
LOGS = [(s["suite"], s["log"]) for s in VECTORS["suites"]]


@pytest.mark.parametrize("suite,log", LOGS, ids=[s for s, _ in LOGS])
def test_roots_are_rfc6962_over_the_suites_hash(suite, log):
    leaves = [bytes.fromhex(l) for l in log["leaves"]]
    assert len(log["roots"]) == len(leaves) + 1
    for n, want in enumerate(log["roots"]):
        assert tl.root(suite, leaves[:n]).hex() == want, n
    # Not SHA-256: an sm2 tree differs from the ed25519 one from the first leaf.
    assert tl.root("ed25519", leaves[:1]).hex() != log["roots"][1]


@pytest.mark.parametrize("suite,log", LOGS, ids=[s for s, _ in LOGS])
def test_proofs_verify_and_a_flipped_bit_fails(suite, log):
    leaves = [bytes.fromhex(l) for l in log["leaves"]]
    roots = [bytes.fromhex(r) for r in log["roots"]]
    inc, con = log["inclusion"], log["consistency"]
    path = [bytes.fromhex(h) for h in inc["proof"]]
    leaf = tl.leaf_hash(suite, leaves[inc["from"]])
    assert tl.verify_inclusion(suite, leaf, inc["from"], inc["to"], roots[inc["to"]], path)
    bad = [bytes([path[0][0] ^ 1]) + path[0][1:]] + path[1:]
    assert not tl.verify_inclusion(suite, leaf, inc["from"], inc["to"], roots[inc["to"]], bad)
    path = [bytes.fromhex(h) for h in con["proof"]]
    assert tl.verify_consistency(suite, con["from"], con["to"], roots[con["from"]], roots[con["to"]], path)
    assert not tl.verify_consistency(suite, con["from"], con["to"], roots[con["from"] + 1], roots[con["to"]], path)


@pytest.mark.parametrize("suite,log", LOGS, ids=[s for s, _ in LOGS])
def test_checkpoint_notes_open_as_the_vectors_say(suite, log):
    verifier, witness = tl.Verifier(log["log_vkey"]), tl.Verifier(log["witness_vkey"])
    assert (verifier.suite, verifier.role, witness.role) == (suite, "log", "witness")
    for case in log["notes"]:
        assert tl.open_checkpoint(case["note"], verifier, witness) == case["expect"], case["name"]


def test_a_python_signed_sm2_checkpoint_opens_and_its_vkey_matches_the_vectors():
    """Python signs a checkpoint with the vectors' sm2 log key (its seed re-derived from its name,
    vectors/README.md) and cosigns it with the witness key: it opens, and the vkey Python computes
    (SM3 key id) is the one the Rust generator wrote."""
    log = dict(LOGS)["sm2"]
    seeds = {n: blake3.blake3(n.encode(), derive_key_context="tongban v1 test seed").digest()
             for n in ("sm2 log 341200", "sm2 witness 370100")}
    verifier, witness = tl.Verifier(log["log_vkey"]), tl.Verifier(log["witness_vkey"])
    assert ts.sm2_public_key(seeds["sm2 log 341200"]) == verifier.key
    assert ts.sm2_public_key(seeds["sm2 witness 370100"]) == witness.key
    roots = log["roots"]
    import base64
    body = f"{verifier.name}\n8\n{base64.b64encode(bytes.fromhex(roots[8])).decode()}\n"
    ident = b"\xfftongban-sm2/v1"
    note = body + "\n" + tl.signature_line(verifier.name, ident, verifier.key, "sm2",
                                           ts.sm2_sign(seeds["sm2 log 341200"], body.encode()))
    t = 1_796_000_123
    message = f"cosignature/v1\ntime {t}\n".encode() + body.encode()
    cosig = t.to_bytes(8, "big") + ts.sm2_sign(seeds["sm2 witness 370100"], message)
    note += tl.signature_line(witness.name, b"\xfftongban-sm2-cosignature/v1", witness.key, "sm2", cosig)
    assert tl.open_checkpoint(note, verifier, witness) == "ok"
    assert tl.open_checkpoint(note.replace("\n8\n", "\n7\n"), verifier, witness) == "log-signature"
