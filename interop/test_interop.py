"""Tongban interoperability: an implementation written only from specs/ (tongban_spec.py) against
what Tongban issues (specs/vectors/vectors.json) and what Tongban accepts (the tongban-verify CLI)."""

import json
import os
import secrets
import subprocess
from pathlib import Path

import blake3
import cbor2
import pytest
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.messages import Sign1Message

import tongban_spec as ts

ROOT = Path(__file__).resolve().parent.parent
VECTORS = json.loads((ROOT / "specs/vectors/vectors.json").read_text(encoding="utf-8"))
BUNDLE = bytes.fromhex(VECTORS["trust_bundle"])
SNAPSHOTS = {s["region"]: bytes.fromhex(s["snapshot"]) for s in VECTORS["status_snapshots"]}
CASES = {c["name"]: c for c in VECTORS["certificates"]}
KEYS = {k["name"]: k for k in VECTORS["keys"]}
FULL = CASES["valid-full-disclosure"]
NOW = FULL["now"]


@pytest.fixture(scope="module")
def store() -> ts.TrustStore:
    return ts.load_trust_bundle(BUNDLE, NOW)


def snapshots_for(case, store):
    return {rc: ts.load_snapshot(SNAPSHOTS[rc], store) for rc in case["status_snapshots"]}


def as_json(disclosed):
    """Disclosed fields as the vectors write them; JSON keeps false and 0 apart."""
    return json.dumps([{"name": n, "value": v} for n, v in disclosed], ensure_ascii=False)


# ------------------------------------------------------------------ 1. Python verifies what Tongban issued

def test_check_characters_match_the_spec_samples():
    # certificate.md §1 sample, and the USCCs inside it (GB 32100)
    assert ts.split_identifier("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.U")
    assert ts.mod37_36_check_char("11100000000013338W011" "11430000006122244L" "20230000403" "001") == "U"
    assert ts.is_uscc("11430000006122244L") and ts.is_uscc("11100000000013338W")
    assert not ts.is_uscc("11430000006122244M")
    assert not ts.split_identifier("1.2.156.3005.2.11100000000013338W011.11430000006122244L.20230000403.001.V")


def test_vector_keys_match_their_seeds_and_kids():
    for k in VECTORS["keys"]:
        seed = bytes.fromhex(k["seed"])
        # specs/vectors/README.md: seed = BLAKE3-derive_key("tongban v1 test seed", key name)
        assert blake3.blake3(k["name"].encode(), derive_key_context="tongban v1 test seed").digest() == seed
        assert ts.public_key(seed).hex() == k["public"], k["name"]
        assert ts.kid(bytes.fromhex(k["public"])).hex() == k["kid"], k["name"]


def test_trust_bundle_signatures_verify_with_pycose(store):
    bundle = Sign1Message.decode(BUNDLE)
    assert bundle.phdr[Algorithm] is EdDSA and bundle.phdr[16] == ts.TYP_TRUST
    content = cbor2.loads(bundle.payload)
    fed_pk = content["fed"]["pk"]

    roots = {}  # region certificates are signed by the federation root
    for raw in content["regions"]:
        msg = Sign1Message.decode(raw)
        assert msg.phdr[16] == ts.TYP_REGION and msg.phdr[KID] == ts.kid(fed_pk)
        msg.key = ts.okp_public(fed_pk)
        assert msg.verify_signature()
        root = cbor2.loads(msg.payload)
        roots[ts.kid(root["pk"])] = root

    # the bundle itself is signed by a region root listed inside it
    assert bundle.phdr[KID] in roots
    bundle.key = ts.okp_public(roots[bundle.phdr[KID]]["pk"])
    assert bundle.verify_signature()

    seals = {}  # seals are signed by the root of their region
    for raw in content["seals"]:
        msg = Sign1Message.decode(raw)
        root = roots[msg.phdr[KID]]
        msg.key = ts.okp_public(root["pk"])
        assert msg.phdr[16] == ts.TYP_SEAL and msg.verify_signature()
        msg.key = ts.okp_public(fed_pk)
        assert not msg.verify_signature()  # and not by any other key
        seal = cbor2.loads(msg.payload)
        assert seal["rc"] == root["rc"]
        seals[ts.kid(seal["pk"])] = seal

    # kid -> seal table: exactly the e-seal keys the vectors list
    expected = {bytes.fromhex(k["kid"]): k["name"].split()[-1] for k in VECTORS["keys"] if k["role"] == "e-seal"}
    assert {kid: s["sid"] for kid, s in seals.items()} == expected
    # the full loader (trust.md §5.1: strict CBOR, payload rules, uniqueness, revocations) agrees
    assert store.seals == seals and store.signer_kid == bundle.phdr[KID]


