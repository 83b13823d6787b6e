"""Tongban v1, re-implemented in Python from specs/ alone (never from the Rust sources).

Section references are to specs/encoding.md (enc), trust.md, certificate.md (cert), status.md and
verification.md (ver). Every check raises Reject(code) with the spec's stable result code.
Certificates are of claims format 2 (cert §2: with a status list index); their status comes from status
lists (status.md §5) and, for a region no usable list covers, status snapshots (trust §6).
COSE_Sign1 decoding, verification and signing go through pycose; the extra "strict" Ed25519 rules of
enc §2.2 (S < L, no small-order R or key) are checked here, in pure Python, before pycose is called.
The sm2 suite (enc §2.3, §2.4) uses gmssl's SM2 and SM3; the key and range checks of the spec are
written out here.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field

import blake3
import cbor2
from pycose.algorithms import EdDSA
from pycose.headers import KID, Algorithm
from pycose.keys import OKPKey
from pycose.messages import Sign1Message
from gmssl import sm2 as gm_sm2
from gmssl import sm3 as gm_sm3

# enc §2, §2.3, cert §4
ALG_EDDSA = -8
ALG_SM2 = -65581
SUITE_OF_ALG = {ALG_EDDSA: "ed25519", ALG_SM2: "sm2"}
LABEL_ALG, LABEL_KID, LABEL_TYP = 1, 4, 16
LABEL_DISCLOSURES = -65537
TYP_REGION = "application/tongban-region+cbor"
TYP_SEAL = "application/tongban-seal+cbor"
TYP_REVOCATION = "application/tongban-seal-revocation+cbor"
TYP_TRUST = "application/tongban-trust+cbor"
TYP_STATUS = "application/tongban-status+cbor"
TYP_CERT = "application/tongban-ecert+cwt"
TYP_STATUS_LIST = "application/statuslist+cwt"

# enc §5, ver §1
OBJECT_LIMIT = 65_536
BUNDLE_LIMIT = 16 * 1024 * 1024
SNAPSHOT_LIMIT = 256 * 1024 * 1024
STATUS_LIST_LIMIT = 64 * 1024 * 1024       # status.md §5.3
INFLATED_LIMIT = 256 * 1024 * 1024         # status.md §5.4: the inflated "lst"
MAX_TIME = 253_402_300_799
SKEW = 300


class Reject(Exception):
    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code, self.detail = code, detail


def require(ok: bool, code: str, detail: str = "") -> None:
    if not ok:
        raise Reject(code, detail)


# ---------------------------------------------------------------- enc §3, §4: key ids and digests

def sm3(data: bytes) -> bytes:
    return bytes.fromhex(gm_sm3.sm3_hash(list(data)))


def key_suite(pk: bytes) -> str | None:
    """enc §3: the length says the suite."""
    return {32: "ed25519", 65: "sm2"}.get(len(pk))


def kid(pk: bytes) -> bytes:
    if key_suite(pk) == "sm2":
        return sm3(b"tongban v1 key id" + b"\x02" + pk)[:16]
    return blake3.blake3(b"\x01" + pk, derive_key_context="tongban v1 key id").digest()[:16]


def disclosure_digest(disclosure: bytes, suite: str = "ed25519") -> bytes:
    if suite == "sm2":
        return sm3(b"tongban v1 disclosure" + disclosure)
    return blake3.blake3(disclosure, derive_key_context="tongban v1 disclosure").digest()


def bstr(b: bytes) -> bytes:
    return cbor2.dumps(bytes(b))


def certificate_digest(protected: bytes, payload: bytes, signature: bytes, suite: str = "ed25519") -> bytes:
    bare = b"\xd2\x84" + bstr(protected) + b"\xa0" + bstr(payload) + bstr(signature)
    return sm3(bare) if suite == "sm2" else blake3.blake3(bare).digest()


# ---------------------------------------------------------------- enc §1: Tongban CBOR

def check_cbor(data: bytes, limit: int, tag_ok: bool = False):
    """Check the exact bytes against enc §1. Returns (top-level tag or None, untagged item bytes)."""
    require(len(data) > 0, "CBOR_TRUNCATED", "empty input")
    end = _item(data, 0, 1, limit, tag_ok, is_key=False)
    require(end == len(data), "CBOR_TRAILING_BYTES", f"{len(data) - end} bytes after the item")
    major, arg, start = _head(data, 0)
    return (arg, data[start:]) if major == 6 else (None, data)


def _head(data: bytes, pos: int):
    require(pos < len(data), "CBOR_TRUNCATED", f"no initial byte at {pos}")
    ib = data[pos]
    major, ai = ib >> 5, ib & 31
    size = {24: 1, 25: 2, 26: 4, 27: 8}.get(ai, 0)
    require(ib != 0xFF, "CBOR_MALFORMED", f"break at {pos}")                             # rule 2
    require(major != 7 or ib in (0xF4, 0xF5, 0xF6), "CBOR_UNSUPPORTED", f"simple/float at {pos}")
    require(ai not in (28, 29, 30), "CBOR_MALFORMED", f"reserved info at {pos}")         # rule 4
    if ai == 31:                                                                        # rules 5, 6
        raise Reject("CBOR_MALFORMED" if major in (0, 1, 6) else "CBOR_INDEFINITE_LENGTH", f"at {pos}")
    require(pos + 1 + size <= len(data), "CBOR_TRUNCATED", f"argument cut at {pos}")    # rule 7
    arg = ai if ai < 24 else int.from_bytes(data[pos + 1:pos + 1 + size], "big")
    require(ai < 24 or arg >= (24 if ai == 24 else 1 << (4 * size)), "CBOR_NON_MINIMAL", f"at {pos}")
    return major, arg, pos + 1 + size


def _item(data: bytes, pos: int, depth: int, limit: int, tag_ok: bool, is_key: bool) -> int:
    at = pos
    major, arg, pos = _head(data, pos)
    if is_key:  # map keys: integer or text only, reported at the key's head
        require(major in (0, 1, 3), "CBOR_UNSUPPORTED", f"map key of major type {major} at {at}")
    if major == 6:                                                                        # rule 9
        require(tag_ok and depth == 1, "CBOR_UNSUPPORTED", f"tag at {at}")
        return _item(data, pos, depth, limit, False, False)  # a tag on a tag is misplaced
    if major in (0, 1, 7):
        return pos
    require(major not in (4, 5) or depth <= 16, "CBOR_LIMIT_EXCEEDED", f"nesting at {at}")  # rule 10
    require(arg <= limit, "CBOR_LIMIT_EXCEEDED", f"length {arg} at {at}")                 # rule 11
    left = len(data) - pos
    require(arg * (2 if major == 5 else 1) <= left, "CBOR_TRUNCATED", f"length at {at}")  # rule 12
    if major in (2, 3):
        if major == 3:                                                                    # rule 13
            try:
                data[pos:pos + arg].decode("utf-8")
            except UnicodeDecodeError:
                raise Reject("CBOR_MALFORMED", f"invalid UTF-8 at {at}") from None
        return pos + arg
    if major == 4:
        for _ in range(arg):
            pos = _item(data, pos, depth + 1, limit, False, False)
        return pos
    keys = set()
    for _ in range(arg):
        key_at = pos
        pos = _item(data, pos, depth + 1, limit, False, True)
        require(data[key_at:pos] not in keys, "CBOR_DUPLICATE_KEY", f"at {key_at}")
        keys.add(data[key_at:pos])
        pos = _item(data, pos, depth + 1, limit, False, False)
    return pos


def decode(data: bytes, limit: int):
    """enc §1 check, then decode (no tag allowed)."""
    check_cbor(data, limit)
    return cbor2.loads(data)


# ---------------------------------------------------------------- enc §2.2: strict Ed25519

_P = 2**255 - 19
_D = -121665 * pow(121666, -1, _P) % _P
_L = 2**252 + 27742317777372353535851937790883648493


def _decompress(b: bytes):
    """Edwards point from 32 bytes (y reduced mod p, so non-canonical encodings count too)."""
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    y %= _P
    x2 = (y * y - 1) * pow(_D * y * y + 1, -1, _P) % _P
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * pow(2, (_P - 1) // 4, _P) % _P
    if (x * x - x2) % _P:
        return None
    if (x & 1) != (b[31] >> 7):
        x = -x % _P
    return x, y


def _double(pt):
    x, y = pt
    t = _D * x * x * y * y
    return (2 * x * y) * pow(1 + t, -1, _P) % _P, (y * y + x * x) * pow(1 - t, -1, _P) % _P


# enc §2.4: the curve of GB/T 32918.5
SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
SM2_A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
SM2_ID = b"1234567812345678"


def is_acceptable_sm2_key(b: bytes) -> bool:
    """enc §3: 0x04 || x || y, x and y below p, on y^2 = x^3 + ax + b."""
    if len(b) != 65 or b[0] != 0x04:
        return False
    x, y = int.from_bytes(b[1:33], "big"), int.from_bytes(b[33:], "big")
    return x < SM2_P and y < SM2_P and (y * y - (x * x * x + SM2_A * x + SM2_B)) % SM2_P == 0


def _gm(pk: bytes = b"", d: int | None = None) -> gm_sm2.CryptSM2:
    """gmssl's SM2 object; its public key set after construction, as raw x || y hex (its constructor
    strips leading '0' and '4' digits, not just a 04 prefix)."""
    obj = gm_sm2.CryptSM2(private_key="" if d is None else "%064x" % d, public_key="")
    obj.public_key = pk[1:].hex()
    return obj


def sm2_verify(pk: bytes, message: bytes, sig: bytes) -> bool:
    """enc §2.4, steps 1-5 (the ranges here; Z_A, e and the equation in gmssl, ID_A its default)."""
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (1 <= r < SM2_N and 1 <= s < SM2_N) or not is_acceptable_sm2_key(pk):
        return False
    return bool(_gm(pk).verify_with_sm3(sig.hex(), message))


def sm2_public_key(seed: bytes) -> bytes:
    """enc §3: the seed is d, big-endian, in [1, n - 2]; the public key is [d]G."""
    d = int.from_bytes(seed, "big")
    require(1 <= d <= SM2_N - 2, "INTERNAL", "seed is not an SM2 private key")
    g = gm_sm2.default_ecc_table["g"]
    return bytes.fromhex("04" + _gm(d=d)._kg(d, g))


def sm2_sign(seed: bytes, message: bytes) -> bytes:
    """An SM2 signature r || s with a random nonce (enc §2.4: verifiers must not depend on the nonce)."""
    pk = sm2_public_key(seed)
    while True:
        sig = _gm(pk, int.from_bytes(seed, "big")).sign_with_sm3(message, os.urandom(32).hex())
        if sig is not None:
            return bytes.fromhex(sig)


def is_acceptable_key(b: bytes) -> bool:
    """enc §2.2, §3: an sm2 key as above, or 32 bytes, the canonical encoding (y < p, no sign bit on
    x = 0) of an Ed25519 curve point."""
    if len(b) == 65:
        return is_acceptable_sm2_key(b)
    if len(b) != 32:
        return False
    y = int.from_bytes(b, "little") & ((1 << 255) - 1)
    if y >= _P:
        return False
    pt = _decompress(b)
    if pt is None:
        return False
    return not (pt[0] == 0 and b[31] >> 7)


def check_key(pk: bytes, what: str) -> None:
    """trust §5.1: a key that is not acceptable is TRUST_BUNDLE_INVALID, a weak one WEAK_KEY."""
    require(is_acceptable_key(pk), "TRUST_BUNDLE_INVALID", f"{what}: not an acceptable key")
    require(not is_small_order(pk), "WEAK_KEY", what)


def is_small_order(b: bytes) -> bool:
    if len(b) != 32:
        return False  # only Ed25519 keys can be weak
    pt = _decompress(b)
    if pt is None:
        return False
    for _ in range(3):
        pt = _double(pt)
    return pt == (0, 1)


def okp_public(pk: bytes) -> OKPKey:
    return OKPKey(crv="ED25519", x=pk)


def okp_private(seed: bytes) -> OKPKey:
    return OKPKey(crv="ED25519", d=seed)


def public_key(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    return Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """enc §2.1, written out by hand: 0x84 0x6a "Signature1" bstr(protected) 0x40 bstr(payload)."""
    return b"\x84\x6aSignature1" + bstr(protected) + b"\x40" + bstr(payload)


def verify_strict(raw: bytes, pk: bytes) -> bool:
    """enc §2.2: pycose verifies the COSE_Sign1 `raw` under pk; the strict extras are added here.
    An sm2 object (enc §2.4) is verified over the Sig_structure of the exact received bytes."""
    try:
        item = cbor2.loads(raw)
        env = item.value if isinstance(item, cbor2.CBORTag) else item
        alg = cbor2.loads(env[0]).get(LABEL_ALG)
    except Exception:  # not an envelope: nothing verifies
        return False
    if SUITE_OF_ALG.get(alg) != key_suite(pk):
        return False
    if alg == ALG_SM2:
        return len(env[3]) == 64 and sm2_verify(pk, sig_structure(env[0], env[2]), env[3])
    msg = Sign1Message.decode(raw)
    sig = msg.signature
    if is_small_order(pk) or is_small_order(sig[:32]) or int.from_bytes(sig[32:], "little") >= _L:
        return False
    msg.key = okp_public(pk)
    try:
        return bool(msg.verify_signature())
    except Exception:  # e.g. a key that is not a curve point
        return False


# ---------------------------------------------------------------- enc §2, ver §2 steps 1-6: envelope

@dataclass
class Envelope:
    raw: bytes
    protected: bytes
    header: dict
    unprotected: dict
    payload: bytes
    signature: bytes

    @property
    def kid(self) -> bytes:
        return self.header[LABEL_KID]

    @property
    def suite(self) -> str:
        return SUITE_OF_ALG[self.header[LABEL_ALG]]


def open_envelope(data: bytes, typ: str, limit: int = OBJECT_LIMIT, disclosures_ok: bool = False) -> Envelope:
    require(len(data) <= limit, "TOO_LARGE", f"{len(data)} bytes")
    tag, item = check_cbor(data, limit, tag_ok=True)
    require(tag == 18, "COSE_WRONG_TAG", f"tag {tag}")
    arr = cbor2.loads(item)
    require(type(arr) is list and len(arr) == 4 and [type(x) for x in arr] == [bytes, dict, bytes, bytes]
            and len(arr[3]) == 64, "COSE_MALFORMED")
    protected, unprotected, payload, signature = arr
    header = decode(protected, limit)
    require(type(header) is dict, "HEADER_INVALID", "protected header is not a map")
    alg = header.get(LABEL_ALG, ALG_EDDSA)
    require(type(alg) is int and alg in SUITE_OF_ALG, "ALG_UNSUPPORTED", repr(alg))
    require(set(header) == {LABEL_ALG, LABEL_KID, LABEL_TYP}, "HEADER_INVALID", f"labels {sorted(map(str, header))}")
    require(type(header[LABEL_KID]) is bytes and len(header[LABEL_KID]) == 16, "HEADER_INVALID", "kid")
    require(type(header[LABEL_TYP]) is str, "HEADER_INVALID", "typ")
    require(header[LABEL_TYP] == typ, "WRONG_TYPE", header[LABEL_TYP])
    if unprotected:
        d = unprotected.get(LABEL_DISCLOSURES)
        require(disclosures_ok and set(unprotected) == {LABEL_DISCLOSURES} and type(d) is list
                and 1 <= len(d) <= 256 and all(type(x) is bytes for x in d), "HEADER_INVALID", "unprotected")
    return Envelope(data, protected, header, dict(unprotected), payload, signature)


# ---------------------------------------------------------------- value rules (enc §5, trust §1, cert §1)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
MOD36_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
IDENTIFIER_PREFIX = "1.2.156.3005.2."


def uscc_check_char(first17: str) -> str:
    """GB 32100: check = 31 - (sum of value*weight mod 31), 31 -> 0."""
    c = 31 - sum(USCC_ALPHABET.index(ch) * w for ch, w in zip(first17, USCC_WEIGHTS)) % 31
    return USCC_ALPHABET[0 if c == 31 else c]


def is_uscc(s) -> bool:
    return (type(s) is str and len(s) == 18 and all(ch in USCC_ALPHABET for ch in s)
            and s[17] == uscc_check_char(s[:17]))


def mod37_36_check_char(s: str) -> str:
    """ISO/IEC 7064 MOD 37,36 (cert §1)."""
    p = 36
    for ch in s:
        t = (p + MOD36_ALPHABET.index(ch)) % 36 or 36
        p = (2 * t) % 37
    return MOD36_ALPHABET[(37 - p) % 36]


def is_region_code(s) -> bool:
    return type(s) is str and re.fullmatch(r"[0-9]{6}", s) is not None and 11 <= int(s[:2]) <= 82


def split_identifier(s) -> dict | None:
    """cert §1: the parts of a well-formed identifier with a correct check character, else None."""
    if type(s) is not str or len(s.encode()) > 128 or not s.isascii() or not s.startswith(IDENTIFIER_PREFIX):
        return None
    parts = s[len(IDENTIFIER_PREFIX):].split(".")
    if len(parts) != 5:
        return None
    typ, issuer, serial, version, check = parts
    ok = (len(typ) == 21 and is_uscc(typ[:18]) and re.fullmatch(r"[0-9]{3}", typ[18:])
          and (is_uscc(issuer) or is_region_code(issuer))
          and re.fullmatch(r"[0-9A-Z]{1,32}", serial) and re.fullmatch(r"[0-9]{3}", version)
          and check == mod37_36_check_char(typ + issuer + serial + version))
    return dict(type=typ, issuer=issuer, serial=serial, version=version, check=check) if ok else None


def make_identifier(typ: str, issuer: str, serial: str, version: str = "001") -> str:
    check = mod37_36_check_char(typ + issuer + serial + version)
    return f"{IDENTIFIER_PREFIX}{typ}.{issuer}.{serial}.{version}.{check}"


def is_key_bytes(v) -> bool:
    """enc §5 "key": 32 bytes (Ed25519) or 65 (SM2)."""
    return type(v) is bytes and len(v) in (32, 65)


def is_uint(v) -> bool:
    return type(v) is int and v >= 0


def is_time(v) -> bool:
    return is_uint(v) and v <= MAX_TIME


def is_short_text(v) -> bool:
    return (type(v) is str and 1 <= len(v.encode()) <= 256
            and not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in v))  # category Cc


def is_bytes(v, n: int) -> bool:
    return type(v) is bytes and len(v) == n


def closed_map(m, required: set, optional: set = frozenset()) -> bool:
    return type(m) is dict and required <= set(m) <= required | optional


# ---------------------------------------------------------------- trust §2-§5: trust objects

SEAL_TYPES = {"official", "approval", "licence", "business", "other"}
PICTURE_TYPES = {"image/png", "image/svg+xml", "image/jpeg", "application/ofd"}


def region_payload_ok(p) -> bool:
    return (closed_map(p, {"v", "rc", "rn", "pk", "vf", "vu"}) and p["v"] == 1 and is_uint(p["v"])
            and is_region_code(p["rc"]) and is_short_text(p["rn"]) and is_key_bytes(p["pk"])
            and is_time(p["vf"]) and is_time(p["vu"]) and p["vf"] < p["vu"])


def is_type_code(s) -> bool:
    """cert §1: the 21-character type part: a USCC, then 3 digits."""
    return (type(s) is str and len(s) == 21 and s.isascii() and is_uscc(s[:18])
            and re.fullmatch(r"[0-9]{3}", s[18:]) is not None)


def sharing_scope_ok(ct) -> bool:
    """trust §3 "ct": 1-64 type codes, sorted bytewise ascending, unique."""
    return (type(ct) is list and 1 <= len(ct) <= 64 and all(is_type_code(t) for t in ct)
            and all(a.encode() < b.encode() for a, b in zip(ct, ct[1:])))


def seal_payload_ok(p) -> bool:
    keys = {"v", "sid", "st", "sn", "an", "au", "rc", "pk", "cd", "vf", "vu", "pic"}
    return (closed_map(p, keys, {"ct"}) and is_uint(p["v"]) and p["v"] == 1
            and ("ct" not in p or sharing_scope_ok(p["ct"]))
            and type(p["sid"]) is str and re.fullmatch(r"[0-9A-Za-z-]{1,64}", p["sid"]) is not None
            and type(p["st"]) is str and p["st"] in SEAL_TYPES and is_short_text(p["sn"]) and is_short_text(p["an"])
            and is_uscc(p["au"]) and is_region_code(p["rc"]) and is_key_bytes(p["pk"])
            and all(is_time(p[k]) for k in ("cd", "vf", "vu")) and p["vf"] < p["vu"]
            and closed_map(p["pic"], {"d", "mt", "sz"}) and is_bytes(p["pic"]["d"], 32)
            and type(p["pic"]["mt"]) is str and p["pic"]["mt"] in PICTURE_TYPES
            and is_uint(p["pic"]["sz"]) and 1 <= p["pic"]["sz"] <= 16 * 1024 * 1024)


def revocation_payload_ok(p) -> bool:
    return (closed_map(p, {"v", "rc", "sk", "ra", "rsn"}) and is_uint(p["v"]) and p["v"] == 1
            and is_region_code(p["rc"]) and is_bytes(p["sk"], 16) and is_time(p["ra"]) and is_short_text(p["rsn"]))


def bundle_payload_ok(p) -> bool:
    return (closed_map(p, {"v", "ver", "iat", "exp", "fed", "regions", "seals", "revocations"})
            and is_uint(p["v"]) and p["v"] == 1 and is_uint(p["ver"]) and is_time(p["iat"]) and is_time(p["exp"])
            and p["iat"] < p["exp"] and closed_map(p["fed"], {"name", "pk"}) and is_short_text(p["fed"]["name"])
            and is_key_bytes(p["fed"]["pk"])
            and all(type(p[k]) is list and all(type(x) is bytes for x in p[k])
                    for k in ("regions", "seals", "revocations")))


@dataclass
class TrustStore:
    fed_pk: bytes
    signer_kid: bytes                                   # who signed the bundle
    exp: int
    regions: dict = field(default_factory=dict)         # rc -> region payload
    region_by_kid: dict = field(default_factory=dict)   # kid -> region payload
    seals: dict = field(default_factory=dict)           # kid -> seal payload
    revoked: dict = field(default_factory=dict)         # seal kid -> ra


def _signed_object(raw: bytes, typ: str, signers: dict, payload_ok) -> tuple[dict, dict]:
    """A nested trust object: envelope, signer by kid, strict signature, payload. Returns (signer, payload)."""
    env = open_envelope(raw, typ, OBJECT_LIMIT)
    signer = signers.get(env.kid)
    require(signer is not None, "TRUST_BUNDLE_INVALID", f"{typ}: unknown signer {env.kid.hex()}")
    require(verify_strict(raw, signer["pk"]), "TRUST_BUNDLE_INVALID", f"{typ}: signature")
    payload = decode(env.payload, OBJECT_LIMIT)
    require(payload_ok(payload), "TRUST_BUNDLE_INVALID", f"{typ}: payload")
    return signer, payload


def load_trust_bundle(data: bytes, now: int, pinned_federation_kid: bytes | None = None) -> TrustStore:
    """trust §5.1, steps 1-9."""
    require(len(data) <= BUNDLE_LIMIT, "TOO_LARGE")
    try:
        env = open_envelope(data, TYP_TRUST, BUNDLE_LIMIT)                                   # 1
        p = decode(env.payload, BUNDLE_LIMIT)                                               # 2
    except Reject as e:
        raise Reject("TRUST_BUNDLE_INVALID", e.code) from None
    require(bundle_payload_ok(p), "TRUST_BUNDLE_INVALID", "bundle payload")
    fed_pk = p["fed"]["pk"]                                                                 # 3
    check_key(fed_pk, "federation key")
    require(pinned_federation_kid is None or kid(fed_pk) == pinned_federation_kid, "TRUST_BUNDLE_UNTRUSTED")
    store = TrustStore(fed_pk=fed_pk, signer_kid=env.kid, exp=p["exp"])
    try:
        roots = []
        for raw in p["regions"]:                                                            # 4
            _, r = _signed_object(raw, TYP_REGION, {kid(fed_pk): {"pk": fed_pk}}, region_payload_ok)
            check_key(r["pk"], f"region {r['rc']}")  # a payload rule: before rc is compared
            require(r["rc"] not in store.regions, "TRUST_BUNDLE_INVALID", f"region {r['rc']} twice")
            store.regions[r["rc"]] = store.region_by_kid[kid(r["pk"])] = r
            roots.append(r)
        signers = {kid(fed_pk): fed_pk, **{k: r["pk"] for k, r in store.region_by_kid.items()}}  # 5
        require(env.kid in signers, "TRUST_BUNDLE_INVALID", "bundle signer unknown")
        require(verify_strict(data, signers[env.kid]), "TRUST_BUNDLE_INVALID", "bundle signature")
        seals = []
        for raw in p["seals"]:                                                              # 6
            root, s = _signed_object(raw, TYP_SEAL, store.region_by_kid, seal_payload_ok)
            check_key(s["pk"], f"seal {s['sid']}")  # a payload rule: before rc and cd
            require(s["rc"] == root["rc"], "TRUST_BUNDLE_INVALID", f"seal {s['sid']}: region")
            require(root["vf"] <= s["cd"] < root["vu"], "TRUST_BUNDLE_INVALID", f"seal {s['sid']}: cd")
            seals.append(s)
        suite = key_suite(fed_pk)                                                           # 7
        require(all(key_suite(x["pk"]) == suite for x in [*roots, *seals]), "TRUST_BUNDLE_INVALID",
                "a key of another suite than the federation root's")
        kids = [kid(x["pk"]) for x in [p["fed"], *roots, *seals]]
        sids = [(s["rc"], s["sid"]) for s in seals]
        require(len(set(kids)) == len(kids) and len(set(sids)) == len(sids), "TRUST_BUNDLE_INVALID", "not unique")
        store.seals = {kid(s["pk"]): s for s in seals}
        for raw in p["revocations"]:                                                        # 8
            root, r = _signed_object(raw, TYP_REVOCATION, store.region_by_kid, revocation_payload_ok)
            seal = store.seals.get(r["sk"])
            require(r["rc"] == root["rc"] and seal is not None and seal["rc"] == r["rc"],
                    "TRUST_BUNDLE_INVALID", "revocation of an unknown seal")
            require(r["sk"] not in store.revoked, "TRUST_BUNDLE_INVALID", "second revocation")
            store.revoked[r["sk"]] = r["ra"]
    except Reject as e:
        if e.code in ("WEAK_KEY", "TRUST_BUNDLE_INVALID"):
            raise
        raise Reject("TRUST_BUNDLE_INVALID", e.code) from None
    require(now < store.exp, "TRUST_BUNDLE_EXPIRED")                                           # 9
    return store


# ---------------------------------------------------------------- trust §6: status snapshots

STATE_CODES = {2: "STATUS_SUSPENDED", 3: "STATUS_REVOKED", 4: "STATUS_CANCELLED", 5: "STATUS_EXPIRED",
               6: "STATUS_TRANSFERRED_OUT", 7: "STATUS_REVOKED_PENALTY", 99: "STATUS_OTHER"}


@dataclass
class Snapshot:
    rc: str
    ver: int
    iat: int
    states: dict      # identifier -> state
    fulfilled: set


def _status_entry_ok(e) -> bool:
    return (type(e) is list and len(e) in (3, 4) and split_identifier(e[0]) is not None
            and type(e[1]) is int and e[1] in STATE_CODES and is_time(e[2])
            and (len(e) == 3 or (e[1] == 99 and is_short_text(e[3]))))


def load_snapshot(data: bytes, trust: TrustStore) -> Snapshot:
    try:
        require(len(data) <= SNAPSHOT_LIMIT, "TOO_LARGE")
        env = open_envelope(data, TYP_STATUS, SNAPSHOT_LIMIT)
        root = trust.region_by_kid.get(env.kid)
        require(root is not None and verify_strict(data, root["pk"]), "SIGNATURE_INVALID")
        p = decode(env.payload, SNAPSHOT_LIMIT)
        ok = (closed_map(p, {"v", "rc", "ver", "iat", "st", "pf"}) and is_uint(p["v"]) and p["v"] == 1
              and p["rc"] == root["rc"] and is_uint(p["ver"]) and is_time(p["iat"])
              and type(p["st"]) is list and all(_status_entry_ok(e) for e in p["st"])
              and type(p["pf"]) is list and all(split_identifier(i) for i in p["pf"]))
        require(ok, "CLAIMS_INVALID")
        ids = [e[0] for e in p["st"]]
        for lst in (ids, p["pf"]):
            enc = [i.encode() for i in lst]
            require(all(a < b for a, b in zip(enc, enc[1:])), "CLAIMS_INVALID", "not sorted/unique")
    except Reject as e:
        raise Reject("STATUS_SNAPSHOT_INVALID", e.code) from None
    return Snapshot(p["rc"], p["ver"], p["iat"], {e[0]: e[1] for e in p["st"]}, set(p["pf"]))


# ---------------------------------------------------------------- status.md §5: status lists

STATUS_URI_PREFIX = "urn:tongban:status:"
# status.md §5.2: list value -> state (§1); 0x03 is state 01 with the promise not fulfilled
LIST_STATES = {0x00: 1, 0x01: 3, 0x02: 2, 0x03: 1, 0x0B: 4, 0x0C: 5, 0x0D: 6, 0x0E: 7, 0x0F: 99}
VALUE_VALID = 0x00  # the only value that records a promise as fulfilled (ver §2 step 15)
# bytes both of whose 4-bit entries are defined values (0x04-0x0A are reserved)
_DEFINED_BYTES = bytes(b for b in range(256) if (b & 0xF) in LIST_STATES and (b >> 4) in LIST_STATES)


def status_uri(rc: str) -> str:
    """cert §2, status.md §5.3: the URI of region rc's status list."""
    return STATUS_URI_PREFIX + rc


