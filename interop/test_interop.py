"""Tongban interoperability: an implementation written only from specs/ (tongban_spec.py) against
what Tongban issues (specs/vectors/vectors.json) and what Tongban accepts (the tongban-verify CLI)."""

import base64
import json
import os
import re
import secrets
import zlib
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
STATUS_FILES = {f["name"]: bytes.fromhex(f["bytes"]) for f in VECTORS["status_files"]}
CASES = {c["name"]: c for c in VECTORS["certificates"]}
KEYS = {k["name"]: k for k in VECTORS["keys"]}
FULL = CASES["valid-full-disclosure"]
NOW = FULL["now"]
SUITES = {s["suite"]: s for s in VECTORS["suites"]}
SUITE_CASES = [(s["suite"], c) for s in VECTORS["suites"] for c in s["certificates"]]


@pytest.fixture(scope="module")
def store() -> ts.TrustStore:
    return ts.load_trust_bundle(BUNDLE, NOW)


def status_for(case, store) -> ts.StatusData:
    """specs/vectors/README.md: load each status file the case names (a snapshot or a status list)."""
    held = ts.StatusData()
    for name in case["status"]:
        held.hold(ts.load_status_file(STATUS_FILES[name], store))
    return held


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
    # certificate.md §2: format 2, keys in the producers' order, the status claim naming Fuyang's list
    assert claims["v"] == 2 and list(claims) == [1, 4, 5, 6, 65535, "v", "an", "id", "rc", "sd", "tn", "lvl"]
    assert list(claims[65535]) == ["status_list"] and list(claims[65535]["status_list"]) == ["idx", "uri"]
    assert claims[65535]["status_list"]["uri"] == "urn:tongban:status:" + claims["rc"]
    assert 0 <= claims[65535]["status_list"]["idx"] < 2**32
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

    res = ts.verify_certificate(raw, store, NOW, status_for(FULL, store))  # verification.md §2 as a whole
    assert (res.verdict, res.code) == ("valid", "OK") == (FULL["expect"]["verdict"], FULL["expect"]["code"])
    assert (res.status, res.status_source) == (1, "snapshot")  # the case holds snapshots, no list


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
    res = ts.verify_certificate(bytes.fromhex(case["certificate"]), store, case["now"], status_for(case, store))
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
        res = ts.verify_certificate(bytes.fromhex(case["certificate"]), store, case["now"], status_for(case, store))
    except ts.Reject as e:  # the bundle or a status file could not be used
        res = ts.Result(e.code)
    assert res.code == case["expect"]["code"], res.detail
    # The identifier is reported once the claims decoded (step 9), whatever fails later.
    assert (res.claims["id"] if res.claims else None) == case["expect"]["id"]
    if res.code == "OK":
        assert as_json(res.disclosed) == json.dumps(case["expect"].get("disclosed", []), ensure_ascii=False)


def test_every_certificate_case_is_run():
    # test_certificate_vector is parametrized over the whole list; unique names, so no case is shadowed
    names = [c["name"] for c in VECTORS["certificates"]]
    names += [c["name"] for _, c in SUITE_CASES]
    assert VECTORS["format"] == "tongban test vectors v4" and len(names) == len(set(names))
    assert set(SUITES) == {"sm2"} and SUITES["sm2"]["certificates"]
    assert "status_snapshots" not in VECTORS and all("status_snapshots" not in c for c in VECTORS["certificates"])
    for c in VECTORS["certificates"] + VECTORS["copies"]:
        assert set(c["status"]) <= set(STATUS_FILES), c["name"]


def suite_store(suite: str, now: int) -> ts.TrustStore:
    return ts.load_trust_bundle(bytes.fromhex(SUITES[suite]["trust_bundle"]), now)


def suite_status(suite: str, case, store) -> ts.StatusData:
    files = {f["name"]: bytes.fromhex(f["bytes"]) for f in SUITES[suite]["status_files"]}
    held = ts.StatusData()
    for name in case["status"]:
        held.hold(ts.load_status_file(files[name], store))
    return held


def test_suite_keys_match_their_seeds_and_kids():
    # specs/vectors/README.md: an sm2 key's seed is that of its name ("sm2 ..."), read as d (enc §3)
    for k in SUITES["sm2"]["keys"]:
        seed = bytes.fromhex(k["seed"])
        assert k["name"].startswith("sm2 ")
        assert blake3.blake3(k["name"].encode(), derive_key_context="tongban v1 test seed").digest() == seed
        assert ts.sm2_public_key(seed).hex() == k["public"], k["name"]
        assert ts.kid(bytes.fromhex(k["public"])).hex() == k["kid"], k["name"]