def test_python_verifies_valid_full_disclosure(store):
    raw = bytes.fromhex(FULL["certificate"])
    ts.check_cbor(raw, ts.OBJECT_LIMIT, tag_ok=True)  # encoding.md §1 on the exact bytes
    top = cbor2.loads(raw)
    protected, unprotected, payload, _signature = top.value
    assert top.tag == 18

    header = ts.decode(protected, ts.OBJECT_LIMIT)
    assert list(header) == [1, 4, 16]
    assert header[1] == -8 and len(header[4]) == 16 and header[16] == "application/tongban-ecert+cwt"
    seal = store.seals[header[4]]

    msg = Sign1Message.decode(raw)
    assert msg._create_sig_structure() == ts.sig_structure(protected, payload)  # exact received bytes
    msg.key = ts.okp_public(seal["pk"])
    assert msg.verify_signature()

    claims = ts.decode(payload, ts.OBJECT_LIMIT)
    parts = ts.split_identifier(claims["id"])
    assert parts is not None
    body = parts["type"] + parts["issuer"] + parts["serial"] + parts["version"]
    assert parts["check"] == ts.mod37_36_check_char(body)
    assert claims[1][17] == ts.uscc_check_char(claims[1][:17]) and ts.is_uscc(claims[1])
    assert claims[1] == seal["au"] and claims["an"] == seal["an"] and claims["rc"] == seal["rc"]

    disclosed = []
    for d in unprotected[ts.LABEL_DISCLOSURES]:
        assert ts.disclosure_digest(d) in claims["sd"]
        salt, name, value = ts.decode(d, ts.OBJECT_LIMIT)
        assert len(salt) == 16
        disclosed.append((name, value))
    assert as_json(disclosed) == json.dumps(FULL["expect"]["disclosed"], ensure_ascii=False)

    assert seal["vf"] <= claims[6] < seal["vu"] and header[4] not in store.revoked  # seal usable at iat
    assert claims[6] <= NOW + ts.SKEW and claims[5] <= NOW and (4 not in claims or NOW < claims[4])

    res = ts.verify_certificate(raw, store, NOW, snapshots_for(FULL, store))  # verification.md §2 as a whole
    assert (res.verdict, res.code) == ("valid", "OK") == (FULL["expect"]["verdict"], FULL["expect"]["code"])


# ---------------------------------------------------- 2. Python rejects invalid vectors for the right reason

@pytest.mark.parametrize("name, code", [
    ("tampered-payload", "SIGNATURE_INVALID"),
    ("tampered-disclosure-salt", "DISCLOSURE_MISMATCH"),
    ("bad-identifier-check", "IDENTIFIER_INVALID"),
    ("unknown-kid", "KID_UNKNOWN"),
])
def test_python_rejects_invalid_vector(name, code, store):
    case = CASES[name]
    assert case["expect"]["code"] == code
    res = ts.verify_certificate(bytes.fromhex(case["certificate"]), store, case["now"], snapshots_for(case, store))
    assert (res.verdict, res.code) == ("invalid", code)


def _decoded(name):
    raw = bytes.fromhex(CASES[name]["certificate"])
    return Sign1Message.decode(raw), cbor2.loads(raw).value


def test_tampered_payload_fails_only_the_signature(store):
    msg, (_, _, payload, signature) = _decoded("tampered-payload")
    msg.key = ts.okp_public(store.seals[msg.phdr[KID]]["pk"])  # known kid, valid header
    assert ts.check_claims(payload)["lvl"] == "B"  # a well-formed payload...
    assert not msg.verify_signature()  # ...that the seal did not sign
    _, (_, _, original, _) = _decoded("valid-full-disclosure")
    msg.payload = original  # the same signature over the payload as issued (lvl A) verifies
    assert msg.verify_signature() and ts.check_claims(original)["lvl"] == "A"