@dataclass
class StatusList:
    rc: str
    ver: int
    iat: int
    exp: int
    ttl: int
    lst: bytes        # the inflated entries, 4 bits each, low half of a byte first

    def __len__(self) -> int:
        """status.md §5.3: 2 * len(inflated lst) entries."""
        return 2 * len(self.lst)

    def value(self, i: int) -> int:
        b = self.lst[i >> 1]
        return b >> 4 if i & 1 else b & 0x0F


def inflate_bounded(data: bytes, limit: int) -> bytes:
    """One complete ZLIB stream (RFC 1950), nothing after it, inflating to at most limit bytes."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as e:
        raise Reject("STATUS_LIST_INVALID", f"lst: {e}") from None
    require(len(out) <= limit, "STATUS_LIST_INVALID", f"lst inflates to more than {limit} bytes")
    require(d.eof, "STATUS_LIST_INVALID", "lst: truncated ZLIB stream")
    require(not d.unused_data, "STATUS_LIST_INVALID", "lst: bytes after the ZLIB stream")
    return out


def _status_list_payload_ok(p) -> bool:
    """status.md §5.3: closed and well-typed."""
    sl = p.get(65533) if type(p) is dict else None
    return (closed_map(p, {2, 4, 6, 65533, 65534, "v", "rc", "ver"})
            and type(p[2]) is str and is_time(p[4]) and is_time(p[6])
            and is_uint(p[65534]) and p[65534] > 0
            and closed_map(sl, {"bits", "lst"}) and is_uint(sl["bits"]) and type(sl["lst"]) is bytes
            and is_uint(p["v"]) and p["v"] == 1 and is_region_code(p["rc"]) and is_uint(p["ver"]))


def load_status_list(data: bytes, trust: TrustStore) -> StatusList:
    """status.md §5.4, loading: any failure is STATUS_LIST_INVALID."""
    try:
        require(len(data) <= STATUS_LIST_LIMIT, "TOO_LARGE")
        env = open_envelope(data, TYP_STATUS_LIST, STATUS_LIST_LIMIT)
        root = trust.region_by_kid.get(env.kid)
        require(root is not None, "KID_UNKNOWN", "not a region root of the bundle")
        require(verify_strict(data, root["pk"]), "SIGNATURE_INVALID")
        p = decode(env.payload, STATUS_LIST_LIMIT)
    except Reject as e:
        raise Reject("STATUS_LIST_INVALID", f"{e.code}: {e.detail}") from None
    require(_status_list_payload_ok(p), "STATUS_LIST_INVALID", "payload not closed and well-typed")
    require(p[65533]["bits"] == 4, "STATUS_LIST_INVALID", f"bits {p[65533]['bits']}")
    require(p[2] == status_uri(p["rc"]), "STATUS_LIST_INVALID", f"sub {p[2]!r}")
    require(p["rc"] == root["rc"], "STATUS_LIST_INVALID", f"signed by the root of {root['rc']}")
    require(p[4] > p[6], "STATUS_LIST_INVALID", "exp not after iat")
    lst = inflate_bounded(p[65533]["lst"], INFLATED_LIMIT)
    bad = lst.translate(None, _DEFINED_BYTES)
    if bad:
        i = 2 * lst.index(bad[0]) + ((bad[0] & 0xF) in LIST_STATES)  # the high half when the low is defined
        raise Reject("STATUS_LIST_INVALID", f"entry {i} holds a reserved value")
    return StatusList(p["rc"], p["ver"], p[6], p[4], p[65534], lst)


@dataclass
class StatusData:
    """What a verifier holds (ver §1): at most one list and one snapshot per region."""
    lists: dict = field(default_factory=dict)       # rc -> StatusList
    snapshots: dict = field(default_factory=dict)   # rc -> Snapshot

    def hold(self, obj) -> None:
        """Highest "ver", then the later "iat" (status.md §5.4, trust §6); on a tie the one held stays."""
        table = self.lists if isinstance(obj, StatusList) else self.snapshots
        held = table.get(obj.rc)
        if held is None or (obj.ver, obj.iat) > (held.ver, held.iat):
            table[obj.rc] = obj


def protected_typ(data: bytes):
    """The typ of an envelope's protected header, read without any check (None if unreadable)."""
    try:
        protected = cbor2.loads(data).value[0]
        return cbor2.loads(protected).get(LABEL_TYP)
    except Exception:
        return None


