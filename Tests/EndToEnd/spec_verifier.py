#!/usr/bin/env python3
"""Verifier for the Vouch evidence format v1, written from EvidenceFormat.md alone.

Dependencies: joserfc (JWS / ES256 verification) and the standard library
(hashlib, base64, json).  Every decision the specification leaves open is
marked in the code with "SPEC-GAP" and listed in the accompanying report.

Library API
-----------
    canonical_json(value) -> bytes
    strict_loads(data) -> value               (refuses floats, exponents, NaN, dup keys, |int| > 2^63)
    jwk_thumbprint(jwk) -> str                (RFC 7638, computed here)
    merkle_root(leaves) -> bytes              (RFC 6962 MTH)
    audit_path(index, leaves) -> [bytes]      (RFC 6962 PATH, leaf side first)
    verify_audit_path(index, n, leaf, path, root) -> bool   (RFC 9162 2.1.3.2, as in the spec)
    log_root(batch_hashes) -> bytes           (bank log: leaves are raw 32-byte signing-input hashes)
    verify_stream(data, enrolled_jwk, expected_last=None, ...) -> [Verdict]
    verify_receipt(token, bank_jwk) -> payload dict
    check_receipt_names(payload, batch) -> None (raises VerifyError)
    verify_inclusion_proof(proof, enrolled_jwk, ...) -> record (list)

CLI
---
    python spec_verifier.py stream  --jwk FILE [--last N] [--device ID] FILE...
    python spec_verifier.py receipt --bank-jwk FILE [--batch BATCHFILE] TOKENFILE
    python spec_verifier.py proof   --jwk FILE [--bank-jwk FILE] PROOF.json
Exit status 0 when everything verifies, 1 otherwise.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

# --------------------------------------------------------------------------------------------
# Error codes named by the specification
# --------------------------------------------------------------------------------------------
OK = "ok"
E_BATCH_MALFORMED = "E_BATCH_MALFORMED"
E_JWS_KID = "E_JWS_KID"
E_JWS_SIGNATURE = "E_JWS_SIGNATURE"
E_PAYLOAD_MALFORMED = "E_PAYLOAD_MALFORMED"
E_PAYLOAD_VERSION = "E_PAYLOAD_VERSION"
E_DEVICE_MISMATCH = "E_DEVICE_MISMATCH"
E_RECORD_NOT_CANONICAL = "E_RECORD_NOT_CANONICAL"
E_RECORD_MALFORMED = "E_RECORD_MALFORMED"
E_MERKLE_ROOT = "E_MERKLE_ROOT"
E_RSEQ_ORDER = "E_RSEQ_ORDER"
E_RSEQ_GAP = "E_RSEQ_GAP"
E_CHAIN_FORK = "E_CHAIN_FORK"
E_CHAIN_GAP = "E_CHAIN_GAP"
E_CHAIN_REORDER = "E_CHAIN_REORDER"
E_CHAIN_PREV = "E_CHAIN_PREV"
E_CHAIN_SILENT = "E_CHAIN_SILENT"
E_CHAIN_TRUNCATED = "E_CHAIN_TRUNCATED"
E_KEY_ROTATION = "E_KEY_ROTATION"
E_KEY_RETIRED = "E_KEY_RETIRED"

SPEC_CODES = frozenset(
    [
        E_BATCH_MALFORMED, E_JWS_KID, E_JWS_SIGNATURE, E_PAYLOAD_MALFORMED, E_PAYLOAD_VERSION,
        E_DEVICE_MISMATCH, E_RECORD_NOT_CANONICAL, E_RECORD_MALFORMED, E_MERKLE_ROOT,
        E_RSEQ_ORDER, E_RSEQ_GAP, E_CHAIN_FORK, E_CHAIN_GAP, E_CHAIN_REORDER, E_CHAIN_PREV,
        E_CHAIN_SILENT, E_CHAIN_TRUNCATED, E_KEY_ROTATION, E_KEY_RETIRED,
    ]
)

# SPEC-GAP: the spec names no code for a receipt that verifies but does not name the batch
# in hand.  This code is ours, deliberately outside the E_ namespace.
X_RECEIPT_MISMATCH = "X_RECEIPT_MISMATCH"

TYP_BATCH = "vouch-batch+jws"
TYP_RECEIPT = "vouch-receipt+jws"
TYP_KEY_PROOF = "vouch-key-proof+jws"
ZERO_HASH = "0" * 64
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


class VerifyError(Exception):
    """A refusal, carrying the spec's stable error code."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


# --------------------------------------------------------------------------------------------
# Canonical JSON (RFC 8785 restricted to integers) and strict parsing
# --------------------------------------------------------------------------------------------
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_string(s: str) -> str:
    out = []
    for ch in s:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _utf16_key(k: str) -> bytes:
    # Comparing UTF-16BE byte strings compares the sequences of UTF-16 code units.
    return k.encode("utf-16-be", "surrogatepass")


def _encode(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("integer outside the signed 64-bit range")
        out.append(str(int(value)))
    elif isinstance(value, float):
        raise ValueError("floats are not part of the canonical value space")
    elif isinstance(value, str):
        out.append(_escape_string(value))
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ValueError("object keys must be strings")
        out.append("{")
        for i, k in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_escape_string(k))
            out.append(":")
            _encode(value[k], out)
        out.append("}")
    else:
        raise ValueError(f"value of type {type(value).__name__} is not JSON")


def canonical_json(value: Any) -> bytes:
    """Canonical bytes as defined in 'Canonical JSON'.  Raises ValueError outside the value space
    (floats, out-of-range integers, lone surrogates, non-string keys)."""
    out: list[str] = []
    _encode(value, out)
    return "".join(out).encode("utf-8")  # strict: a lone surrogate raises UnicodeEncodeError (a ValueError)


def _refuse_float(text: str) -> Any:
    raise ValueError(f"JSON number with fraction or exponent refused: {text}")


def _refuse_constant(text: str) -> Any:
    raise ValueError(f"non-JSON constant refused: {text}")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for k, v in pairs:
        if k in obj:
            raise ValueError(f"duplicate object member {k!r}")
        obj[k] = v
    return obj


