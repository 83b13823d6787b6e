"""Tongban v1 cross-region objects, re-implemented in Python from specs/ alone: purpose-bound copies
and share requests (sharing.md §4), verification proofs (sharing.md §3) with the log formats they
carry (log.md §1-§4, §8: entries, RFC 6962 inclusion, C2SP signed notes, checkpoints, tlog-proof).
Every check raises tongban_spec.Reject with the spec's stable code.
"""

from __future__ import annotations

import base64
import hashlib

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import tongban_spec as ts
from tongban_spec import Reject, require

# sharing.md §1, log.md §1
TYP_PROOF = "application/tongban-verification-proof+cbor"
TYP_SHARE_REQUEST = "application/tongban-share-request+cbor"
TYP_PRESENTATION_REQUEST = "application/tongban-presentation-request+cbor"  # presentation.md §2.3
TYP_COPY = "application/tongban-copy+cbor"
TYP_LOG_ENTRY = "application/tongban-log-entry+cbor"
PROOF_LIMIT = 524_288
COPY_LIMIT = 262_144
ENTRY_LIMIT = 65_535
ENTRY_VERSION = 2  # log.md §1: "cert.issued" carries the status list index "si"
MAX_COPY_LIFETIME = 90 * 86_400
DISCLOSURE_CODES = {"DISCLOSURE_MALFORMED", "DISCLOSURE_MISMATCH", "DISCLOSURE_DUPLICATE"}


def object_digest(raw: bytes, suite: str = "ed25519") -> bytes:
    """enc §4: the federation suite's hash (BLAKE3 or SM3) of the bytes as received."""
    return ts.sm3(raw) if suite == "sm2" else blake3.blake3(raw).digest()


# ---------------------------------------------------------------- sharing §4.1: share requests

def _share_request_ok(p) -> bool:
    f = p.get("f") if type(p) is dict else None
    return (ts.closed_map(p, {"v", "to", "id", "f", "pp", "cs", "at", "n"}) and ts.is_uint(p["v"]) and p["v"] == 1
            and ts.is_region_code(p["to"]) and ts.split_identifier(p["id"]) is not None
            and type(f) is list and 1 <= len(f) <= 256
            and all(type(n) is str and ts.FIELD_NAME.fullmatch(n) is not None for n in f)
            and all(a.encode() < b.encode() for a, b in zip(f, f[1:]))
            and ts.is_short_text(p["pp"]) and ts.is_short_text(p["cs"]) and ts.is_time(p["at"])
            and ts.is_bytes(p["n"], 16))


def open_share_request(raw: bytes, trust: ts.TrustStore):
    """sharing §4.1 steps 1-5. Returns (payload, seal payload, seal kid)."""
    env = ts.open_envelope(raw, TYP_SHARE_REQUEST, ts.OBJECT_LIMIT)
    seal = trust.seals.get(env.kid)
    require(seal is not None, "KID_UNKNOWN", env.kid.hex())
    require(ts.verify_strict(raw, seal["pk"]), "SIGNATURE_INVALID", "share request")
    p = ts.decode(env.payload, ts.OBJECT_LIMIT)
    require(_share_request_ok(p), "CLAIMS_INVALID", "share request payload")
    return p, seal, env.kid


def _presentation_request_ok(p) -> bool:
    return (ts.closed_map(p, {"v", "to", "pc", "pp", "cs", "at", "n"}) and ts.is_uint(p["v"]) and p["v"] == 1
            and ts.is_region_code(p["to"]) and ts.is_bytes(p["pc"], 32)
            and ts.is_short_text(p["pp"]) and ts.is_short_text(p["cs"]) and ts.is_time(p["at"])
            and ts.is_bytes(p["n"], 16))


def open_copy_request(raw: bytes, trust: ts.TrustStore):
    """sharing §4.4 step 7's opening: a presentation request (presentation.md §2.3) when the envelope's
    typ says so, else a share request. Returns (payload, seal payload, seal kid, is_presentation)."""
    try:
        env = ts.open_envelope(raw, TYP_PRESENTATION_REQUEST, ts.OBJECT_LIMIT)
    except Reject as e:
        if e.code != "WRONG_TYPE":
            raise
        return (*open_share_request(raw, trust), False)
    seal = trust.seals.get(env.kid)
    require(seal is not None, "KID_UNKNOWN", env.kid.hex())
    require(ts.verify_strict(raw, seal["pk"]), "SIGNATURE_INVALID", "presentation request")
    p = ts.decode(env.payload, ts.OBJECT_LIMIT)
    require(_presentation_request_ok(p), "CLAIMS_INVALID", "presentation request payload")
    return p, seal, env.kid, True