def load_status_file(data: bytes, trust: TrustStore):
    """A status file (specs/vectors/README.md): a snapshot when its typ says so, else a status list."""
    if protected_typ(data) == TYP_STATUS:
        return load_snapshot(data, trust)
    return load_status_list(data, trust)


# ---------------------------------------------------------------- cert §2-§4, ver §2: certificates

CERT_VERSION = 2
CLAIM_STATUS = 65535
CLAIM_TYPES = {1: "text", 4: "uint", 5: "uint", 6: "uint", CLAIM_STATUS: "map", "v": "uint", "id": "text",
               "tn": "text", "an": "text", "rc": "text", "lvl": "text", "pd": "uint", "prev": "map", "sd": "array"}
REQUIRED_CLAIMS = {1, 5, 6, CLAIM_STATUS, "v", "id", "tn", "an", "rc", "lvl", "sd"}
FIELD_NAME = re.compile(r"holder\.(name|id_type|id_number)|licence\.[a-z0-9_.]{1,56}")  # cert §3, <= 64 bytes
_PY_TYPE = {"text": str, "uint": int, "map": dict, "array": list}


def check_claims(payload: bytes) -> dict:
    """ver §2 step 9 a-e."""
    c = decode(payload, OBJECT_LIMIT)                                                        # a
    require(closed_map(c, REQUIRED_CLAIMS, set(CLAIM_TYPES) - REQUIRED_CLAIMS), "CLAIMS_INVALID", "keys")  # b
    for k, v in c.items():
        require(type(v) is _PY_TYPE[CLAIM_TYPES[k]] and (CLAIM_TYPES[k] != "uint" or v >= 0),
                "CLAIMS_INVALID", f"type of {k!r}")
    require(c["v"] == CERT_VERSION, "CLAIMS_INVALID", "version")
    status = c[CLAIM_STATUS]
    sl = status.get("status_list")
    require(closed_map(status, {"status_list"}) and closed_map(sl, {"idx", "uri"})
            and is_uint(sl["idx"]) and type(sl["uri"]) is str, "CLAIMS_INVALID", "status claim")
    prev = c.get("prev")
    require(prev is None or (closed_map(prev, {"id", "op"}) and type(prev["id"]) is str and is_uint(prev["op"])),
            "CLAIMS_INVALID", "prev")
    require(all(type(d) is bytes for d in c["sd"]), "CLAIMS_INVALID", "sd entries")
    ident = split_identifier(c["id"])                                                       # c
    require(ident is not None, "IDENTIFIER_INVALID", c["id"])
    require(prev is None or split_identifier(prev["id"]) is not None, "IDENTIFIER_INVALID", "prev.id")
    require(is_uscc(c[1]), "USCC_INVALID", c[1])                                            # d
    sd = c["sd"]                                                                            # e
    require(is_region_code(c["rc"]) and is_short_text(c["tn"]) and is_short_text(c["an"])
            and c["lvl"] in ("A", "B", "C", "D")
            and all(is_time(c[k]) for k in (4, 5, 6, "pd") if k in c)
            and 1 <= len(sd) <= 256 and all(len(d) == 32 for d in sd) and all(a < b for a, b in zip(sd, sd[1:]))
            and (4 not in c or c[5] < c[4]) and ("pd" not in c or c["pd"] > c[6])
            and (prev is None or (prev["op"] in (2, 8, 9) and prev["id"] != c["id"]))
            and ident["issuer"] in (c[1], c["rc"]), "CLAIMS_INVALID", "value rules")
    require(sl["idx"] < 2**32 and sl["uri"] == status_uri(c["rc"]), "CLAIMS_INVALID", "status claim values")
    return c