@pytest.mark.parametrize("suite,case", SUITE_CASES, ids=lambda x: x if isinstance(x, str) else x["name"])
def test_suite_certificate_vector(suite, case):
    try:
        store = suite_store(suite, case["now"])
        res = ts.verify_certificate(bytes.fromhex(case["certificate"]), store, case["now"],
                                    suite_status(suite, case, store))
    except ts.Reject as e:
        res = ts.Result(e.code)
    assert res.code == case["expect"]["code"], res.detail
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


def issue(store, fields=FIELDS, seed=SEAL_SEED, claims=None, idx=None) -> bytes:
    """A format-2 certificate (certificate.md §2, §5) with its status claim: index idx of its region's
    list (by default one far beyond every list the tests build, so no list covers it)."""
    seal = store.seals[ts.kid(ts.public_key(seed))]
    iat = NOW - 86_400
    assert seal["vf"] <= iat < seal["vu"]
    serial = "PY" + secrets.token_hex(5).upper()
    idx = 1_000_000 + secrets.randbelow(2**31) if idx is None else idx
    base = {1: seal["au"], 4: NOW + 5 * 365 * 86_400, 5: iat, 6: iat, 65535: ts.status_claim(seal["rc"], idx),
            "v": 2, "id": ts.make_identifier("11100000000013338W001", seal["au"], serial),
            "tn": "营业执照", "an": seal["an"], "rc": seal["rc"], "lvl": "A"}
    return ts.build_certificate(seed, {**base, **(claims or {})}, fields)