def authorise(p, seal, seal_kid, trust: ts.TrustStore, here: str, t: int, scope: bool = True) -> None:
    """sharing §4.1 steps 6-9 (6-8 without `scope`: a presentation request, presentation.md §2.3)."""
    require(p["to"] == here, "REGION_MISMATCH", f"to {p['to']}, here {here}")
    at = p["at"]
    require(at >= seal["vf"], "SEAL_NOT_YET_VALID")
    require(at < seal["vu"], "SEAL_EXPIRED")
    ra = trust.revoked.get(seal_kid)
    require(ra is None or at < ra, "SEAL_REVOKED")
    require(abs(t - at) <= ts.SKEW, "SHARE_REQUEST_STALE")
    if scope:
        require(ts.split_identifier(p["id"])["type"] in seal.get("ct", []), "SHARE_NOT_AUTHORISED")


# ---------------------------------------------------------------- sharing §4.3-4.4: copies

def _copy_ok(p) -> bool:
    return (ts.closed_map(p, {"v", "rc", "req", "cert", "iat", "exp"}) and ts.is_uint(p["v"]) and p["v"] == 1
            and ts.is_region_code(p["rc"]) and type(p["req"]) is bytes and type(p["cert"]) is bytes
            and ts.is_time(p["iat"]) and ts.is_time(p["exp"])
            and p["iat"] < p["exp"] <= p["iat"] + MAX_COPY_LIFETIME)


def verify_copy(raw: bytes, trust: ts.TrustStore, now: int, presenter: tuple,
                status: ts.StatusData | None = None) -> str:
    """sharing §4.4 steps 0-13; presenter is (region code, USCC); status: the lists and snapshots held.
    Returns the code."""
    try:
        _verify_copy(raw, trust, now, presenter, status)
        return "OK"
    except Reject as e:
        return e.code


def _verify_copy(raw, trust, now, presenter, status):
    require(now < trust.exp, "TRUST_BUNDLE_EXPIRED")                                         # 0
    env = ts.open_envelope(raw, TYP_COPY, COPY_LIMIT)                                         # 1-2
    root = trust.region_by_kid.get(env.kid)                                                  # 3
    require(root is not None, "KID_UNKNOWN", env.kid.hex())
    require(ts.verify_strict(raw, root["pk"]), "SIGNATURE_INVALID", "copy")                  # 4
    p = ts.decode(env.payload, COPY_LIMIT)                                                   # 5
    require(_copy_ok(p), "CLAIMS_INVALID", "copy payload")
    require(p["rc"] == root["rc"], "REGION_MISMATCH", "copy region")                         # 6
    req, seal, seal_kid, shown = open_copy_request(p["req"], trust)                          # 7
    authorise(req, seal, seal_kid, trust, p["rc"], p["iat"], scope=not shown)
    require(p["iat"] <= now + ts.SKEW, "ISSUED_IN_FUTURE")                                   # 8
    require(now < p["exp"], "COPY_EXPIRED")
    require(tuple(presenter) == (seal["rc"], seal["au"]), "COPY_WRONG_RECIPIENT")            # 9
    res = ts.verify_certificate(p["cert"], trust, now, status)                               # 10
    if res.claims is not None and res.code not in DISCLOSURE_CODES:                          # 11
        require(res.claims["rc"] == p["rc"], "COPY_MISMATCH")
        # A presentation request names no certificate or fields: the holder chose them.
        require(shown or (res.claims["id"] == req["id"]
                          and {n for n, _ in res.disclosed} == set(req["f"])), "COPY_MISMATCH")
    require(res.code == "OK", res.code, res.detail)                                          # 12


# ---------------------------------------------------------------- log §2: RFC 6962 inclusion