def status_index(claims: dict) -> int:
    return claims[CLAIM_STATUS]["status_list"]["idx"]


def check_disclosures(raws: list, sd: list, suite: str = "ed25519") -> list:
    """ver §2 step 10. Returns [(name, value)] in the order received."""
    out, digests, names = [], set(), set()
    committed = set(sd)
    for raw in raws:
        try:
            d = decode(raw, OBJECT_LIMIT)
        except Reject:
            raise Reject("DISCLOSURE_MALFORMED", "CBOR") from None
        require(type(d) is list and len(d) == 3 and is_bytes(d[0], 16) and type(d[1]) is str
                and FIELD_NAME.fullmatch(d[1]) is not None
                and (type(d[2]) is bool or (type(d[2]) is int and -2**63 <= d[2] < 2**63)
                     or (type(d[2]) is str and len(d[2].encode()) <= 4096)),
                "DISCLOSURE_MALFORMED")
        dg = disclosure_digest(raw, suite)
        require(dg in committed, "DISCLOSURE_MISMATCH", d[1])
        require(dg not in digests and d[1] not in names, "DISCLOSURE_DUPLICATE", d[1])
        digests.add(dg)
        names.add(d[1])
        out.append((d[1], d[2]))
    return out


@dataclass
class Result:
    code: str
    detail: str = ""
    claims: dict | None = None
    disclosed: list = field(default_factory=list)
    undisclosed: int = 0
    digest: bytes | None = None
    status: int | None = None      # the state (status.md §1) from the status data used; None: unknown
    status_as_of: int | None = None  # that status data's iat
    status_source: str | None = None  # "list" or "snapshot"

    @property
    def verdict(self) -> str:
        return "valid" if self.code == "OK" else "invalid"


