"""Cross-region objects (specs/sharing.md): every copy and proof vector, verified by the Python
implementation written from specs/ alone (tongban_sharing.py), gives the expected code."""

import base64
import json
from pathlib import Path

import cbor2
import pytest

import tongban_sharing as sh
import tongban_spec as ts

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "specs/vectors/vectors.json").read_text(encoding="utf-8"))
BUNDLE = bytes.fromhex(VECTORS["trust_bundle"])
STATUS_FILES = {f["name"]: bytes.fromhex(f["bytes"]) for f in VECTORS["status_files"]}


@pytest.mark.parametrize("case", VECTORS["copies"], ids=lambda c: c["name"])
def test_copy_vector(case):
    now = case["now"]
    presenter = (case["presenter"]["region"], case["presenter"]["agency"])
    try:  # specs/vectors/README.md: the bundle, then the named status files (snapshots or lists)
        store = ts.load_trust_bundle(BUNDLE, now)
        status = ts.StatusData()
        for name in case["status"]:
            status.hold(ts.load_status_file(STATUS_FILES[name], store))
        code = sh.verify_copy(bytes.fromhex(case["copy"]), store, now, presenter, status)
    except ts.Reject as e:  # the bundle or a status file could not be loaded
        code = e.code
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


def _issuance_entries():
    """The cert.issued entries the proof vectors carry in their "ip" tlog-proofs (log.md §4)."""
    for case in VECTORS["proofs"]:
        payload = cbor2.loads(cbor2.loads(bytes.fromhex(case["proof"])).value[2])
        if "ip" in payload:
            extra = payload["ip"].split("\n")[1]
            yield case["name"], base64.b64decode(extra[len("extra "):])


def test_issuance_entries_are_format_2_with_a_status_index():
    entries = list(_issuance_entries())
    assert entries
    for name, raw in entries:  # log.md §1: "v" 2, and "si" below 2^32 (status.md §5.1)
        e = sh.open_entry(raw)
        assert e["v"] == 2 and e["t"] == "cert.issued" and 0 <= e["si"] < 2**32, name


@pytest.mark.parametrize("change", [{"v": 1}, {"si": 2**32}, {"si": "1"}, {"si": None}], ids=str)
def test_issuance_entry_of_another_format_is_refused(change):
    _, raw = next(_issuance_entries())
    env = ts.open_envelope(raw, sh.TYP_LOG_ENTRY, sh.ENTRY_LIMIT)
    payload = {k: v for k, v in {**cbor2.loads(env.payload), **change}.items() if v is not None}
    # open_entry checks the payload only (its signature is checked against the acting key elsewhere)
    forged = ts.sign_raw(bytes(32), env.protected, cbor2.dumps(ts.canonical_map(payload)))
    with pytest.raises(ts.Reject) as e:
        sh.open_entry(forged)
    assert e.value.code == "CLAIMS_INVALID"