def test_tampered_salt_is_the_one_uncommitted_disclosure(store):
    msg, (_, unprotected, payload, _) = _decoded("tampered-disclosure-salt")
    msg.key = ts.okp_public(store.seals[msg.phdr[KID]]["pk"])
    assert msg.verify_signature()
    sd = cbor2.loads(payload)["sd"]
    missing = [d for d in unprotected[ts.LABEL_DISCLOSURES] if ts.disclosure_digest(d) not in sd]
    assert len(missing) == 1 and len(unprotected[ts.LABEL_DISCLOSURES]) > 1


def test_bad_identifier_check_is_only_the_check_character(store):
    msg, (_, _, payload, _) = _decoded("bad-identifier-check")
    msg.key = ts.okp_public(store.seals[msg.phdr[KID]]["pk"])
    assert msg.verify_signature()
    ident = cbor2.loads(payload)["id"]
    typ, issuer, serial, version, check = ident[len(ts.IDENTIFIER_PREFIX):].split(".")
    assert ts.split_identifier(ident) is None
    assert check != ts.mod37_36_check_char(typ + issuer + serial + version)
    assert ts.split_identifier(ts.make_identifier(typ, issuer, serial, version))  # the right character: valid


def test_unknown_kid_names_no_key(store):
    msg, _ = _decoded("unknown-kid")
    assert len(msg.phdr[KID]) == 16 and msg.phdr[KID] not in store.seals
    assert msg.phdr[KID].hex() not in {k["kid"] for k in VECTORS["keys"]}


# ------------------------------------------------------------------ every vector (specs/vectors/README.md)

@pytest.mark.parametrize("case", VECTORS["certificates"], ids=lambda c: c["name"])
def test_certificate_vector(case):
    try:
        store = ts.load_trust_bundle(BUNDLE, case["now"])
        res = ts.verify_certificate(bytes.fromhex(case["certificate"]), store, case["now"], snapshots_for(case, store))
    except ts.Reject as e:  # the bundle could not be used
        res = ts.Result(e.code)
    assert res.code == case["expect"]["code"], res.detail
    # The identifier is reported once the claims decoded (step 9), whatever fails later.
    assert (res.claims["id"] if res.claims else None) == case["expect"]["id"]
    if res.code == "OK":
        assert as_json(res.disclosed) == json.dumps(case["expect"].get("disclosed", []), ensure_ascii=False)


@pytest.mark.parametrize("case", VECTORS["trust_bundles"], ids=lambda c: c["name"])
def test_trust_bundle_vector(case):
    pin = case["pinned_federation_kid"]
    try:
        ts.load_trust_bundle(bytes.fromhex(case["bundle"]), case["now"], bytes.fromhex(pin) if pin else None)
        code = "OK"
    except ts.Reject as e:
        code = e.code
    assert code == case["expect"]["code"]


# ------------------------------------------------------------------ 3. Tongban accepts what Python builds

SEAL_SEED = bytes.fromhex(KEYS["seal 341200 FY-AMR-01"]["seed"])
HOLDER_USCC = "91341200MA2PY0001" + ts.uscc_check_char("91341200MA2PY0001")
FIELDS = [
    ("holder.name", "互通测试科技有限公司"),
    ("holder.id_type", "USCC"),
    ("holder.id_number", HOLDER_USCC),
    ("licence.business_scope", "软件互操作性测试"),
]


def issue(store, fields=FIELDS, seed=SEAL_SEED, claims=None) -> bytes:
    seal = store.seals[ts.kid(ts.public_key(seed))]
    iat = NOW - 86_400
    assert seal["vf"] <= iat < seal["vu"]
    serial = "PY" + secrets.token_hex(5).upper()
    base = {1: seal["au"], 4: NOW + 5 * 365 * 86_400, 5: iat, 6: iat, "v": 1,
            "id": ts.make_identifier("11100000000013338W001", seal["au"], serial),
            "tn": "营业执照", "an": seal["an"], "rc": seal["rc"], "lvl": "A"}
    return ts.build_certificate(seed, {**base, **(claims or {})}, fields)