def verify_certificate(data: bytes, trust: TrustStore, now: int, status: StatusData | None = None) -> Result:
    """ver §2 steps 0-16, with the status lists and snapshots held."""
    res = Result("OK")
    try:
        _verify(data, trust, now, status or StatusData(), res)
    except Reject as e:
        res.code, res.detail = e.code, e.detail
    return res


def _verify(data, trust, now, status, res):
    require(now < trust.exp, "TRUST_BUNDLE_EXPIRED")                                        # 0
    env = open_envelope(data, TYP_CERT, OBJECT_LIMIT, disclosures_ok=True)                  # 1-6
    res.digest = certificate_digest(env.protected, env.payload, env.signature, env.suite)
    seal = trust.seals.get(env.kid)
    require(seal is not None, "KID_UNKNOWN", env.kid.hex())                                 # 7
    require(key_suite(seal["pk"]) == env.suite, "ALG_UNSUPPORTED", "the seal's key is of another suite")
    require(verify_strict(data, seal["pk"]), "SIGNATURE_INVALID")                           # 8
    c = res.claims = check_claims(env.payload)                                              # 9
    res.disclosed = check_disclosures(env.unprotected.get(LABEL_DISCLOSURES, []), c["sd"], env.suite)  # 10
    res.undisclosed = len(c["sd"]) - len(res.disclosed)
    require(c["rc"] == seal["rc"], "SEAL_REGION_MISMATCH")                                  # 11
    require(c[1] == seal["au"] and c["an"] == seal["an"], "ISSUER_MISMATCH")
    iat = c[6]                                                                              # 12
    require(iat >= seal["vf"], "SEAL_NOT_YET_VALID")
    require(iat < seal["vu"], "SEAL_EXPIRED")
    ra = trust.revoked.get(env.kid)
    require(ra is None or iat < ra, "SEAL_REVOKED")
    require(iat <= now + SKEW, "ISSUED_IN_FUTURE")                                          # 13
    require(now >= c[5], "NOT_YET_VALID")
    require(4 not in c or now < c[4], "EXPIRED")
    idx = status_index(c)                                                                   # 14
    lst, snap = status.lists.get(c["rc"]), status.snapshots.get(c["rc"])
    if lst is not None and lst.exp > now and idx < len(lst):
        value = lst.value(idx)
        res.status, res.status_as_of, res.status_source = LIST_STATES[value], lst.iat, "list"
        fulfilled = value == VALUE_VALID
    elif snap is not None:
        res.status, res.status_as_of, res.status_source = snap.states.get(c["id"], 1), snap.iat, "snapshot"
        fulfilled = c["id"] in snap.fulfilled
    else:
        fulfilled = False                                                                   # status unknown
    if res.status not in (None, 1):
        raise Reject(STATE_CODES[res.status], f"state {res.status} in the region's {res.status_source}")
    require("pd" not in c or now < c["pd"] or fulfilled, "PROMISE_LAPSED")                  # 15