def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(leaf: bytes, index: int, size: int, root: bytes, path: list) -> bool:
    """RFC 9162 §2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


# ---------------------------------------------------------------- log §3-4: notes, checkpoints, tlog-proof

def note_key_id(name: str, key_type: int, key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + key).digest()[:4]


def parse_vkey(vkey: str):
    """`<name>+<hex id>+<base64(type || key)>` -> (name, type, key)."""
    name, hex_id, material = vkey.split("+", 2)
    raw = base64.b64decode(material, validate=True)
    require(len(hex_id) == 8 and len(raw) == 33, "LOG_PROOF_INVALID", "log key")
    require(note_key_id(name, raw[0], raw[1:]) == bytes.fromhex(hex_id), "LOG_PROOF_INVALID", "log key id")
    return name, raw[0], raw[1:]


def open_checkpoint(note: str, log_name: str, log_key: bytes) -> tuple[int, bytes]:
    """A signed note whose log signature verifies; returns (size, root) of its checkpoint."""
    text, sep, sigs = note.partition("\n\n")
    require(sep == "\n\n", "LOG_PROOF_INVALID", "note without signatures")
    text += "\n"
    want = note_key_id(log_name, 0x01, log_key)
    signed = False
    for line in sigs.splitlines():
        require(line.startswith("\u2014 "), "LOG_PROOF_INVALID", "signature line")
        name, _, blob = line[2:].rpartition(" ")
        raw = base64.b64decode(blob)
        if name == log_name and raw[:4] == want:
            try:
                Ed25519PublicKey.from_public_bytes(log_key).verify(raw[4:], text.encode())
            except InvalidSignature:
                raise Reject("LOG_PROOF_INVALID", "checkpoint signature") from None
            signed = True
    require(signed, "LOG_PROOF_INVALID", "checkpoint not signed by the log")
    lines = text.split("\n")
    require(len(lines) == 4 and lines[0] == log_name and lines[3] == "", "LOG_PROOF_INVALID", "checkpoint body")
    return int(lines[1]), base64.b64decode(lines[2])


def verify_tlog_proof(text: str, log_name: str, log_key: bytes):
    """C2SP tlog-proof@v1 with the entry in `extra` (log §4). Returns (entry, index, checkpoint note)."""
    head, sep, note = text.partition("\n\n")
    require(sep == "\n\n", "LOG_PROOF_INVALID", "tlog-proof without checkpoint")
    lines = head.split("\n")
    require(len(lines) >= 3 and lines[0] == "c2sp.org/tlog-proof@v1" and lines[1].startswith("extra ")
            and lines[2].startswith("index "), "LOG_PROOF_INVALID", "tlog-proof header")
    entry = base64.b64decode(lines[1][len("extra "):])
    index = int(lines[2][len("index "):])
    path = [base64.b64decode(h) for h in lines[3:]]
    size, root = open_checkpoint(note, log_name, log_key)
    require(verify_inclusion(leaf_hash(entry), index, size, root, path), "LOG_PROOF_INVALID", "inclusion")
    return entry, index, note


def _proof_entry(raw: bytes) -> tuple[dict, bytes]:
    """sharing §3.4 steps 10-11: an entry that does not decode is PROOF_MISMATCH; returns its
    payload and the kid that signed it (the caller checks the signature against the acting key)."""
    try:
        env = ts.open_envelope(raw, TYP_LOG_ENTRY, ENTRY_LIMIT)
        return open_entry(raw), env.kid
    except Reject as e:
        raise Reject("PROOF_MISMATCH", f"entry: {e.code}") from None


def open_entry(raw: bytes) -> dict:
    """A log entry's payload (log §1, format 2); its signature is not checked here."""
    env = ts.open_envelope(raw, TYP_LOG_ENTRY, ENTRY_LIMIT)
    p = ts.decode(env.payload, ENTRY_LIMIT)
    require(type(p) is dict and ts.is_uint(p.get("v")) and p["v"] == ENTRY_VERSION and type(p.get("t")) is str,
            "CLAIMS_INVALID", "entry")
    si = p.get("si")  # cert.issued: the status list index, mandatory, below 2^32 (status.md §5.1)
    require(p["t"] != "cert.issued" or (ts.is_uint(si) and si < 2**32), "CLAIMS_INVALID", "cert.issued without si")
    return p


# ---------------------------------------------------------------- log §8: verification receipts

def verify_receipt(raw: bytes, root_pk: bytes) -> dict:
    """A verification receipt against the verifying region's root; returns its item."""
    r = ts.decode(raw, 70_000)
    require(ts.closed_map(r, {"item", "i", "path", "e", "li"}) and type(r["item"]) is bytes
            and ts.is_uint(r["i"]) and type(r["path"]) is list and len(r["path"]) <= 64
            and all(ts.is_bytes(h, 32) for h in r["path"]) and type(r["e"]) is bytes and ts.is_uint(r["li"]),
            "CLAIMS_INVALID", "receipt")
    item = ts.decode(r["item"], 1024)
    require(ts.closed_map(item, {"v", "rc", "at", "d", "ok", "c"}, {"id", "st", "rq", "n"})
            and item["v"] == 1 and (item["ok"] is True) == (item["c"] == "OK"), "CLAIMS_INVALID", "item")
    env = ts.open_envelope(r["e"], TYP_LOG_ENTRY, ENTRY_LIMIT)
    require(env.kid == ts.kid(root_pk), "KID_UNKNOWN", "receipts entry signer")
    require(ts.verify_strict(r["e"], root_pk), "SIGNATURE_INVALID", "receipts entry")
    entry = ts.decode(env.payload, ENTRY_LIMIT)
    require(type(entry) is dict and entry.get("v") == ENTRY_VERSION and entry.get("t") == "receipts"
            and entry.get("rc") == item["rc"], "CLAIMS_INVALID", "not a receipts entry")
    require(verify_inclusion(leaf_hash(r["item"]), r["i"], entry["n"], entry["root"], r["path"]),
            "SIGNATURE_INVALID", "item not in its batch")
    return item