def tongban_verify(cert: bytes, tmp_path: Path, now: int = NOW):
    binary = Path(os.environ.get("TONGBAN_VERIFY") or ROOT / "target/debug/tongban-verify")
    if not binary.is_file():
        pytest.fail(f"tongban-verify not found at {binary}: run `cargo build -p tongban-verify` in {ROOT} "
                    "or set TONGBAN_VERIFY")
    (tmp_path / "cert.tbc").write_bytes(cert)
    (tmp_path / "bundle.bin").write_bytes(BUNDLE)
    p = subprocess.run([str(binary), "verify", str(tmp_path / "cert.tbc"), "--trust", str(tmp_path / "bundle.bin"),
                        "--now", str(now), "--json"], capture_output=True, text=True, timeout=120)
    try:
        return p.returncode, json.loads(p.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"tongban-verify exit {p.returncode}, no JSON: {p.stdout!r} {p.stderr!r}")


@pytest.fixture(scope="module")
def issued(store) -> bytes:
    cert = issue(store)
    # the bytes follow the spec: strict CBOR, protected header in label order 1, 4, 16, payload keys in
    # bytewise order, disclosures listed in the order of their digests in "sd"
    env = ts.open_envelope(cert, ts.TYP_CERT, disclosures_ok=True)
    assert env.protected == (bytes.fromhex("a301270450") + ts.kid(ts.public_key(SEAL_SEED))
                             + bytes.fromhex("10781d") + ts.TYP_CERT.encode())
    claims = ts.check_claims(env.payload)
    assert env.payload == cbor2.dumps(ts.canonical_map(claims))
    assert [ts.disclosure_digest(d) for d in env.unprotected[ts.LABEL_DISCLOSURES]] == claims["sd"]
    assert ts.verify_certificate(cert, store, NOW).code == "OK"
    return cert


def test_tongban_accepts_python_certificate(issued, tmp_path):
    rc, out = tongban_verify(issued, tmp_path)
    assert (rc, out["verdict"], out["code"]) == (0, "valid", "OK"), out
    env = ts.open_envelope(issued, ts.TYP_CERT, disclosures_ok=True)
    attached = [cbor2.loads(d)[1] for d in env.unprotected[ts.LABEL_DISCLOSURES]]
    assert sorted(attached) == sorted(n for n, _ in FIELDS)
    assert [d["name"] for d in out["disclosed"]] == attached
    assert {d["name"]: d["value"] for d in out["disclosed"]} == dict(FIELDS)
    assert out["undisclosed"] == 0
    assert out["digest"] == ts.certificate_digest(env.protected, env.payload, env.signature).hex()  # encoding.md §4


def test_tongban_rejects_flipped_signature_byte(issued, tmp_path, store):
    bad = bytearray(issued)
    bad[-64] ^= 0x01  # first byte of the 64-byte signature, the envelope's last item
    rc, out = tongban_verify(bytes(bad), tmp_path)
    assert (rc, out["verdict"], out["code"]) == (1, "invalid", "SIGNATURE_INVALID")
    assert ts.verify_certificate(bytes(bad), store, NOW).code == "SIGNATURE_INVALID"


def test_tongban_accepts_holder_name_only(issued, tmp_path):
    # selective disclosure: the same signed certificate with every other disclosure removed
    only_name = ts.with_disclosures(issued, lambda name: name == "holder.name")
    assert only_name != issued
    rc, out = tongban_verify(only_name, tmp_path)
    assert (rc, out["verdict"], out["code"]) == (0, "valid", "OK"), out
    assert out["disclosed"] == [{"name": "holder.name", "value": dict(FIELDS)["holder.name"]}]
    assert out["undisclosed"] == len(FIELDS) - 1
    env = ts.open_envelope(issued, ts.TYP_CERT, disclosures_ok=True)
    assert out["digest"] == ts.certificate_digest(env.protected, env.payload, env.signature).hex()


# ---------------------------------------------------- edge cases: both implementations give the spec's code

class Divergence(Exception):
    """Tongban's code differs from the one the spec text gives (Python agrees with the spec)."""