# ---------------------------------------------------------------- cert §5: building a certificate

def make_disclosure(name: str, value, salt: bytes | None = None) -> bytes:
    return cbor2.dumps([salt if salt is not None else os.urandom(16), name, value])


def canonical_map(m: dict) -> dict:
    """Keys in bytewise order of their encodings (cert §2, enc §1), nested maps too."""
    return {k: canonical_map(v) if type(v) is dict else v
            for k, v in sorted(m.items(), key=lambda kv: cbor2.dumps(kv[0]))}


def status_claim(rc: str, idx: int) -> dict:
    """cert §2: the status claim (key 65535) naming index idx of region rc's status list."""
    return {"status_list": {"idx": idx, "uri": status_uri(rc)}}


def build_certificate(seed: bytes, claims: dict, fields: list, suite: str = "ed25519") -> bytes:
    """cert §5. claims without "sd"; fields [(name, value)]. Signs with pycose (EdDSA, OKP key), or
    for the sm2 suite with gmssl over the Sig_structure written out by hand (enc §2.1, §2.4)."""
    disclosures = sorted((make_disclosure(n, v) for n, v in fields), key=lambda d: disclosure_digest(d, suite))
    sd = [disclosure_digest(d, suite) for d in disclosures]
    payload = cbor2.dumps(canonical_map({**claims, "sd": sd}))
    if suite == "sm2":
        protected = cbor2.dumps(canonical_map({LABEL_ALG: ALG_SM2, LABEL_KID: kid(sm2_public_key(seed)),
                                               LABEL_TYP: TYP_CERT}))
        unprotected = cbor2.dumps({LABEL_DISCLOSURES: disclosures} if disclosures else {})
        sig = sm2_sign(seed, sig_structure(protected, payload))
        return b"\xd2\x84" + bstr(protected) + unprotected + bstr(payload) + bstr(sig)
    msg = Sign1Message(
        phdr={Algorithm: EdDSA, KID: kid(public_key(seed)), LABEL_TYP: TYP_CERT},
        uhdr={LABEL_DISCLOSURES: disclosures} if disclosures else {},
        payload=payload,
        key=okp_private(seed),
    )
    return msg.encode(tag=True)