# ---------------------------------------------------------------- sharing §3.4: verification proofs

def _origin_of(name: str, rc: str) -> bool:
    parts = name.split("/")
    return len(parts) >= 4 and parts[-3] == rc and parts[-2] == "log" and parts[-1] != ""


def verify_proof(raw: bytes, trust: ts.TrustStore, now: int, requester: str, nonce: bytes | None):
    """sharing §3.4 steps 0-14 with no witnesses (quorum 0). Returns (code, the item's code or None)."""
    try:
        item = _verify_proof(raw, trust, now, requester, nonce)
        return "OK", item["c"]
    except Reject as e:
        return e.code, None


def _verify_proof(raw, trust, now, requester, nonce):
    require(now < trust.exp, "TRUST_BUNDLE_EXPIRED")                                         # 0
    env = ts.open_envelope(raw, TYP_PROOF, PROOF_LIMIT)                                       # 1-2
    root = trust.region_by_kid.get(env.kid)                                                  # 3
    require(root is not None, "KID_UNKNOWN", env.kid.hex())
    require(ts.verify_strict(raw, root["pk"]), "SIGNATURE_INVALID", "proof")                 # 4
    p = ts.decode(env.payload, PROOF_LIMIT)                                                  # 5
    require(ts.closed_map(p, {"v", "rc", "r", "lk"}, {"ip", "sp"}) and p["v"] == 1 and ts.is_region_code(p["rc"])
            and type(p["r"]) is bytes and type(p["lk"]) is str
            and all(type(p[k]) is str for k in ("ip", "sp") if k in p), "CLAIMS_INVALID", "proof payload")
    require(p["rc"] == root["rc"], "REGION_MISMATCH", "proof region")                        # 6
    item = verify_receipt(p["r"], root["pk"])                                                # 7
    require(item["rc"] == p["rc"], "REGION_MISMATCH", "item region")
    require(item.get("rq") == requester and (nonce is None or item.get("n") == nonce),      # 8
            "PROOF_MISMATCH", "requester or nonce")
    try:                                                                                     # 9
        name, key_type, key = parse_vkey(p["lk"])
    except (ValueError, Reject):
        raise Reject("LOG_PROOF_INVALID", "log key") from None
    require(key_type == 0x01 and _origin_of(name, p["rc"]), "LOG_PROOF_INVALID", "log key origin")
    issued = None
    if "ip" in p:                                                                            # 10
        entry, index, note = verify_tlog_proof(p["ip"], name, key)
        e, signer = _proof_entry(entry)
        require(e["t"] == "cert.issued" and e["rc"] == p["rc"] and e["id"] == item.get("id")
                and e["d"] == item["d"], "PROOF_MISMATCH", "issuance entry")
        seal = trust.seals.get(e["sk"])                              # signed by its own seal
        require(signer == e["sk"] and seal is not None and seal["rc"] == p["rc"]
                and ts.verify_strict(entry, seal["pk"]), "LOG_PROOF_INVALID", "issuance entry signature")
        issued = (index, note, seal["au"])
    if "sp" in p:                                                                            # 11
        require(issued is not None, "PROOF_MISMATCH", "status without issuance")
        entry, index, note = verify_tlog_proof(p["sp"], name, key)
        require(note == issued[1], "PROOF_MISMATCH", "different checkpoints")
        e, signer = _proof_entry(entry)
        require(index > issued[0] and e["t"] == "cert.status" and e["rc"] == p["rc"] and e["id"] == item.get("id")
                and e["to"] == item.get("st"), "PROOF_MISMATCH", "status entry")
        if signer == ts.kid(root["pk"]):                             # the region root, or
            acting = root["pk"]
        else:                                                        # a seal of the issuing agency
            seal = trust.seals.get(signer)
            ok = seal is not None and seal["rc"] == p["rc"] and seal["au"] == issued[2] and e["op"] != 11
            acting = seal["pk"] if ok else None
        require(acting is not None and ts.verify_strict(entry, acting), "LOG_PROOF_INVALID",
                "status entry signature")
    if item["ok"]:                                                                           # 12
        require(issued is not None and item.get("st") == 1, "PROOF_MISMATCH", "valid without evidence")
    require(issued is None or "st" in item, "PROOF_MISMATCH", "logged without state")
    return item                                                                              # 14