def tongban_verify(cert: bytes, tmp_path: Path, now: int = NOW, status=(), bundle: bytes = BUNDLE):
    """tongban-verify verify --json, with the status files (snapshots or lists) given. A status file that
    fails to load stops the run (exit 2, no JSON): its code is then read from the error line."""
    binary = Path(os.environ.get("TONGBAN_VERIFY") or ROOT / "target/debug/tongban-verify")
    if not binary.is_file():
        pytest.fail(f"tongban-verify not found at {binary}: run `cargo build -p tongban-verify` in {ROOT} "
                    "or set TONGBAN_VERIFY")
    (tmp_path / "cert.tbc").write_bytes(cert)
    (tmp_path / "bundle.bin").write_bytes(bundle)
    args = [str(binary), "verify", str(tmp_path / "cert.tbc"), "--trust", str(tmp_path / "bundle.bin"),
            "--now", str(now), "--json"]
    for i, raw in enumerate(status):
        (tmp_path / f"status-{i}").write_bytes(raw)
        args += ["--status", str(tmp_path / f"status-{i}")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    try:
        return p.returncode, json.loads(p.stdout)
    except json.JSONDecodeError:
        m = re.search(r"status file \S+: ([A-Z_]+):", p.stderr)
        if p.returncode == 2 and m and not p.stdout:
            return p.returncode, {"code": m.group(1)}
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
    assert list(cbor2.loads(env.payload)) == [1, 4, 5, 6, 65535, "v", "an", "id", "rc", "sd", "tn", "lvl"]
    assert env.payload[env.payload.index(b"\x19\xff\xff"):].startswith(  # 65535: {"status_list": {"idx", "uri"}}
        b"\x19\xff\xff\xa1\x6bstatus_list\xa2\x63idx")
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


SM2_BUNDLE = bytes.fromhex(SUITES["sm2"]["trust_bundle"])
SM2_SEAL_SEED = bytes.fromhex({k["name"]: k for k in SUITES["sm2"]["keys"]}["sm2 seal 341200 FY-AMR-01"]["seed"])


@pytest.fixture(scope="module")
def sm2_issued() -> bytes:
    """A certificate issued by Python in the sm2 suite (gmssl signs, a random nonce)."""
    store = ts.load_trust_bundle(SM2_BUNDLE, NOW)
    seal = store.seals[ts.kid(ts.sm2_public_key(SM2_SEAL_SEED))]
    iat = NOW - 86_400
    base = {1: seal["au"], 4: NOW + 5 * 365 * 86_400, 5: iat, 6: iat,
            65535: ts.status_claim(seal["rc"], 1_000_000 + secrets.randbelow(2**31)),
            "v": 2, "id": ts.make_identifier("11100000000013338W001", seal["au"], "PY" + secrets.token_hex(5).upper()),
            "tn": "营业执照", "an": seal["an"], "rc": seal["rc"], "lvl": "A"}
    cert = ts.build_certificate(SM2_SEAL_SEED, base, FIELDS, suite="sm2")
    env = ts.open_envelope(cert, ts.TYP_CERT, disclosures_ok=True)
    # enc §2: alg -65581 is 0x3a 0x0001002c
    assert env.protected.startswith(bytes.fromhex("a3013a0001002c0450")) and env.suite == "sm2"
    assert ts.verify_certificate(cert, store, NOW).code == "OK"
    return cert


def test_tongban_accepts_python_sm2_certificate(sm2_issued, tmp_path):
    rc, out = tongban_verify(sm2_issued, tmp_path, bundle=SM2_BUNDLE)
    assert (rc, out["verdict"], out["code"]) == (0, "valid", "OK"), out
    assert {d["name"]: d["value"] for d in out["disclosed"]} == dict(FIELDS)
    env = ts.open_envelope(sm2_issued, ts.TYP_CERT, disclosures_ok=True)
    assert out["digest"] == ts.certificate_digest(env.protected, env.payload, env.signature, "sm2").hex()
    assert out["digest"] != ts.certificate_digest(env.protected, env.payload, env.signature).hex()


def test_tongban_rejects_python_sm2_certificate_altered_or_under_an_ed25519_bundle(sm2_issued, tmp_path):
    bad = bytearray(sm2_issued)
    bad[-1] ^= 0x01  # the last byte of s
    rc, out = tongban_verify(bytes(bad), tmp_path, bundle=SM2_BUNDLE)
    assert (rc, out["code"]) == (1, "SIGNATURE_INVALID"), out
    # the ed25519 test federation holds no seal with the sm2 seal's kid
    rc, out = tongban_verify(sm2_issued, tmp_path, bundle=BUNDLE)
    assert (rc, out["code"]) == (1, "KID_UNKNOWN"), out


def _der_integer(b: bytes) -> bytes:
    b = b.lstrip(b"\0") or b"\0"
    b = b"\0" + b if b[0] & 0x80 else b
    return b"\x02" + bytes([len(b)]) + b


def openssl_sm2_verify(pk: bytes, message: bytes, signature: bytes, tmp_path: Path) -> bool:
    """OpenSSL's SM2 (an implementation independent of Tongban, RustCrypto and gmssl): the key as an
    SPKI (id-ecPublicKey, curve sm2p256v1 1.2.156.10197.1.301), the signature as DER, SM3 over
    Z_A || message with the signer id of enc §2.4."""
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200") + pk
    pem = "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode() + "-----END PUBLIC KEY-----\n"
    body = _der_integer(signature[:32]) + _der_integer(signature[32:])
    (tmp_path / "pub.pem").write_text(pem)
    (tmp_path / "sig.der").write_bytes(b"\x30" + bytes([len(body)]) + body)
    (tmp_path / "msg.bin").write_bytes(message)
    p = subprocess.run(["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem"),
                        "-rawin", "-in", str(tmp_path / "msg.bin"), "-sigfile", str(tmp_path / "sig.der"),
                        "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode in (0, 1), p.stderr  # 1: did not verify; anything else: openssl could not run
    return p.returncode == 0 and "Signature Verified Successfully" in p.stdout


def test_openssl_verifies_sm2_certificate_signatures(sm2_issued, tmp_path):
    store = ts.load_trust_bundle(SM2_BUNDLE, NOW)
    valid = [bytes.fromhex(c["certificate"]) for c in SUITES["sm2"]["certificates"] if c["expect"]["code"] == "OK"]
    for cert in valid + [sm2_issued]:  # Tongban's (deterministic nonce) and Python's (random nonce)
        env = ts.open_envelope(cert, ts.TYP_CERT, disclosures_ok=True)
        pk = store.seals[env.kid]["pk"]
        message = ts.sig_structure(env.protected, env.payload)
        assert openssl_sm2_verify(pk, message, env.signature, tmp_path)
        assert not openssl_sm2_verify(pk, message + b"\0", env.signature, tmp_path)


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


URI = ts.status_uri("341200")
BAD_USCC = HOLDER_USCC[:17] + ("0" if HOLDER_USCC[17] != "0" else "1")
_GOOD_ID = ts.make_identifier("11100000000013338W001", "341200", "PYBADCHECK")
BAD_ID = _GOOD_ID[:-1] + ("0" if _GOOD_ID[-1] != "0" else "1")  # a wrong check character


def _without_status_claim(store, claims=None):
    """A certificate as issue() makes it, with no claim 65535 (and claims changed), signed again."""
    env = ts.open_envelope(issue(store), ts.TYP_CERT, disclosures_ok=True)
    payload = {k: v for k, v in cbor2.loads(env.payload).items() if k != 65535}
    return ts.sign_raw(SEAL_SEED, env.protected, cbor2.dumps(ts.canonical_map({**payload, **(claims or {})})))


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
    # certificate.md §2: format 2 and its status claim
    case("version-1", lambda s: issue(s, claims={"v": 1}), "CLAIMS_INVALID"),
    case("version-1-without-status-claim", lambda s: _without_status_claim(s, {"v": 1}), "CLAIMS_INVALID"),
    case("status-claim-missing", lambda s: _without_status_claim(s), "CLAIMS_INVALID"),
    case("status-index-0", lambda s: issue(s, idx=0), "OK"),
    case("status-index-2-pow-32-minus-one", lambda s: issue(s, idx=2**32 - 1), "OK"),
    case("status-index-2-pow-32", lambda s: issue(s, idx=2**32), "CLAIMS_INVALID"),
    case("status-index-2-pow-64-minus-one", lambda s: issue(s, idx=2**64 - 1), "CLAIMS_INVALID"),
    case("status-index-text", lambda s: issue(s, claims={65535: {"status_list": {"idx": "1", "uri": URI}}}),
         "CLAIMS_INVALID"),
    case("status-uri-of-jinan", lambda s: issue(s, claims={65535: ts.status_claim("370100", 1)}), "CLAIMS_INVALID"),
    case("status-uri-with-slash", lambda s: issue(s, claims={65535: {"status_list": {"idx": 1, "uri": URI + "/"}}}),
         "CLAIMS_INVALID"),
    case("status-uri-missing", lambda s: issue(s, claims={65535: {"status_list": {"idx": 1}}}), "CLAIMS_INVALID"),
    case("status-list-extra-key", lambda s: issue(s, claims={65535: {"status_list": {"idx": 1, "uri": URI, "x": 1}}}),
         "CLAIMS_INVALID"),
    case("status-claim-extra-key", lambda s: issue(s, claims={65535: {**ts.status_claim("341200", 1), "x": 1}}),
         "CLAIMS_INVALID"),
    case("status-claim-not-a-map", lambda s: issue(s, claims={65535: [1, URI]}), "CLAIMS_INVALID"),
    case("status-claim-under-text-key", lambda s: _without_status_claim(s, {"status": ts.status_claim("341200", 1)}),
         "CLAIMS_INVALID"),
    # order of the checks of verification.md §2 step 9: a value check (e) comes after 9c and 9d
    case("status-index-2-pow-32-and-bad-identifier", lambda s: issue(s, idx=2**32, claims={"id": BAD_ID}),
         "IDENTIFIER_INVALID"),
    case("status-uri-of-jinan-and-bad-uscc", lambda s: issue(s, claims={65535: ts.status_claim("370100", 1),
                                                                        1: BAD_USCC}), "USCC_INVALID"),
    # ... and a type check (b) before them
    case("status-claim-missing-and-bad-identifier", lambda s: _without_status_claim(s, {"id": BAD_ID}),
         "CLAIMS_INVALID"),
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


# ------------------------------------------------- status lists (status.md §5): loading, and status from a list

FUYANG_ROOT = bytes.fromhex(KEYS["region 341200 root"]["seed"])
JINAN_ROOT = bytes.fromhex(KEYS["region 370100 root"]["seed"])

# every status file of the vectors, and what loading it gives (a list whose exp has passed still loads)
STATUS_FILE_LOADS = {
    "341200": "OK", "370100": "OK",
    "341200-list": "OK", "370100-list": "OK", "341200-list-cleared": "OK", "341200-list-expired": "OK",
    "341200-list-reserved": "STATUS_LIST_INVALID", "341200-list-bits-2": "STATUS_LIST_INVALID",
    "341200-list-wrong-sub": "STATUS_LIST_INVALID", "341200-list-jinan-signed": "STATUS_LIST_INVALID",
    "341200-list-not-zlib": "STATUS_LIST_INVALID",
    "341200-list-trailing-bytes": "STATUS_LIST_INVALID",
}


def _load_code(raw, store):
    try:
        return ts.load_status_file(raw, store), "OK"
    except ts.Reject as e:
        return None, e.code


def test_every_status_file_is_classified():
    assert set(STATUS_FILE_LOADS) == set(STATUS_FILES)


@pytest.mark.parametrize("name", sorted(STATUS_FILE_LOADS))
def test_status_file_vector_loads(name, store):
    raw = STATUS_FILES[name]
    held, code = _load_code(raw, store)
    assert code == STATUS_FILE_LOADS[name]
    # a snapshot by its typ (trust.md §6), anything else a status list (status.md §5.3)
    is_list = ts.protected_typ(raw) != ts.TYP_STATUS
    assert is_list == ("-list" in name) and (held is None or isinstance(held, ts.StatusList) == is_list)
    # every case that names a file that does not load expects that load's code
    for case in VECTORS["certificates"] + VECTORS["copies"]:
        if name in case["status"] and code != "OK":
            assert case["expect"]["code"] == code, case["name"]


def test_fuyang_status_list_vector(store):
    raw = STATUS_FILES["341200-list"]
    env = ts.open_envelope(raw, ts.TYP_STATUS_LIST, ts.STATUS_LIST_LIMIT)
    payload = cbor2.loads(env.payload)
    # status.md §5.3: producers' key order, inner "lst" before "bits"; signed by the Fuyang root
    assert list(payload) == [2, 4, 6, 65533, 65534, "v", "rc", "ver"] and list(payload[65533]) == ["lst", "bits"]
    assert env.kid == ts.kid(ts.public_key(FUYANG_ROOT)) and env.unprotected == {}
    lst = ts.load_status_list(raw, store)
    assert (lst.rc, lst.ver, lst.ttl, len(lst)) == ("341200", 42, 300, 64) and lst.exp > NOW > lst.iat
    # index 40 revoked, 41 suspended, 42 promise open (list-revoked, list-suspended, list-promise-open-lapsed)
    assert [lst.value(i) for i in range(len(lst))] == [0] * 40 + [0x01, 0x02, 0x03] + [0] * 21
    assert lst.lst[20:22] == b"\x21\x03"  # entry 40 in the low half of byte 20, 41 in its high half


def test_status_list_vectors_fail_for_the_stated_reason(store):
    def detail(name):
        with pytest.raises(ts.Reject) as e:
            ts.load_status_file(STATUS_FILES[name], store)
        assert e.value.code == "STATUS_LIST_INVALID"
        return e.value.detail
    assert "entry 3 holds a reserved value" in detail("341200-list-reserved")  # 0x05 in byte 1's high half
    assert "bits 2" in detail("341200-list-bits-2")
    assert "sub 'urn:tongban:status:370100'" in detail("341200-list-wrong-sub")
    assert "signed by the root of 370100" in detail("341200-list-jinan-signed")
    assert "lst:" in detail("341200-list-not-zlib")


def test_status_values_pack_low_half_first():
    assert ts.pack_status_values([0x1, 0x2, 0x3]) == b"\x21\x03"
    lst = ts.StatusList("341200", 1, 0, 1, 1, b"\x21\x03")
    assert len(lst) == 4 and [lst.value(i) for i in range(4)] == [1, 2, 3, 0]


def test_status_data_holds_the_newest(store):
    def lst(ver, iat):
        return ts.load_status_list(ts.build_status_list(FUYANG_ROOT, "341200", [], iat, NOW + 60, ver=ver), store)
    for order in ([(5, 10), (6, 1), (6, 5), (4, 99)], [(6, 5), (5, 10), (4, 99), (6, 1)]):
        held = ts.StatusData()
        for ver, iat in order:
            held.hold(lst(ver, iat))
        assert (held.lists["341200"].ver, held.lists["341200"].iat) == (6, 5)


# Certificates Python issues, with status lists Python signs as the Fuyang root: Python and Tongban give the
# same code and the same status. IDX is the certificate's index; lists hold 128 entries unless said (a list of
# n entries holds 2 * ceil(n / 2): the half byte after an odd n is an entry too, 0x00).
IDX = 101
SUSPENDED_ID = ts.make_identifier("11100000000013338W001", "11341200MB0000001F", "2026000041")  # 02 in snapshot 341200
FULFILLED_ID = ts.make_identifier("11100000000013338W001", "11341200MB0000001F", "2026000007")  # in its "pf"


def fy_list(values=None, n=128, iat=NOW - 3_600, exp=NOW + 86_400, **kw):
    """A Fuyang list of n entries, all 0x00 but those of values {index: value}."""
    entries = [0] * n
    for i, v in (values or {}).items():
        entries[i] = v
    return ts.build_status_list(FUYANG_ROOT, "341200", entries, iat, exp, **kw)


def at_idx(value, **kw):
    return fy_list({IDX: value}, **kw)


SNAPSHOT = STATUS_FILES["341200"]
PD_PASSED = {"pd": NOW}                 # now >= pd (pd > iat = NOW - 1 day)
PD_AHEAD = {"pd": NOW + 86_400}

STATUS_CASES = [
    # (name, claims of the certificate, status files, code, (state, source) Python reports)
    ("list-00-valid", {}, [at_idx(0x00)], "OK", (1, "list")),
    ("list-01-revoked", {}, [at_idx(0x01)], "STATUS_REVOKED", (3, "list")),
    ("list-02-suspended", {}, [at_idx(0x02)], "STATUS_SUSPENDED", (2, "list")),
    ("list-03-no-promise", {}, [at_idx(0x03)], "OK", (1, "list")),
    ("list-0b-cancelled", {}, [at_idx(0x0B)], "STATUS_CANCELLED", (4, "list")),
    ("list-0c-expired", {}, [at_idx(0x0C)], "STATUS_EXPIRED", (5, "list")),
    ("list-0d-transferred-out", {}, [at_idx(0x0D)], "STATUS_TRANSFERRED_OUT", (6, "list")),
    ("list-0e-revoked-penalty", {}, [at_idx(0x0E)], "STATUS_REVOKED_PENALTY", (7, "list")),
    ("list-0f-other", {}, [at_idx(0x0F)], "STATUS_OTHER", (99, "list")),
    ("odd-index-is-the-high-half", {}, [fy_list({IDX - 1: 0x02, IDX: 0x01})], "STATUS_REVOKED", (3, "list")),
    ("even-index-is-the-low-half", {"idx": IDX - 1}, [fy_list({IDX - 1: 0x02, IDX: 0x01})], "STATUS_SUSPENDED",
     (2, "list")),
    # promises (step 15)
    ("promise-open-before-deadline", PD_AHEAD, [at_idx(0x03)], "OK", (1, "list")),
    ("promise-open-at-deadline", PD_PASSED, [at_idx(0x03)], "PROMISE_LAPSED", (1, "list")),
    ("promise-fulfilled-in-list", PD_PASSED, [at_idx(0x00)], "OK", (1, "list")),
    ("promise-without-status-data", PD_PASSED, [], "PROMISE_LAPSED", (None, None)),
    ("promise-list-not-covering", PD_PASSED, [fy_list(n=IDX - 1)], "PROMISE_LAPSED", (None, None)),
    ("promise-revoked-beats-lapsed", PD_PASSED, [at_idx(0x01)], "STATUS_REVOKED", (3, "list")),
    # which status data decides (step 14)
    ("list-covers-last-entry", {}, [fy_list({IDX: 0x01}, n=IDX + 1)], "STATUS_REVOKED", (3, "list")),
    ("list-one-short", {"idx": IDX - 1}, [fy_list(n=IDX - 1)], "OK", (None, None)),  # 100 entries, index 100
    ("list-covers-the-padding-half", {}, [fy_list({IDX - 1: 0x01}, n=IDX)], "OK", (1, "list")),  # 2 * 51 entries
    ("list-expires-at-now", {}, [at_idx(0x01, exp=NOW)], "OK", (None, None)),
    ("list-expires-after-now", {}, [at_idx(0x01, exp=NOW + 1)], "STATUS_REVOKED", (3, "list")),
    ("list-of-another-region", {}, [ts.build_status_list(JINAN_ROOT, "370100", [1] * 128, NOW - 60, NOW + 60)],
     "OK", (None, None)),
    ("higher-ver-wins", {}, [at_idx(0x01, ver=6), at_idx(0x00, ver=5, iat=NOW)], "STATUS_REVOKED", (3, "list")),
    ("higher-ver-wins-loaded-first", {}, [at_idx(0x00, ver=5, iat=NOW), at_idx(0x01, ver=6)], "STATUS_REVOKED",
     (3, "list")),
    ("newest-list-expired-the-older-not-used", {}, [at_idx(0x00, ver=6, exp=NOW), at_idx(0x01, ver=5)], "OK",
     (None, None)),  # one list held per region (the highest "ver"), used only while exp > now
    ("same-ver-later-iat-wins", {}, [at_idx(0x02, iat=NOW - 10), at_idx(0x00, iat=NOW - 20)], "STATUS_SUSPENDED",
     (2, "list")),
    # a list against the snapshot (trust.md §6) of the same region
    ("snapshot-alone", {"id": SUSPENDED_ID}, [SNAPSHOT], "STATUS_SUSPENDED", (2, "snapshot")),
    ("list-over-snapshot", {"id": SUSPENDED_ID}, [SNAPSHOT, at_idx(0x00)], "OK", (1, "list")),
    ("list-over-snapshot-loaded-first", {"id": SUSPENDED_ID}, [at_idx(0x00), SNAPSHOT], "OK", (1, "list")),
    ("snapshot-when-list-short", {"id": SUSPENDED_ID}, [SNAPSHOT, fy_list(n=IDX - 1)], "STATUS_SUSPENDED",
     (2, "snapshot")),
    ("snapshot-when-list-expired", {"id": SUSPENDED_ID}, [SNAPSHOT, at_idx(0x00, exp=NOW)], "STATUS_SUSPENDED",
     (2, "snapshot")),
    ("snapshot-fulfilment", {"id": FULFILLED_ID, **PD_PASSED}, [SNAPSHOT], "OK", (1, "snapshot")),
    ("list-open-promise-over-snapshot-fulfilment", {"id": FULFILLED_ID, **PD_PASSED}, [SNAPSHOT, at_idx(0x03)],
     "PROMISE_LAPSED", (1, "list")),
    ("snapshot-fulfilment-when-list-short", {"id": FULFILLED_ID, **PD_PASSED}, [SNAPSHOT, fy_list(n=IDX - 1)], "OK",
     (1, "snapshot")),
]


@pytest.mark.parametrize("claims, files, code, status", [pytest.param(*c[1:], id=c[0]) for c in STATUS_CASES])
def test_status_agreement(claims, files, code, status, store, tmp_path):
    claims = dict(claims)
    cert = issue(store, claims=claims, idx=claims.pop("idx", IDX))
    held = ts.StatusData()
    for raw in files:
        held.hold(ts.load_status_file(raw, store))
    res = ts.verify_certificate(cert, store, NOW, held)
    assert (res.code, (res.status, res.status_source)) == (code, status), res.detail
    rc, out = tongban_verify(cert, tmp_path, status=files)
    assert (rc, out["code"]) == (0 if code == "OK" else 1, code), out.get("detail")
    if status[0] is None:
        assert out["status"] == {"known": False}
    else:  # the state, and the time the status data describes (verification.md §1)
        assert (out["status"]["state"], out["status"]["as_of"]) == (res.status, res.status_as_of)


RESERVED = [pytest.param({IDX: v}, id=f"reserved-{v:#04x}") for v in range(0x04, 0x0B)]
LOAD_FAILURES = [
    *RESERVED,
    pytest.param({"n": 127, IDX: 0}, id="reserved-in-the-padding-half"),  # the half past the last entry: 0x05
    pytest.param({"bits": 2}, id="bits-2"),
    pytest.param({"bits": 8}, id="bits-8"),
    pytest.param({"replace": {2: ts.status_uri("370100")}}, id="sub-of-jinan"),
    pytest.param({"replace": {2: "urn:tongban:status:341200/"}}, id="sub-with-slash"),
    pytest.param({"replace": {"rc": "370100", 2: ts.status_uri("370100")}}, id="rc-not-the-signers-region"),
    pytest.param({"root": JINAN_ROOT}, id="signed-by-jinan-root"),
    pytest.param({"root": SEAL_SEED}, id="signed-by-a-seal"),
    pytest.param({"lst": b"not zlib"}, id="lst-not-zlib"),
    pytest.param({"lst": zlib.compress(bytes(64))[:-1]}, id="lst-truncated-zlib"),
    pytest.param({"lst": zlib.compress(bytes(64)) + b"\x00"}, id="lst-byte-after-the-zlib-stream"),
    pytest.param({"lst": zlib.compress(bytes(64)) * 2}, id="lst-two-zlib-streams"),
    pytest.param({"lst": zlib.compress(bytes(64))[:-1] + b"\x00"}, id="lst-bad-adler32"),
    pytest.param({"lst": zlib.compress(bytes(64), wbits=-15)}, id="lst-raw-deflate"),
    pytest.param({"lst": zlib.compress(bytes(64), wbits=31)}, id="lst-gzip"),
    pytest.param({"exp": NOW - 3_600}, id="exp-equals-iat"),
    pytest.param({"exp": ts.MAX_TIME + 1}, id="exp-beyond-max-time"),
    pytest.param({"ttl": 0}, id="ttl-0"),
    pytest.param({"replace": {"v": 2}}, id="version-2"),
    pytest.param({"replace": {"x": 1}}, id="extra-key"),
    pytest.param({"replace": {65533: {"bits": 4, "lst": zlib.compress(bytes(64)), "idx": 0}}}, id="extra-inner-key"),
    pytest.param({"replace": {"ver": -1}}, id="ver-negative"),
    pytest.param({"typ": ts.TYP_SEAL}, id="typ-of-a-seal"),
]


@pytest.mark.parametrize("spec", LOAD_FAILURES)
def test_status_list_load_failure_agreement(spec, store, tmp_path):
    spec = dict(spec)
    root, typ, n = spec.pop("root", FUYANG_ROOT), spec.pop("typ", None), spec.pop("n", 128)
    values = {k: spec.pop(k) for k in list(spec) if type(k) is int}
    exp = spec.pop("exp", NOW + 86_400)
    entries = [values.get(i, 0) for i in range(n)]
    raw = ts.build_status_list(root, "341200", entries, NOW - 3_600, exp, **spec)
    if n % 2:  # set the unused half of the last byte to a reserved value
        lst = bytearray(ts.pack_status_values(entries))
        lst[-1] |= 0x50
        raw = ts.build_status_list(root, "341200", [], NOW - 3_600, exp, lst=zlib.compress(bytes(lst)))
    if typ:
        env = ts.open_envelope(raw, ts.TYP_STATUS_LIST, ts.STATUS_LIST_LIMIT)
        raw = ts.sign_object(root, typ, env.payload)
    _, code = _load_code(raw, store)
    assert code == "STATUS_LIST_INVALID"  # Python follows the spec text
    _, out = tongban_verify(issue(store, idx=IDX), tmp_path, status=[raw])
    if out["code"] != code:
        raise Divergence(f"Tongban says {out['code']}, the spec {code}")


@pytest.mark.parametrize("extra, code", [(0, "OK"), (1, "STATUS_LIST_INVALID")], ids=["256-MiB", "256-MiB-plus-1"])
def test_status_list_inflated_size_limit(extra, code, store, tmp_path):
    lst = zlib.compress(bytes(ts.INFLATED_LIMIT + extra), 9)  # 2^29 (+2) entries, all valid, about 260 KB
    raw = ts.build_status_list(FUYANG_ROOT, "341200", [], NOW - 3_600, NOW + 86_400, lst=lst)
    held, got = _load_code(raw, store)
    assert got == code
    if held is not None:
        assert len(held) == 2**29
    _, out = tongban_verify(issue(store, idx=2**29 - 1), tmp_path, status=[raw])
    assert out["code"] == code and (code != "OK" or out["status"]["state"] == 1)


# ---------------------------------------------------------------- presentation.md §1: offline QR text

QR_VECTORS = json.loads((ROOT / "specs/vectors/qr.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", QR_VECTORS["cases"], ids=lambda c: c["name"])
def test_qr_vectors_read_as_specified(case):
    if "certificate" in case:
        assert ts.qr_decode(case["text"]).hex() == case["certificate"]
    else:
        with pytest.raises(ts.Reject) as refused:
            ts.qr_decode(case["text"])
        assert refused.value.code == case["code"]


def test_qr_vectors_hold_the_full_licence():
    full = next(c for c in QR_VECTORS["cases"] if c["name"] == "full")
    assert full["certificate"] == FULL["certificate"]


def test_tongban_verifies_a_qr_text_made_here(tmp_path):
    # Python's own ZLIB (another DEFLATE than miniz_oxide's) and Base45 written from the spec; the
    # scanner's line end is part of what tongban-verify is given.
    certificate = bytes.fromhex(FULL["certificate"])
    text = ts.qr_encode(certificate)
    assert ts.qr_decode(text) == certificate
    rc, out = tongban_verify(text.encode() + b"\r\n", tmp_path)
    assert (rc, out["verdict"], out["code"]) == (0, "valid", "OK"), out
    rc, out = tongban_verify(text.replace("TB1:", "TB1:a").encode(), tmp_path)
    assert (rc, out["code"]) == (1, "QR_ENCODING"), out