def _check_value_space(v: Any) -> None:
    if isinstance(v, bool) or v is None:
        return
    if isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise ValueError("integer outside the signed 64-bit range")
    elif isinstance(v, str):
        v.encode("utf-8")  # refuses lone surrogates smuggled in as \ud800 escapes
    elif isinstance(v, list):
        for x in v:
            _check_value_space(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            k.encode("utf-8")
            _check_value_space(x)


def strict_loads(data: bytes | str) -> Any:
    """Parse JSON in the format's value space.  Refuses any number written with '.', 'e' or 'E',
    NaN/Infinity, duplicate keys, integers outside int64, invalid UTF-8 and lone surrogates.
    Raises ValueError."""
    if isinstance(data, (bytes, bytearray)):
        text = bytes(data).decode("utf-8")  # strict
    else:
        text = data
    value = json.loads(
        text,
        parse_float=_refuse_float,
        parse_constant=_refuse_constant,
        object_pairs_hook=_pairs_no_duplicates,
    )
    _check_value_space(value)
    return value


def is_canonical(data: bytes) -> bool:
    try:
        return canonical_json(strict_loads(data)) == data
    except ValueError:
        return False


# --------------------------------------------------------------------------------------------
# base64url, hashes, keys
# --------------------------------------------------------------------------------------------
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(s: str) -> bytes:
    """Strict RFC 4648 section 5 without padding; refuses non-canonical encodings (spare bits set)."""
    if not isinstance(s, str) or not _B64URL_RE.match(s) or len(s) % 4 == 1:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    if b64url_encode(raw) != s:
        raise ValueError("non-canonical base64url")
    return raw


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def is_hex64(v: Any) -> bool:
    return isinstance(v, str) and bool(_HEX64_RE.match(v))


def public_jwk(jwk: dict) -> dict:
    """The {"crv","kty","x","y"} members of a P-256 JWK (a private 'd' or other members are dropped).
    Raises ValueError when it is not a valid P-256 public key."""
    if not isinstance(jwk, dict):
        raise ValueError("JWK must be an object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("JWK must be kty EC, crv P-256")
    for m in ("x", "y"):
        if not isinstance(jwk.get(m), str) or len(b64url_decode(jwk[m])) != 32:
            raise ValueError(f"JWK member {m} must be base64url of 32 bytes")
    pub = {"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    try:
        ECKey.import_key(pub)  # validates that the point is on the curve
    except Exception as exc:  # noqa: BLE001 - any import failure means "not a key"
        raise ValueError(f"invalid P-256 public key: {exc}") from exc
    return pub


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638 thumbprint: base64url(SHA-256('{"crv":…,"kty":"EC","x":…,"y":…}'))."""
    members = {"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]}
    return b64url_encode(sha256(canonical_json(members)))


# --------------------------------------------------------------------------------------------
# Merkle trees (RFC 6962 section 2.1) and the RFC 9162 proof check, exactly as the spec writes it
# --------------------------------------------------------------------------------------------
def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def _largest_pow2_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]).  Each leaf is the raw bytes (a record line without its LF)."""
    leaves = [bytes(x) for x in leaves]
    n = len(leaves)
    if n == 0:
        return sha256(b"")
    if n == 1:
        return leaf_hash(leaves[0])
    k = _largest_pow2_below(n)
    return node_hash(merkle_root(leaves[:k]), merkle_root(leaves[k:]))


def audit_path(index: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 PATH(m, D[n]), leaf side first."""
    n = len(leaves)
    if not 0 <= index < n:
        raise ValueError("index out of range")
    if n == 1:
        return []
    k = _largest_pow2_below(n)
    if index < k:
        return audit_path(index, leaves[:k]) + [merkle_root(leaves[k:])]
    return audit_path(index - k, leaves[k:]) + [merkle_root(leaves[:k])]


def verify_audit_path(index: int, n: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """The spec's transcription of RFC 9162 section 2.1.3.2.  'leaf' is the leaf's data (record line)."""
    # SPEC-GAP: the spec's pseudo-code omits RFC 9162's first step, "if leaf_index >= tree_size,
    # fail"; we keep it (and refuse negative indices).
    if not (isinstance(index, int) and isinstance(n, int)) or index < 0 or index >= n:
        return False
    fn, sn = index, n - 1
    r = leaf_hash(leaf)
    for p in path:
        if len(p) != 32:
            return False
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = node_hash(p, r)
            if fn % 2 == 0:
                # "repeat fn >>= 1, sn >>= 1 until fn is odd or fn = 0"; fn is even and non-zero here
                # (fn = sn > 0), so a do-while and RFC 9162's while-loop agree.
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn % 2 == 1 or fn == 0:
                        break
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def log_root(batch_hashes: Iterable[bytes | str]) -> bytes:
    """Root of the bank's log: RFC 6962 over the raw 32-byte signing-input hashes, in acceptance order."""
    leaves = []
    for h in batch_hashes:
        raw = bytes.fromhex(h) if isinstance(h, str) else bytes(h)
        if len(raw) != 32:
            raise ValueError("log leaves are 32-byte hashes")
        leaves.append(raw)
    return merkle_root(leaves)


# --------------------------------------------------------------------------------------------
# JWS (compact, ES256) through joserfc
# --------------------------------------------------------------------------------------------
@dataclass
class ParsedToken:
    token: str
    header: dict
    header_bytes: bytes
    payload_bytes: bytes
    signing_input: bytes

    @property
    def h(self) -> str:
        """SHA-256 of the signing input, hex."""
        return hashlib.sha256(self.signing_input).hexdigest()


def parse_token(token: str) -> ParsedToken:
    """Split a JWS compact token without verifying it.  Raises VerifyError(E_BATCH_MALFORMED)."""
    # SPEC-GAP: the spec names no code for a token that is not a JWS at all; step 1 says the first
    # line "is the token", so an unparseable token is reported as E_BATCH_MALFORMED.
    if not isinstance(token, str):
        raise VerifyError(E_BATCH_MALFORMED, "token is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise VerifyError(E_BATCH_MALFORMED, "token is not JWS compact serialisation (3 parts)")
    if parts[1] == "":
        raise VerifyError(E_BATCH_MALFORMED, "detached payload is not allowed")
    try:
        header_bytes = b64url_decode(parts[0])
        payload_bytes = b64url_decode(parts[1])
        sig = b64url_decode(parts[2])
    except ValueError as exc:
        raise VerifyError(E_BATCH_MALFORMED, f"token segment: {exc}") from exc
    try:
        header = strict_loads(header_bytes)
    except ValueError as exc:
        raise VerifyError(E_BATCH_MALFORMED, f"protected header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise VerifyError(E_BATCH_MALFORMED, "protected header is not an object")
    if len(sig) != 64:
        raise VerifyError(E_JWS_SIGNATURE, "ES256 signature must be 64 bytes (r || s)")
    return ParsedToken(token, header, header_bytes, payload_bytes, (parts[0] + "." + parts[1]).encode("ascii"))


def check_header(pt: ParsedToken, typ: str) -> str:
    """alg ES256, the expected typ, nothing but alg/kid/typ; returns kid.  E_JWS_SIGNATURE otherwise."""
    # SPEC-GAP: step 2 names only E_JWS_KID and E_JWS_SIGNATURE; a wrong alg or typ, a crit member or
    # any header member beyond alg/kid/typ is reported as E_JWS_SIGNATURE.
    hdr = pt.header
    if hdr.get("alg") != "ES256":
        raise VerifyError(E_JWS_SIGNATURE, f"alg must be ES256, got {hdr.get('alg')!r}")
    if hdr.get("typ") != typ:
        raise VerifyError(E_JWS_SIGNATURE, f"typ must be {typ}, got {hdr.get('typ')!r}")
    extra = set(hdr) - {"alg", "kid", "typ"}
    if extra:
        raise VerifyError(E_JWS_SIGNATURE, f"protected header has members beyond alg/kid/typ: {sorted(extra)}")
    if not isinstance(hdr.get("kid"), str):
        raise VerifyError(E_JWS_KID, "protected header has no string kid")
    # SPEC-GAP: "every JSON text the device ... signs is canonical" - we hold the header to it.
    if canonical_json(hdr) != pt.header_bytes:
        raise VerifyError(E_JWS_SIGNATURE, "protected header is not canonical JSON")
    return hdr["kid"]


def jws_signature_valid(token: str, jwk: dict) -> bool:
    """Signature check with joserfc, ES256 only."""
    try:
        key = ECKey.import_key(public_jwk(jwk))
        jws.deserialize_compact(token, key, algorithms=["ES256"])
        return True
    except (JoseError, ValueError, TypeError):
        return False


def verify_jws(token: str, jwk: dict, typ: str) -> ParsedToken:
    """Step 2 for one token against one key: header, kid = thumbprint(jwk), signature."""
    pt = parse_token(token)
    kid = check_header(pt, typ)
    if kid != jwk_thumbprint(jwk):
        raise VerifyError(E_JWS_KID, f"kid {kid} is not the thumbprint {jwk_thumbprint(jwk)} of the key in force")
    if not jws_signature_valid(token, jwk):
        raise VerifyError(E_JWS_SIGNATURE, "signature does not verify")
    return pt


# --------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------
MANIFEST_MEMBERS = {"v", "dev", "bseq", "prev", "boot", "t", "n", "root", "rcpt"}
TQ_VALUES = ("sync", "unsync", "step")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse_manifest(payload_bytes: bytes) -> dict:
    """Step 3 member checks.  Raises VerifyError(E_PAYLOAD_MALFORMED / E_PAYLOAD_VERSION)."""
    try:
        m = strict_loads(payload_bytes)
    except ValueError as exc:
        raise VerifyError(E_PAYLOAD_MALFORMED, f"manifest is not JSON in the value space: {exc}") from exc
    if not isinstance(m, dict):
        raise VerifyError(E_PAYLOAD_MALFORMED, "manifest is not an object")
    # SPEC-GAP: the spec does not order the version check against the member checks; a v other than 1
    # is reported first, since a v2 manifest may legitimately have other members.
    if "v" in m and m["v"] != 1:
        raise VerifyError(E_PAYLOAD_VERSION, f"manifest v is {m['v']!r}, not 1")
    missing = MANIFEST_MEMBERS - set(m)
    extra = set(m) - MANIFEST_MEMBERS
    if missing or extra:
        raise VerifyError(E_PAYLOAD_MALFORMED, f"manifest members: missing {sorted(missing)}, unknown {sorted(extra)}")
    if not _is_int(m["v"]):
        raise VerifyError(E_PAYLOAD_MALFORMED, "v is not an integer")
    if not isinstance(m["dev"], str):
        raise VerifyError(E_PAYLOAD_MALFORMED, "dev is not a string")
    if not _is_int(m["bseq"]) or m["bseq"] < 1:
        raise VerifyError(E_PAYLOAD_MALFORMED, "bseq is not an integer >= 1")
    if not is_hex64(m["prev"]):
        raise VerifyError(E_PAYLOAD_MALFORMED, "prev is not 64 lowercase hex digits")
    boot = m["boot"]
    # SPEC-GAP: the spec gives boot and t as objects with listed members but not whether other members
    # are allowed, nor the JSON type of boot.id; we require exactly the listed members, id a string.
    if not (isinstance(boot, dict) and set(boot) == {"id", "n"} and isinstance(boot["id"], str) and _is_int(boot["n"])):
        raise VerifyError(E_PAYLOAD_MALFORMED, "boot must be {id: string, n: integer}")
    t = m["t"]
    if not (isinstance(t, dict) and set(t) == {"mono", "tq", "wall"} and _is_int(t["mono"]) and _is_int(t["wall"])
            and t["tq"] in TQ_VALUES):
        raise VerifyError(E_PAYLOAD_MALFORMED, "t must be {mono: integer, tq: sync|unsync|step, wall: integer}")
    if not _is_int(m["n"]) or m["n"] < 0:
        raise VerifyError(E_PAYLOAD_MALFORMED, "n is not an integer >= 0")
    if not is_hex64(m["root"]):
        raise VerifyError(E_PAYLOAD_MALFORMED, "root is not 64 lowercase hex digits")
    if m["rcpt"] is not None and not is_hex64(m["rcpt"]):
        raise VerifyError(E_PAYLOAD_MALFORMED, "rcpt is neither null nor 64 lowercase hex digits")
    # SPEC-GAP: the manifest is said to be canonical; the verification procedure does not say to check
    # it.  We do (a non-canonical manifest can only come from the signer, so this is a format check).
    if canonical_json(m) != payload_bytes:
        raise VerifyError(E_PAYLOAD_MALFORMED, "manifest is not canonical JSON")
    return m


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------
def _t_int(v): return _is_int(v)
def _t_int_null(v): return v is None or _is_int(v)
def _t_str(v): return isinstance(v, str)
def _t_str_null(v): return v is None or isinstance(v, str)
def _t_hex(v): return is_hex64(v)
def _t_hex_null(v): return v is None or is_hex64(v)
def _t_obj(v): return isinstance(v, dict)
def _t_obj_null(v): return v is None or isinstance(v, dict)
def _t_pos_int(v): return _is_int(v) and v >= 1
def _t_enum(*values): return lambda v: isinstance(v, str) and v in values


def _t_window(v):
    # "evidence window: [mono, wall, value] samples ...; value null for a failed poll"
    return isinstance(v, list) and all(
        isinstance(s, list) and len(s) == 3 and _is_int(s[0]) and _is_int(s[1]) and _t_int_null(s[2]) for s in v
    )


def _t_values(v):
    return isinstance(v, list) and all(_t_int_null(x) for x in v)


def _t_new_jwk(v):
    if not (isinstance(v, dict) and set(v) == {"crv", "kty", "x", "y"}):
        return False
    try:
        public_jwk(v)
        return True
    except ValueError:
        return False


_ATT_CLAIM_TYPES = {
    "bootcount": _t_int,
    "bootseed": lambda v: isinstance(v, str) and _b64_len(v) == 16,
    "uptime": _t_int,
    "swname": _t_str,
    "swversion": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "vouch.bin_sha256": _t_hex,
    "vouch.cfg_sha256": _t_hex,
    "vouch.keyprot": _t_enum("software-file", "hardware"),
    "vouch.kid": _t_str,
}


def _b64_len(v: str) -> int:
    try:
        return len(b64url_decode(v))
    except ValueError:
        return -1


def _t_claims(v):
    # Known claims are type-checked when present; unknown claims are ignored (as the spec requires).
    # SPEC-GAP: the spec does not say which claims are required, nor whether a known claim of the wrong
    # type makes the record malformed; we refuse a wrongly typed known claim and require none.
    if not isinstance(v, dict):
        return False
    return all(check(v[name]) for name, check in _ATT_CLAIM_TYPES.items() if name in v)


COMMON_FIELDS = [
    ("kind", _t_str),
    ("rseq", _t_pos_int),
    ("boot", _t_int),
    ("mono", _t_int),
    ("wall", _t_int),
    ("tq", _t_enum(*TQ_VALUES)),
]

# SPEC-GAP: the value lists for phase, severity, reason, tq_before and vouch.keyprot are given in the
# tables but the spec does not say whether other values make a record malformed ("severity ...
# (configured)" suggests the set may be configurable).  We refuse values outside the lists.
KIND_FIELDS: dict[str, list[tuple[str, Any]]] = {
    "sum": [
        ("channel", _t_str), ("interval_ms", _t_int), ("unit", _t_str), ("scale", _t_int),
        ("count", _t_int), ("errors", _t_int), ("min", _t_int_null), ("max", _t_int_null),
        ("mean", _t_int_null), ("last", _t_int_null), ("last_error", _t_str_null),
    ],
    "evt": [
        ("event_id", _t_str), ("phase", _t_enum("start", "end")), ("rule", _t_str), ("rule_v", _t_int),
        ("channel", _t_str), ("severity", _t_enum("low", "medium", "high")), ("start_mono", _t_int),
        ("start_wall", _t_int), ("end_mono", _t_int_null), ("end_wall", _t_int_null), ("duration_ms", _t_int),
        ("unit", _t_str), ("scale", _t_int), ("params", _t_obj), ("baseline", _t_obj_null),
        ("window", _t_window), ("explanation", _t_str),
    ],
    "hb": [("interval_ms", _t_int), ("uptime_ms", _t_int), ("backlog", _t_int)],
    "gap": [
        ("reason", _t_enum("agent_down", "sensor_unreachable", "disk_budget")), ("channel", _t_str_null),
        ("from_boot", _t_int), ("from_mono", _t_int), ("from_wall", _t_int), ("to_mono", _t_int),
        ("to_wall", _t_int), ("missing", _t_int), ("detail", _t_str),
    ],
    "cfg": [
        ("config_sha256", _t_hex), ("previous_sha256", _t_hex_null), ("source", _t_str),
        ("who", _t_str_null), ("summary", _t_str),
    ],
    "act": [("action", _t_str), ("who", _t_str_null), ("params", _t_obj), ("explanation", _t_str)],
    "att": [("claims", _t_claims)],
    "key": [("new_jwk", _t_new_jwk), ("proof", _t_str)],
    "clk": [("expected_wall", _t_int), ("step_ms", _t_int), ("tq_before", _t_enum(*TQ_VALUES))],
    "raw": [
        ("channel", _t_str), ("unit", _t_str), ("scale", _t_int), ("period_ms", _t_pos_int),
        ("values", _t_values),
    ],
}


def check_record(rec: Any) -> None:
    """Step 6 (per record): known kind, exact field count, field types.  E_RECORD_MALFORMED."""
    if not isinstance(rec, list) or len(rec) < len(COMMON_FIELDS):
        raise VerifyError(E_RECORD_MALFORMED, "record is not an array of at least 6 elements")
    kind = rec[0]
    if not isinstance(kind, str) or kind not in KIND_FIELDS:
        raise VerifyError(E_RECORD_MALFORMED, f"unknown record kind {kind!r}")
    fields = COMMON_FIELDS + KIND_FIELDS[kind]
    # SPEC-GAP: the spec says "more fields than the kind defines" must be refused; it does not mention
    # fewer.  A missing field is treated as a field of the wrong type: refused.
    if len(rec) != len(fields):
        raise VerifyError(E_RECORD_MALFORMED, f"{kind} record has {len(rec)} fields, the kind defines {len(fields)}")
    for i, (name, check) in enumerate(fields):
        if not check(rec[i]):
            raise VerifyError(E_RECORD_MALFORMED, f"{kind} field {i} ({name}) has the wrong type/value: {rec[i]!r}")


def parse_record_line(line: bytes) -> list:
    """Step 4 for one line: JSON without floats whose canonical re-serialisation is the line itself."""
    # SPEC-GAP: a line that is not JSON at all (or holds a float) is reported with the step-4 code
    # E_RECORD_NOT_CANONICAL; the spec attaches no separate code to "parses as JSON without floats".
    try:
        rec = strict_loads(line)
    except ValueError as exc:
        raise VerifyError(E_RECORD_NOT_CANONICAL, f"record line does not parse: {exc}") from exc
    try:
        again = canonical_json(rec)
    except ValueError as exc:
        raise VerifyError(E_RECORD_NOT_CANONICAL, str(exc)) from exc
    if again != line:
        raise VerifyError(E_RECORD_NOT_CANONICAL, "record line is not in canonical form")
    return rec


def decode_raw_values(values: list) -> list:
    """Undo the delta encoding of a raw record (two's-complement 64-bit wrapping)."""
    out, running, seen = [], 0, False
    for d in values:
        if d is None:
            out.append(None)
            continue
        running = d if not seen else ((running + d + 2**63) % 2**64) - 2**63
        seen = True
        out.append(running)
    return out


# --------------------------------------------------------------------------------------------
# Key rotation proof (step 8)
# --------------------------------------------------------------------------------------------
def verify_key_proof(proof: str, new_jwk: dict, device: str, old_kid: str) -> dict:
    """Verify a key record's proof with new_jwk.  Raises VerifyError(E_KEY_ROTATION)."""
    try:
        new_pub = public_jwk(new_jwk)
        new_kid = jwk_thumbprint(new_pub)
        pt = parse_token(proof)
        hdr = pt.header
        if hdr.get("alg") != "ES256" or hdr.get("typ") != TYP_KEY_PROOF:
            raise VerifyError(E_KEY_ROTATION, "proof header must be alg ES256, typ vouch-key-proof+jws")
        # SPEC-GAP: the spec does not say whether the proof header carries a kid; the vectors carry the
        # new key's thumbprint.  We allow alg/kid/typ only and, when kid is present, require new_kid.
        if set(hdr) - {"alg", "kid", "typ"}:
            raise VerifyError(E_KEY_ROTATION, "proof header has unexpected members")
        if "kid" in hdr and hdr["kid"] != new_kid:
            raise VerifyError(E_KEY_ROTATION, "proof header kid is not the new key's thumbprint")
        if not jws_signature_valid(proof, new_pub):
            raise VerifyError(E_KEY_ROTATION, "proof does not verify with new_jwk")
        payload = strict_loads(pt.payload_bytes)
    except VerifyError as exc:
        if exc.code == E_KEY_ROTATION:
            raise
        raise VerifyError(E_KEY_ROTATION, f"proof: {exc.detail or exc.code}") from exc
    except ValueError as exc:
        raise VerifyError(E_KEY_ROTATION, f"proof: {exc}") from exc
    if not isinstance(payload, dict) or set(payload) != {"dev", "new", "old"}:
        raise VerifyError(E_KEY_ROTATION, "proof payload must be exactly {dev, new, old}")
    if payload["dev"] != device:
        raise VerifyError(E_KEY_ROTATION, f"proof names device {payload['dev']!r}, not {device!r}")
    if payload["new"] != new_kid:
        raise VerifyError(E_KEY_ROTATION, "proof 'new' is not the thumbprint of new_jwk")
    if payload["old"] != old_kid:
        raise VerifyError(E_KEY_ROTATION, "proof 'old' is not the kid that signed this batch")
    return payload


# --------------------------------------------------------------------------------------------
# Export streams and the chain
# --------------------------------------------------------------------------------------------
@dataclass
class RawBatch:
    token_line: bytes | None
    record_lines: list[bytes]
    error: str | None = None


def split_stream(data: bytes) -> list[RawBatch]:
    """Step 1 over an export stream: a line starting with '[' is a record of the nearest token above."""
    batches: list[RawBatch] = []
    if not data:
        return batches
    trailing_lf = data.endswith(b"\n")
    lines = data.split(b"\n")
    if trailing_lf:
        lines = lines[:-1]
    for i, line in enumerate(lines):
        is_last = i == len(lines) - 1
        problem = None
        if b"\r" in line:
            problem = "CR in batch file"
        elif line == b"":
            problem = "empty line"
        elif is_last and not trailing_lf:
            problem = "last line does not end in LF"
        if line.startswith(b"["):
            if not batches:
                batches.append(RawBatch(None, [], "record line before any token line"))
            batches[-1].record_lines.append(line)
            if problem and batches[-1].error is None:
                batches[-1].error = problem
        elif line == b"":
            # An empty line belongs to the batch it appears in.
            if not batches:
                batches.append(RawBatch(None, [], problem))
            elif batches[-1].error is None:
                batches[-1].error = problem
        else:
            batches.append(RawBatch(line, [], problem))
    return batches


@dataclass
class Verdict:
    index: int                 # position in the stream (0-based); -1 for stream-level verdicts
    bseq: int | None
    code: str                  # "ok" or an E_ code from the spec
    disposition: str           # "extends", "duplicate", "refused", "stream"
    accepted: bool
    h: str | None = None       # signing-input hash, hex
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code == OK

    def line(self) -> str:
        b = "-" if self.bseq is None else str(self.bseq)
        s = f"bseq={b} {self.code} {self.disposition}"
        if self.h:
            s += f" h={self.h}"
        if self.detail:
            s += f" ({self.detail})"
        return s


@dataclass
class _KeyEpoch:
    from_bseq: int
    jwk: dict
    kid: str


@dataclass
class Chain:
    """Verification state for one device: the bank's view of its accepted batches."""

    enrolled_jwk: dict
    device: str | None = None
    head_bseq: int = 0
    head_h: str = ZERO_HASH
    accepted: dict = field(default_factory=dict)        # bseq -> h
    last_rseq: int = 0
    keys: list = field(default_factory=list)            # [_KeyEpoch]
    forks: list = field(default_factory=list)           # refused equivocating tokens, kept as evidence
    last_hb_interval_ms: int | None = None
    last_batch_wall: int | None = None

    def __post_init__(self):
        pub = public_jwk(self.enrolled_jwk)
        if not self.keys:
            self.keys = [_KeyEpoch(1, pub, jwk_thumbprint(pub))]

    # SPEC-GAP: "the key in force" is read per bseq: the key established by rotations in accepted
    # batches with a smaller bseq.  Otherwise a resent duplicate (or a fork) of a batch from before a
    # rotation would be refused as E_KEY_RETIRED instead of being recognised as duplicate / fork.
    def key_for(self, bseq: int) -> _KeyEpoch:
        cur = self.keys[0]
        for ep in self.keys:
            if ep.from_bseq <= bseq:
                cur = ep
        return cur

    def retired_before(self, bseq: int) -> list:
        cur = self.key_for(bseq)
        return [ep for ep in self.keys if ep.from_bseq < cur.from_bseq]

    # ---------------------------------------------------------------------------------------
    def verify_stream(self, data: bytes, expected_last: int | None = None, now_wall: int | None = None) -> list:
        raws = split_stream(data)
        peeked = [_peek_bseq(r) for r in raws]
        verdicts = []
        for i, raw in enumerate(raws):
            later = {b for b in peeked[i + 1:] if b is not None}
            verdicts.append(self.verify_batch(raw, index=i, later_bseqs=later, peeked_bseq=peeked[i]))
        if expected_last is not None and self.head_bseq < expected_last:
            verdicts.append(Verdict(-1, expected_last, E_CHAIN_TRUNCATED, "stream", False, None,
                                    f"export ends at bseq {self.head_bseq}, the bank's receipt names {expected_last}"))
        if now_wall is not None:
            v = self.check_silence(now_wall)
            if v is not None:
                verdicts.append(v)
        return verdicts

    def check_silence(self, now_wall: int) -> Verdict | None:
        # SPEC-GAP: silence is defined on arrival time at the bank, which a stream does not carry; we
        # use the last accepted manifest's t.wall (the device's own clock) as the arrival time.
        if self.last_hb_interval_ms is None or self.last_batch_wall is None:
            return None
        if now_wall - self.last_batch_wall > 2 * self.last_hb_interval_ms:
            return Verdict(-1, self.head_bseq, E_CHAIN_SILENT, "stream", False, None,
                           f"no batch since wall {self.last_batch_wall}, heartbeat interval {self.last_hb_interval_ms} ms")
        return None

    def verify_batch(self, raw: RawBatch, index: int = 0, later_bseqs: set | None = None,
                     peeked_bseq: int | None = None) -> Verdict:
        later_bseqs = later_bseqs or set()
        bseq = peeked_bseq
        try:
            return self._verify_batch(raw, index, later_bseqs, peeked_bseq)
        except VerifyError as exc:
            return Verdict(index, bseq, exc.code, "refused", False, None, exc.detail)

    def _gap_code(self, bseq: int, later_bseqs: set) -> str:
        # "In a file or stream, a gap whose missing batch appears later is a reorder."
        missing = range(self.head_bseq + 1, bseq)
        return E_CHAIN_REORDER if any(b in later_bseqs for b in missing) else E_CHAIN_GAP

    def _verify_batch(self, raw: RawBatch, index: int, later_bseqs: set, peeked_bseq: int | None) -> Verdict:
        # Step 1
        if raw.error or raw.token_line is None:
            raise VerifyError(E_BATCH_MALFORMED, raw.error or "no token line")
        try:
            token = raw.token_line.decode("ascii")
        except UnicodeDecodeError as exc:
            raise VerifyError(E_BATCH_MALFORMED, "token line is not ASCII") from exc

        # Step 2: alg, typ, kid = thumbprint of the key in force, signature (joserfc)
        pt = parse_token(token)
        kid = check_header(pt, TYP_BATCH)
        target = peeked_bseq if peeked_bseq is not None else self.head_bseq + 1
        epoch = self.key_for(target)
        if kid == epoch.kid:
            if not jws_signature_valid(token, epoch.jwk):
                raise VerifyError(E_JWS_SIGNATURE, "signature does not verify with the key in force")
        else:
            retired = [ep for ep in self.retired_before(target) if ep.kid == kid]
            if retired:
                # SPEC-GAP: the spec does not say whether a retired-key batch must carry a valid
                # signature to earn E_KEY_RETIRED; we check it so the code is not forgeable.
                if not jws_signature_valid(token, retired[-1].jwk):
                    raise VerifyError(E_JWS_SIGNATURE, "signed with a retired kid and does not verify")
                raise VerifyError(E_KEY_RETIRED, f"bseq {target} is signed by key {kid}, retired from bseq "
                                                 f"{epoch.from_bseq} on")
            if peeked_bseq is not None and peeked_bseq > self.head_bseq + 1:
                # SPEC-GAP: step 2 precedes the chain rule, so read literally a batch after a missing
                # rotation batch is E_JWS_KID.  The key in force for it cannot be known while batches
                # before it are missing, so we report the gap / reorder (from its unauthenticated bseq).
                raise VerifyError(self._gap_code(peeked_bseq, later_bseqs),
                                  f"bseq {peeked_bseq} after head {self.head_bseq}; signed by kid {kid}, "
                                  f"unknown until the missing batches are verified")
            raise VerifyError(E_JWS_KID, f"kid {kid} is not the key in force ({epoch.kid})")

        # Step 3
        m = parse_manifest(pt.payload_bytes)
        if self.device is not None and m["dev"] != self.device:
            raise VerifyError(E_DEVICE_MISMATCH, f"manifest dev {m['dev']!r}, enrolled {self.device!r}")
        bseq = m["bseq"]

        # Step 4
        if len(raw.record_lines) != m["n"]:
            raise VerifyError(E_BATCH_MALFORMED, f"{len(raw.record_lines)} record lines, manifest n = {m['n']}")
        records = [parse_record_line(line) for line in raw.record_lines]

        # Step 5
        if merkle_root(raw.record_lines).hex() != m["root"]:
            raise VerifyError(E_MERKLE_ROOT, "Merkle root of the record lines differs from the manifest's root")

        # Step 6 (per-batch part)
        key_records = []
        for rec in records:
            check_record(rec)
            if rec[0] == "key":
                key_records.append(rec)
        rseq_gap = False
        for a, b in zip(records, records[1:]):
            if b[1] <= a[1]:
                raise VerifyError(E_RSEQ_ORDER, f"rseq {b[1]} after {a[1]} within the batch")
            if b[1] > a[1] + 1:
                rseq_gap = True
        # SPEC-GAP: "at most one key record" has no code of its own; we use E_KEY_ROTATION.
        if len(key_records) > 1:
            raise VerifyError(E_KEY_ROTATION, "a batch holds at most one key record")

        # Step 7: chain rule
        h = pt.h
        if bseq <= self.head_bseq:
            if self.accepted.get(bseq) == h:
                return Verdict(index, bseq, OK, "duplicate", True, h, "duplicate of the accepted batch")
            self.forks.append((bseq, token))
            raise VerifyError(E_CHAIN_FORK, f"bseq {bseq}: h {h} differs from the accepted {self.accepted.get(bseq)}")
        if bseq > self.head_bseq + 1:
            raise VerifyError(self._gap_code(bseq, later_bseqs), f"bseq {bseq} after head {self.head_bseq}")
        if m["prev"] != self.head_h:
            raise VerifyError(E_CHAIN_PREV, f"prev {m['prev']} is not the head's h {self.head_h}")

        # Step 6 (cross-batch part), applied only once the batch is known to extend the chain.
        # SPEC-GAP: read literally, step 6 runs before the chain rule and would refuse every duplicate
        # (its rseq does not continue the head's) with E_RSEQ_ORDER.
        if records:
            first = records[0][1]
            if first <= self.last_rseq:
                raise VerifyError(E_RSEQ_ORDER, f"first rseq {first} does not continue {self.last_rseq}")
            if first > self.last_rseq + 1:
                rseq_gap = True

        # Step 8: key rotation
        new_epoch = None
        if key_records:
            rec = key_records[0]
            verify_key_proof(rec[7], rec[6], m["dev"], kid)
            new_pub = public_jwk(rec[6])
            new_epoch = _KeyEpoch(bseq + 1, new_pub, jwk_thumbprint(new_pub))

        # Accept
        if self.device is None:
            # SPEC-GAP: the enrolment document's format (and so the enrolled device id) is not specified;
            # without one we bind the device id of the first accepted batch.
            self.device = m["dev"]
        self.head_bseq, self.head_h = bseq, h
        self.accepted[bseq] = h
        if records:
            self.last_rseq = records[-1][1]
        if new_epoch is not None:
            self.keys.append(new_epoch)
        for rec in records:
            if rec[0] == "hb":
                self.last_hb_interval_ms = rec[6]
        self.last_batch_wall = m["t"]["wall"]
        if rseq_gap:
            return Verdict(index, bseq, E_RSEQ_GAP, "extends", True, h, "rseq jumps: records deleted before sealing")
        return Verdict(index, bseq, OK, "extends", True, h)


def _peek_bseq(raw: RawBatch) -> int | None:
    """Unauthenticated bseq of a batch (used to pick the key for its bseq and to tell reorder from gap)."""
    if raw.token_line is None:
        return None
    try:
        parts = raw.token_line.decode("ascii").split(".")
        m = strict_loads(b64url_decode(parts[1]))
        b = m.get("bseq") if isinstance(m, dict) else None
        return b if _is_int(b) else None
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def verify_stream(data: bytes, enrolled_jwk: dict, expected_last: int | None = None, *,
                  device: str | None = None, chain: Chain | None = None, now_wall: int | None = None) -> list:
    """Verify an export stream (batch files concatenated).  Returns one Verdict per batch, plus a
    stream-level E_CHAIN_TRUNCATED verdict when expected_last is given and the stream ends early (and
    E_CHAIN_SILENT when now_wall is given).  Pass `chain` to continue from a previous state."""
    if chain is None:
        chain = Chain(enrolled_jwk, device=device)
    return chain.verify_stream(data, expected_last=expected_last, now_wall=now_wall)


# --------------------------------------------------------------------------------------------
# Receipts
# --------------------------------------------------------------------------------------------
RECEIPT_MEMBERS = {"v", "dev", "bseq", "batch", "n", "log", "at"}


def verify_receipt(token: str, bank_jwk: dict) -> dict:
    """Verify a receipt JWS with the bank's key; returns its payload.
    SPEC-GAP: the spec names no codes for receipts; the batch codes are reused by analogy
    (E_JWS_KID / E_JWS_SIGNATURE / E_PAYLOAD_MALFORMED / E_PAYLOAD_VERSION)."""
    token = token.strip()
    pt = verify_jws(token, public_jwk(bank_jwk), TYP_RECEIPT)
    try:
        p = strict_loads(pt.payload_bytes)
    except ValueError as exc:
        raise VerifyError(E_PAYLOAD_MALFORMED, f"receipt payload: {exc}") from exc
    if not isinstance(p, dict):
        raise VerifyError(E_PAYLOAD_MALFORMED, "receipt payload is not an object")
    if "v" in p and p["v"] != 1:
        raise VerifyError(E_PAYLOAD_VERSION, f"receipt v is {p['v']!r}")
    if set(p) != RECEIPT_MEMBERS:
        raise VerifyError(E_PAYLOAD_MALFORMED, f"receipt members {sorted(p)}")
    log = p["log"]
    ok = (
        isinstance(p["dev"], str) and _is_int(p["bseq"]) and p["bseq"] >= 1 and is_hex64(p["batch"])
        and _is_int(p["n"]) and p["n"] >= 1 and _is_int(p["at"])
        and isinstance(log, dict) and set(log) == {"idx", "root", "size"} and _is_int(log["idx"])
        and _is_int(log["size"]) and 0 <= log["idx"] < log["size"] and is_hex64(log["root"])
    )
    if not ok:
        raise VerifyError(E_PAYLOAD_MALFORMED, "receipt member of the wrong type")
    if canonical_json(p) != pt.payload_bytes:
        raise VerifyError(E_PAYLOAD_MALFORMED, "receipt payload is not canonical JSON")
    return p


def receipt_signing_input_hash(token: str) -> str:
    """The hash a device puts in its next manifest's rcpt."""
    return parse_token(token.strip()).h


def check_receipt_names(payload: dict, batch: str | bytes) -> None:
    """Check the receipt's dev, bseq and batch against a batch (its token, or its batch file)."""
    if isinstance(batch, bytes):
        batch = batch.decode("ascii", "replace")
    token = batch.split("\n", 1)[0].strip()
    pt = parse_token(token)
    m = parse_manifest(pt.payload_bytes)
    for name, want in (("dev", m["dev"]), ("bseq", m["bseq"]), ("batch", pt.h)):
        if payload.get(name) != want:
            raise VerifyError(X_RECEIPT_MISMATCH, f"receipt {name} = {payload.get(name)!r}, batch has {want!r}")


def receipt_names(payload: dict, batch: str | bytes) -> bool:
    try:
        check_receipt_names(payload, batch)
        return True
    except VerifyError:
        return False


# --------------------------------------------------------------------------------------------
# Inclusion proofs
# --------------------------------------------------------------------------------------------
PROOF_MEMBERS = {"v", "type", "batch", "index", "record", "path", "jwk", "receipt"}


def verify_inclusion_proof(proof: dict | bytes | str, enrolled_jwk: dict, *, device: str | None = None,
                           bank_jwk: dict | None = None) -> list:
    """Verify an inclusion proof document; returns the disclosed record (parsed).

    SPEC-GAP: the spec names no code for a failing proof; E_MERKLE_ROOT ("a record was altered") is
    used when the path does not lead to the manifest's root or the index is out of range,
    E_PAYLOAD_MALFORMED / E_PAYLOAD_VERSION for a malformed document.
    SPEC-GAP: "take the device's key from its enrolment" cannot verify a batch signed after a key
    rotation; pass the key in force for that batch (established by verifying the stream) as enrolled_jwk.
    """
    if isinstance(proof, (bytes, str)):
        raw = proof.encode("utf-8") if isinstance(proof, str) else proof
        try:
            doc = strict_loads(raw)
        except ValueError as exc:
            raise VerifyError(E_PAYLOAD_MALFORMED, f"proof document: {exc}") from exc
        # SPEC-GAP: the document is said to be canonical JSON, but nothing hashes or signs its bytes and
        # the proof procedure does not ask for the check; we parse strictly (no floats) and do not
        # require canonical bytes for the document itself (the record string inside it must be).
    else:
        doc = proof
    if not isinstance(doc, dict):
        raise VerifyError(E_PAYLOAD_MALFORMED, "proof is not an object")
    if "v" in doc and doc["v"] != 1:
        raise VerifyError(E_PAYLOAD_VERSION, f"proof v is {doc['v']!r}")
    if set(doc) != PROOF_MEMBERS:
        raise VerifyError(E_PAYLOAD_MALFORMED, f"proof members {sorted(doc)}")
    if doc["type"] != "vouch-inclusion-proof":
        raise VerifyError(E_PAYLOAD_MALFORMED, "proof type is not vouch-inclusion-proof")
    if not (isinstance(doc["batch"], str) and _is_int(doc["index"]) and isinstance(doc["record"], str)
            and isinstance(doc["path"], list) and all(is_hex64(p) for p in doc["path"])
            and isinstance(doc["jwk"], dict) and (doc["receipt"] is None or isinstance(doc["receipt"], str))):
        raise VerifyError(E_PAYLOAD_MALFORMED, "proof member of the wrong type")

    # "verify batch as in step 2" with the enrolled key (doc["jwk"] is ignored: convenience only)
    pt = verify_jws(doc["batch"], public_jwk(enrolled_jwk), TYP_BATCH)
    m = parse_manifest(pt.payload_bytes)
    if device is not None and m["dev"] != device:
        raise VerifyError(E_DEVICE_MISMATCH, f"manifest dev {m['dev']!r}, enrolled {device!r}")

    line = doc["record"].encode("utf-8")
    rec = parse_record_line(line)
    # SPEC-GAP: the proof procedure only asks for canonical form; Versioning says a v1 verifier refuses
    # any record kind or field it does not know, so the kind/field check of step 6 is applied too.
    check_record(rec)

    path = [bytes.fromhex(p) for p in doc["path"]]
    if not verify_audit_path(doc["index"], m["n"], line, path, bytes.fromhex(m["root"])):
        raise VerifyError(E_MERKLE_ROOT, "the audit path does not lead from the record to the manifest's root")

    if bank_jwk is not None and doc["receipt"] is not None:
        payload = verify_receipt(doc["receipt"], bank_jwk)
        check_receipt_names(payload, doc["batch"])
    return rec


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def load_jwk_file(path: str) -> tuple[dict, str | None]:
    """A bare JWK, or an enrolment document with a "jwk" member.
    SPEC-GAP: the enrolment document's format is not specified; a device id is taken from a "dev",
    "device" or "device_id" string member when present."""
    with open(path, "rb") as f:
        doc = json.loads(f.read())
    device = None
    if isinstance(doc, dict) and isinstance(doc.get("jwk"), dict):
        for name in ("dev", "device", "device_id"):
            if isinstance(doc.get(name), str):
                device = doc[name]
                break
        doc = doc["jwk"]
    return public_jwk(doc), device


def _cmd_stream(args) -> int:
    jwk, device = load_jwk_file(args.jwk)
    data = b""
    for path in args.files:
        with open(path, "rb") as f:
            data += f.read()
    verdicts = verify_stream(data, jwk, args.last, device=args.device or device)
    for v in verdicts:
        print(v.line())
    if not verdicts:
        print("no batches")
        return 1
    return 0 if all(v.ok for v in verdicts) else 1


def _cmd_receipt(args) -> int:
    bank, _ = load_jwk_file(args.bank_jwk)
    with open(args.token, "r", encoding="ascii") as f:
        token = f.read().strip()
    try:
        p = verify_receipt(token, bank)
        if args.batch:
            with open(args.batch, "rb") as f:
                check_receipt_names(p, f.read())
    except VerifyError as exc:
        print(f"receipt {exc.code} ({exc.detail})")
        return 1
    print(f"receipt ok dev={p['dev']} bseq={p['bseq']} batch={p['batch']} log.idx={p['log']['idx']} "
          f"log.size={p['log']['size']} log.root={p['log']['root']}")
    return 0


def _cmd_proof(args) -> int:
    jwk, device = load_jwk_file(args.jwk)
    bank = load_jwk_file(args.bank_jwk)[0] if args.bank_jwk else None
    with open(args.proof, "rb") as f:
        raw = f.read()
    try:
        rec = verify_inclusion_proof(raw, jwk, device=device, bank_jwk=bank)
    except VerifyError as exc:
        print(f"proof {exc.code} ({exc.detail})")
        return 1
    print(f"proof ok kind={rec[0]} rseq={rec[1]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spec_verifier.py", description="Vouch evidence format v1 verifier")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream", help="verify batch files / an export stream")
    s.add_argument("--jwk", required=True, help="enrolled device JWK or enrolment document")
    s.add_argument("--last", type=int, default=None, help="last bseq known from the bank's latest receipt")
    s.add_argument("--device", default=None, help="enrolled device id")
    s.add_argument("files", nargs="+")
    r = sub.add_parser("receipt", help="verify a bank receipt")
    r.add_argument("--bank-jwk", required=True)
    r.add_argument("--batch", default=None, help="batch file the receipt must name")
    r.add_argument("token")
    p = sub.add_parser("proof", help="verify an inclusion proof")
    p.add_argument("--jwk", required=True)
    p.add_argument("--bank-jwk", default=None, help="also verify the embedded receipt")
    p.add_argument("proof")
    args = ap.parse_args(argv)
    try:
        return {"stream": _cmd_stream, "receipt": _cmd_receipt, "proof": _cmd_proof}[args.cmd](args)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