def sign_raw(seed: bytes, protected: bytes, payload: bytes, unprotected: bytes = b"\xa0") -> bytes:
    """An envelope assembled by hand around exact header/payload bytes (to test verifier leniency)."""
    msg = Sign1Message(phdr_encoded=protected, payload=payload, key=okp_private(seed))
    return b"\xd2\x84" + bstr(protected) + unprotected + bstr(payload) + bstr(msg.compute_signature())


def with_disclosures(cert: bytes, keep) -> bytes:
    """The same signed certificate with only the disclosures whose field name satisfies keep(name)."""
    msg = Sign1Message.decode(cert)
    kept = [d for d in msg.uhdr.get(LABEL_DISCLOSURES, []) if keep(cbor2.loads(d)[1])]
    msg.uhdr = {LABEL_DISCLOSURES: kept} if kept else {}
    return msg.encode(tag=True, sign=False)


# ---------------------------------------------------------------- status.md §5.3: building a status list

def pack_status_values(values) -> bytes:
    """4 bits per entry, entry i in the low half of byte i/2 when i is even, the high half when odd."""
    values = list(values)
    if len(values) % 2:
        values.append(VALUE_VALID)
    return bytes(lo | hi << 4 for lo, hi in zip(values[::2], values[1::2]))


def sign_object(seed: bytes, typ: str, payload: bytes) -> bytes:
    """A signed envelope (enc §2) with an empty unprotected header; pycose signs."""
    msg = Sign1Message(phdr={Algorithm: EdDSA, KID: kid(public_key(seed)), LABEL_TYP: typ},
                       payload=payload, key=okp_private(seed))
    return msg.encode(tag=True)