def _reordered_protected_header(store):
    cert = ts.open_envelope(issue(store), ts.TYP_CERT, disclosures_ok=True)
    protected = cbor2.dumps({16: ts.TYP_CERT, 4: cert.kid, 1: -8})  # "Verifiers MUST NOT require any key order"
    return ts.sign_raw(SEAL_SEED, protected, cert.payload)


def _revoked_seal_at(store, offset):
    seed = bytes.fromhex(KEYS["seal 341200 FY-AMR-02"]["seed"])
    ra = store.revoked[ts.kid(ts.public_key(seed))]
    return issue(store, seed=seed, claims={5: ra + offset, 6: ra + offset})


def case(name, make, code, divergence=None):
    marks = [pytest.mark.xfail(raises=Divergence, strict=True, reason=divergence)] if divergence else []
    return pytest.param(make, code, id=name, marks=marks)


BOUNDARIES = [
    case("exp-equals-now", lambda s: issue(s, claims={4: NOW}), "EXPIRED"),
    case("nbf-one-second-after-now", lambda s: issue(s, claims={5: NOW + 1}), "NOT_YET_VALID"),
    case("iat-now-plus-skew", lambda s: issue(s, claims={6: NOW + 300}), "OK"),
    case("iat-now-plus-skew-plus-one", lambda s: issue(s, claims={6: NOW + 301}), "ISSUED_IN_FUTURE"),
    case("stamped-at-revocation", lambda s: _revoked_seal_at(s, 0), "SEAL_REVOKED"),
    case("stamped-just-before-revocation", lambda s: _revoked_seal_at(s, -1), "OK"),
    case("exp-max-time", lambda s: issue(s, claims={4: ts.MAX_TIME}), "OK"),
    case("exp-max-time-plus-one", lambda s: issue(s, claims={4: ts.MAX_TIME + 1}), "CLAIMS_INVALID"),
    case("pd-equal-to-iat", lambda s: issue(s, claims={"pd": NOW - 86_400}), "CLAIMS_INVALID"),
    case("region-code-issuer", lambda s: issue(s, claims={
        "id": ts.make_identifier("11100000000013338W001", "341200", "PY1")}), "OK"),
    case("value-4096-bytes", lambda s: issue(s, [("holder.name", "a" * 4096)]), "OK"),
    case("value-4097-bytes", lambda s: issue(s, [("holder.name", "a" * 4097)]), "DISCLOSURE_MALFORMED"),
    case("int-64-bit-signed-max", lambda s: issue(s, [("licence.n", 2**63 - 1)]), "OK"),
    case("protected-labels-16-4-1", _reordered_protected_header, "OK"),
    case("int-2-pow-63", lambda s: issue(s, [("licence.n", 2**63)]), "DISCLOSURE_MALFORMED"),
    case("int-minus-2-pow-63-minus-one", lambda s: issue(s, [("licence.n", -2**63 - 1)]), "DISCLOSURE_MALFORMED"),
    case("field-name-64-bytes", lambda s: issue(s, [("licence." + "a" * 56, "1")]), "OK"),
    case("field-name-65-bytes", lambda s: issue(s, [("licence." + "a" * 57, "1")]), "DISCLOSURE_MALFORMED"),
    case("field-name-bare-licence", lambda s: issue(s, [("licence.", "1")]), "DISCLOSURE_MALFORMED"),
    case("field-name-other-holder", lambda s: issue(s, [("holder.foo", "1")]), "DISCLOSURE_MALFORMED"),
    # once divergences between the spec text and Tongban, resolved in the spec
    case("short-text-with-C1-control", lambda s: issue(s, claims={"tn": "营业执照\u0085"}), "CLAIMS_INVALID"),
    case("truncated-float-head", lambda s: bytes.fromhex("f9"), "CBOR_UNSUPPORTED"),
    case("truncated-uint-head", lambda s: bytes.fromhex("19ff"), "CBOR_TRUNCATED"),
]


@pytest.mark.parametrize("make, code", BOUNDARIES)
def test_boundary_agreement(make, code, store, tmp_path):
    cert = make(store)
    assert ts.verify_certificate(cert, store, NOW).code == code  # Python follows the spec text
    rc, out = tongban_verify(cert, tmp_path)
    if out["code"] != code:
        raise Divergence(f"Tongban says {out['code']}, the spec {code}")
    assert rc == (0 if code == "OK" else 1)
