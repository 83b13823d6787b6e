"""Cross-region objects (specs/sharing.md): every copy and proof vector, verified by the Python
implementation written from specs/ alone (tongban_sharing.py), gives the expected code."""

import json
from pathlib import Path

import pytest

import tongban_sharing as sh
import tongban_spec as ts

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "specs/vectors/vectors.json").read_text(encoding="utf-8"))
BUNDLE = bytes.fromhex(VECTORS["trust_bundle"])
SNAPSHOTS = {s["region"]: bytes.fromhex(s["snapshot"]) for s in VECTORS["status_snapshots"]}


@pytest.mark.parametrize("case", VECTORS["copies"], ids=lambda c: c["name"])
def test_copy_vector(case):
    now = case["now"]
    store = ts.load_trust_bundle(BUNDLE, now)
    snapshots = {rc: ts.load_snapshot(SNAPSHOTS[rc], store) for rc in case["status_snapshots"]}
    presenter = (case["presenter"]["region"], case["presenter"]["agency"])
    code = sh.verify_copy(bytes.fromhex(case["copy"]), store, now, presenter, snapshots)
    assert code == case["expect"]["code"]


@pytest.mark.parametrize("case", VECTORS["proofs"], ids=lambda c: c["name"])
def test_proof_vector(case):
    now = case["now"]
    store = ts.load_trust_bundle(BUNDLE, now)
    nonce = bytes.fromhex(case["nonce"]) if case["nonce"] else None
    code, answer = sh.verify_proof(bytes.fromhex(case["proof"]), store, now, case["requester"], nonce)
    assert (code, answer) == (case["expect"]["code"], case["expect"]["answer"])


def test_there_are_copies_and_proofs():
    assert len(VECTORS["copies"]) >= 8 and len(VECTORS["proofs"]) >= 8