def build_status_list(root_seed: bytes, rc: str, values, iat: int, exp: int, ver: int = 1, ttl: int = 300,
                      bits: int = 4, lst: bytes | None = None, replace: dict | None = None) -> bytes:
    """status.md §5.3, signed by root_seed (the root of rc). lst: the compressed entries as given, else
    ZLIB of the packed values; replace: payload keys to set or change (to build lists that must not load)."""
    payload = {2: status_uri(rc), 4: exp, 6: iat, 65534: ttl, "v": 1, "rc": rc, "ver": ver,
               65533: {"bits": bits, "lst": zlib.compress(pack_status_values(values)) if lst is None else lst}}
    payload.update(replace or {})
    return sign_object(root_seed, TYP_STATUS_LIST, cbor2.dumps(canonical_map(payload)))


# ---------------------------------------------------------------- presentation.md §1: offline QR text

QR_PREFIX = "TB1:"
QR_MAX_TEXT = 4296
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def base45_encode(data: bytes) -> str:
    out = []
    for i in range(0, len(data), 2):
        if i + 1 < len(data):
            n = data[i] * 256 + data[i + 1]
            out += [BASE45[n % 45], BASE45[n // 45 % 45], BASE45[n // 2025]]
        else:
            out += [BASE45[data[i] % 45], BASE45[data[i] // 45]]
    return "".join(out)


def base45_decode(text: str) -> bytes:
    require(len(text) % 3 != 1, "QR_ENCODING", "length 1 modulo 3")
    values = []
    for c in text:
        require(c in BASE45, "QR_ENCODING", f"{c!r} is not Base45")
        values.append(BASE45.index(c))
    out = bytearray()
    for i in range(0, len(values), 3):
        group = values[i:i + 3]
        n = sum(v * 45 ** k for k, v in enumerate(group))
        if len(group) == 3:
            require(n <= 0xFFFF, "QR_ENCODING", "group over 65535")
            out += n.to_bytes(2, "big")
        else:
            require(n <= 0xFF, "QR_ENCODING", "last group over 255")
            out.append(n)
    return bytes(out)


def qr_encode(certificate: bytes) -> str:
    text = QR_PREFIX + base45_encode(zlib.compress(certificate, 9))
    require(len(text) <= QR_MAX_TEXT, "QR_TOO_LARGE", "disclose fewer fields")
    return text


def qr_decode(text: str) -> bytes:
    """The certificate bytes of an offline QR text, the rules in the order of presentation.md §1."""
    text = text.strip(" \t\r\n")
    require(len(text) <= QR_MAX_TEXT, "QR_TOO_LARGE")
    require(text.startswith(QR_PREFIX), "QR_PREFIX")
    compressed = base45_decode(text[len(QR_PREFIX):])
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(compressed, OBJECT_LIMIT + 1)
    except zlib.error as e:
        raise Reject("QR_ZLIB", str(e)) from e
    require(len(out) <= OBJECT_LIMIT, "TOO_LARGE", "inflates beyond the certificate limit")
    require(inflater.eof, "QR_ZLIB", "the stream is cut short")
    require(not inflater.unused_data, "QR_ZLIB", "bytes after the stream")
    return out
