#!/usr/bin/env python3
"""Verifier for the Vouch evidence format v1, written from EvidenceFormat.md (revised) alone.

Dependencies: joserfc (JWS / ES256 verification) and the standard library
(hashlib, base64, json).  Every decision the specification still leaves open is
marked in the code with "SPEC-GAP" and listed in the accompanying report.

Library API
-----------
    canonical_json(value) -> bytes
    strict_loads(data) -> value               (refuses floats, exponents, NaN, dup keys, |int| > 2^63)
    jwk_thumbprint(jwk) -> str                (RFC 7638, computed here)
    load_key_document(doc) -> (jwk, device)   (bare JWK, enrolment document, or `vouch-bank key` output)
    merkle_root(leaves) -> bytes              (RFC 6962 MTH)
    audit_path(index, leaves) -> [bytes]      (RFC 6962 PATH, leaf side first)
    verify_audit_path(index, n, leaf, path, root) -> bool   (the spec's RFC 9162 2.1.3.2 pseudo-code)
    log_root(batch_hashes) -> bytes           (bank log: leaves are raw 32-byte signing-input hashes)
    verify_stream(data, enrolled_jwk, expected_last=None, ...) -> [Verdict]
    verify_receipt(token, bank_jwk) -> payload dict
    check_receipt_names(payload, batch) -> None (raises VerifyError(E_RECEIPT_MISMATCH))
    receipt_signing_input_hash(token) -> hex
    verify_inclusion_proof(proof, jwk, ...) -> record (list)
        jwk: the key in force for the batch, an enrolment document, or a Chain (the key history)

CLI
---
    python spec_verifier.py stream  --jwk FILE [--last N] [--device ID] FILE...
    python spec_verifier.py receipt --bank-jwk FILE [--batch BATCHFILE] TOKENFILE
    python spec_verifier.py proof   --jwk FILE [--history STREAM] [--bank-jwk FILE] PROOF.json
--jwk takes a bare JWK or the enrolment document (`vouch enroll`); --bank-jwk a bare JWK or the
output of `vouch-bank key`.  Exit status 0 when everything verifies, 1 otherwise.
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
# Error codes (the spec's "Error codes" table)
# --------------------------------------------------------------------------------------------
OK = "ok"
E_BATCH_MALFORMED = "E_BATCH_MALFORMED"
E_JWS_MALFORMED = "E_JWS_MALFORMED"
E_JWS_ALG = "E_JWS_ALG"
E_JWS_KID = "E_JWS_KID"
E_JWS_SIGNATURE = "E_JWS_SIGNATURE"
E_DEVICE_UNKNOWN = "E_DEVICE_UNKNOWN"      # bank-side only (no enrolled device has the kid)
E_DEVICE_MISMATCH = "E_DEVICE_MISMATCH"
E_DEVICE_REVOKED = "E_DEVICE_REVOKED"      # bank-side only
E_PAYLOAD_MALFORMED = "E_PAYLOAD_MALFORMED"
E_PAYLOAD_VERSION = "E_PAYLOAD_VERSION"
E_RECORD_NOT_CANONICAL = "E_RECORD_NOT_CANONICAL"
E_RECORD_MALFORMED = "E_RECORD_MALFORMED"
E_MERKLE_ROOT = "E_MERKLE_ROOT"
E_CHAIN_GAP = "E_CHAIN_GAP"
E_CHAIN_REORDER = "E_CHAIN_REORDER"
E_CHAIN_PREV = "E_CHAIN_PREV"
E_CHAIN_FORK = "E_CHAIN_FORK"
E_RSEQ_ORDER = "E_RSEQ_ORDER"
E_RSEQ_GAP = "E_RSEQ_GAP"
E_KEY_ROTATION = "E_KEY_ROTATION"
E_KEY_RETIRED = "E_KEY_RETIRED"
E_CHAIN_TRUNCATED = "E_CHAIN_TRUNCATED"
E_CHAIN_SILENT = "E_CHAIN_SILENT"
E_RECEIPT_MISMATCH = "E_RECEIPT_MISMATCH"
E_PROOF_INVALID = "E_PROOF_INVALID"

SPEC_CODES = frozenset(
    [
        E_BATCH_MALFORMED, E_JWS_MALFORMED, E_JWS_ALG, E_JWS_KID, E_JWS_SIGNATURE, E_DEVICE_UNKNOWN,
        E_DEVICE_MISMATCH, E_DEVICE_REVOKED, E_PAYLOAD_MALFORMED, E_PAYLOAD_VERSION, E_RECORD_NOT_CANONICAL,
        E_RECORD_MALFORMED, E_MERKLE_ROOT, E_CHAIN_GAP, E_CHAIN_REORDER, E_CHAIN_PREV, E_CHAIN_FORK,
        E_RSEQ_ORDER, E_RSEQ_GAP, E_KEY_ROTATION, E_KEY_RETIRED, E_CHAIN_TRUNCATED, E_CHAIN_SILENT,
        E_RECEIPT_MISMATCH, E_PROOF_INVALID,
    ]
)

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


class NotInValueSpace(ValueError):
    """Not JSON text, or JSON outside the format's value space: a float / exponent, NaN or Infinity,
    an integer outside int64, invalid UTF-8."""


class NotCanonicalValue(ValueError):
    """Valid JSON that no canonical text can reproduce: a duplicate member, an escaped lone surrogate."""


def _refuse_float(text: str) -> Any:
    raise NotInValueSpace(f"JSON number with fraction or exponent refused: {text}")


def _refuse_constant(text: str) -> Any:
    raise NotInValueSpace(f"non-JSON constant refused: {text}")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    obj: dict = {}
    for k, v in pairs:
        if k in obj:
            raise NotCanonicalValue(f"duplicate object member {k!r}")
        obj[k] = v
    return obj


def _check_value_space(v: Any) -> None:
    if isinstance(v, bool) or v is None:
        return
    if isinstance(v, int):
        if not INT64_MIN <= v <= INT64_MAX:
            raise NotInValueSpace("integer outside the signed 64-bit range")
    elif isinstance(v, str):
        _check_utf8(v)
    elif isinstance(v, list):
        for x in v:
            _check_value_space(x)
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_utf8(k)
            _check_value_space(x)


def _check_utf8(s: str) -> None:
    try:
        s.encode("utf-8")  # refuses lone surrogates smuggled in as \ud800 escapes
    except UnicodeEncodeError as exc:
        raise NotCanonicalValue("string holds a lone surrogate") from exc


def strict_loads(data: bytes | str) -> Any:
    """Parse JSON in the format's value space.  Refuses any number written with '.', 'e' or 'E',
    NaN/Infinity, integers outside int64 and invalid UTF-8 (NotInValueSpace), duplicate keys and lone
    surrogates (NotCanonicalValue).  Both are ValueError."""
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")  # strict
        except UnicodeDecodeError as exc:
            raise NotInValueSpace(f"not UTF-8: {exc}") from exc
    else:
        text = data
    try:
        value = json.loads(
            text,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_pairs_no_duplicates,
        )
    except (NotInValueSpace, NotCanonicalValue):
        raise
    except ValueError as exc:  # json.JSONDecodeError
        raise NotInValueSpace(f"not JSON: {exc}") from exc
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
    """The {"crv","kty","x","y"} members of a P-256 JWK (a private 'd' or other members are dropped:
    "only these members are used").  Raises ValueError when it is not a valid P-256 public key."""
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


def load_key_document(doc: dict) -> tuple[dict, str | None]:
    """A bare public JWK, the device's enrolment document
    {"alg":"ES256","created_ms":…,"device":…,"jwk":{…},"kid":…}, or the bank key document
    {"jwk":{…},"kid":…}.  Returns (public JWK, device id or None).  A document whose kid is not the
    JWK's thumbprint, or whose alg is not ES256, is refused (ValueError)."""
    if not isinstance(doc, dict):
        raise ValueError("key document must be an object")
    if "jwk" not in doc:
        return public_jwk(doc), None
    pub = public_jwk(doc["jwk"])
    if "kid" in doc and doc["kid"] != jwk_thumbprint(pub):
        raise ValueError("key document's kid is not the RFC 7638 thumbprint of its jwk")
    if "alg" in doc and doc["alg"] != "ES256":
        raise ValueError("key document's alg is not ES256")
    device = doc.get("device")
    if device is not None and not isinstance(device, str):
        raise ValueError("enrolment document's device is not a string")
    return pub, device


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
    """The spec's pseudo-code (RFC 9162 section 2.1.3.2).  'leaf' is the leaf's data (record line)."""
    if not (_is_int(index) and _is_int(n)):
        return False
    if index < 0 or index >= n:  # "if index < 0 or index ≥ n: fail"
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
    """Split a JWS compact token without verifying it.  Raises VerifyError(E_JWS_MALFORMED):
    not three base64url parts, detached (empty) payload, header not a JSON object."""
    if not isinstance(token, str):
        raise VerifyError(E_JWS_MALFORMED, "token is not a string")
    parts = token.split(".")
    if len(parts) != 3:
        raise VerifyError(E_JWS_MALFORMED, "token is not JWS compact serialisation (3 parts)")
    if parts[1] == "":
        raise VerifyError(E_JWS_MALFORMED, "detached payload is not allowed")
    try:
        header_bytes = b64url_decode(parts[0])
        payload_bytes = b64url_decode(parts[1])
        b64url_decode(parts[2])
    except ValueError as exc:
        raise VerifyError(E_JWS_MALFORMED, f"token segment: {exc}") from exc
    try:
        header = strict_loads(header_bytes)
    except ValueError as exc:
        raise VerifyError(E_JWS_MALFORMED, f"protected header is not JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise VerifyError(E_JWS_MALFORMED, "protected header is not an object")
    return ParsedToken(token, header, header_bytes, payload_bytes, (parts[0] + "." + parts[1]).encode("ascii"))


def check_header(pt: ParsedToken, typ: str) -> str:
    """Step 2's header checks, in the spec's order: alg ES256 (E_JWS_ALG), typ (E_JWS_MALFORMED),
    no crit (E_JWS_MALFORMED), a kid (E_JWS_KID).  Returns the kid."""
    hdr = pt.header
    if hdr.get("alg") != "ES256":
        raise VerifyError(E_JWS_ALG, f"alg must be ES256, got {hdr.get('alg')!r}")
    if hdr.get("typ") != typ:
        raise VerifyError(E_JWS_MALFORMED, f"typ must be {typ}, got {hdr.get('typ')!r}")
    if "crit" in hdr:
        raise VerifyError(E_JWS_MALFORMED, "a crit header is not allowed")
    # SPEC-GAP: the header is given as exactly {alg, kid, typ}, but E_JWS_MALFORMED lists only a wrong typ
    # and crit; other protected header members are ignored (as JOSE does for unknown non-crit members).
    # The header's canonical form is not checked: "a verifier need not check" it (Canonical JSON).
    if not isinstance(hdr.get("kid"), str):
        raise VerifyError(E_JWS_KID, "protected header has no string kid")
    return hdr["kid"]


def jws_signature_valid(token: str, jwk: dict) -> bool:
    """Signature check with joserfc, ES256 only (r || s, 64 bytes)."""
    try:
        if len(b64url_decode(token.rsplit(".", 1)[1])) != 64:
            return False
        key = ECKey.import_key(public_jwk(jwk))
        jws.deserialize_compact(token, key, algorithms=["ES256"])
        return True
    except (JoseError, ValueError, TypeError, IndexError):
        return False


def verify_jws(token: str, jwk: dict, typ: str) -> ParsedToken:
    """Step 2 for one token against one key: structure, alg, typ, kid = thumbprint(jwk), signature."""
    pt = parse_token(token)
    kid = check_header(pt, typ)
    pub = public_jwk(jwk)
    if kid != jwk_thumbprint(pub):
        raise VerifyError(E_JWS_KID, f"kid {kid} is not the thumbprint {jwk_thumbprint(pub)} of the key")
    if not jws_signature_valid(token, pub):
        raise VerifyError(E_JWS_SIGNATURE, "signature does not verify")
    return pt


# --------------------------------------------------------------------------------------------
# Keys in force per bseq ("Enrolment and keys", `key` records)
# --------------------------------------------------------------------------------------------
@dataclass
class _KeyEpoch:
    from_bseq: int   # in force from this bseq through the bseq of the next epoch's rotation batch
    jwk: dict
    kid: str


def _key_in_force(epochs: list, bseq: int) -> _KeyEpoch:
    """The key in force at bseq: the enrolled key from 1 through the batch holding the first rotation,
    each rotated-in key from the batch after its rotation through the batch holding the next one."""
    cur = epochs[0]
    for ep in epochs:
        if ep.from_bseq <= bseq:
            cur = ep
    return cur


def _claimed_bseq(payload_bytes: bytes) -> int | None:
    """The manifest's bseq, read before step 3's checks (step 2 needs it); None when unreadable."""
    try:
        m = strict_loads(payload_bytes)
    except ValueError:
        return None
    b = m.get("bseq") if isinstance(m, dict) else None
    return b if _is_int(b) and b >= 1 else None


def verify_batch_jws(token: str, epochs: list) -> tuple[ParsedToken, _KeyEpoch]:
    """Step 2 against a device's key history, in the spec's order: three base64url parts
    (E_JWS_MALFORMED), alg (E_JWS_ALG), typ (E_JWS_MALFORMED), kid is one of the device's keys
    (E_JWS_KID), that key is in force at the manifest's bseq (E_KEY_RETIRED), signature (E_JWS_SIGNATURE)."""
    pt = parse_token(token)
    kid = check_header(pt, TYP_BATCH)
    with_kid = [ep for ep in epochs if ep.kid == kid]
    if not with_kid:
        raise VerifyError(E_JWS_KID, f"kid {kid} names no key of this device")
    bseq = _claimed_bseq(pt.payload_bytes)
    if bseq is not None:
        epoch = _key_in_force(epochs, bseq)
        if epoch.kid != kid:
            # Checked before the signature, as step 2 orders it.
            raise VerifyError(E_KEY_RETIRED, f"bseq {bseq} is signed by key {kid}; the key in force at bseq "
                                             f"{bseq} is {epoch.kid}")
    else:
        # SPEC-GAP: step 2 needs "the manifest's bseq" before step 3 parses the manifest.  When it cannot
        # be read, the in-force check is skipped; the signature is checked with the key of that kid and
        # step 3 then refuses the manifest (E_PAYLOAD_MALFORMED).
        epoch = with_kid[-1]
    if not jws_signature_valid(token, epoch.jwk):
        raise VerifyError(E_JWS_SIGNATURE, "signature does not verify with the key in force")
    return pt, epoch


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
    # is reported first, since a later version may legitimately have other members.
    if "v" in m and m["v"] != 1:
        raise VerifyError(E_PAYLOAD_VERSION, f"manifest v is {m['v']!r}, not 1")
    missing = MANIFEST_MEMBERS - set(m)
    extra = set(m) - MANIFEST_MEMBERS
    if missing or extra:
        raise VerifyError(E_PAYLOAD_MALFORMED, f"manifest members: missing {sorted(missing)}, unknown {sorted(extra)}")
    if not isinstance(m["dev"], str):
        raise VerifyError(E_PAYLOAD_MALFORMED, "dev is not a string")
    if not _is_int(m["bseq"]) or m["bseq"] < 1:
        raise VerifyError(E_PAYLOAD_MALFORMED, "bseq is not an integer >= 1")
    if not is_hex64(m["prev"]):
        raise VerifyError(E_PAYLOAD_MALFORMED, "prev is not 64 lowercase hex digits")
    boot = m["boot"]
    # SPEC-GAP: boot and t are given with their members but without saying whether other members are
    # allowed, nor the JSON type of boot.id; we require exactly the listed members, id a string, and
    # t.tq from the closed tq list.
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
    # The manifest's canonical form is not checked: it is signed over its exact bytes and "a verifier
    # need not check" it (Canonical JSON).
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
    # "each exactly [mono, wall, value] with two integers and an integer or null"
    return isinstance(v, list) and all(
        isinstance(s, list) and len(s) == 3 and _is_int(s[0]) and _is_int(s[1]) and _t_int_null(s[2]) for s in v
    )


def _t_values(v):
    return isinstance(v, list) and all(_t_int_null(x) for x in v)


COMMON_FIELDS = [
    ("kind", _t_str),
    ("rseq", _t_pos_int),
    ("boot", _t_int),
    ("mono", _t_int),
    ("wall", _t_int),
    ("tq", _t_enum(*TQ_VALUES)),
]

# Closed value lists (Records): phase, reason, tq, tq_before.  Open: severity, unit, claim values.
# SPEC-GAP: the att claims are typed in prose (bootcount integer, bootseed base64url of 16 bytes, ...),
# but the spec does not say whether a known claim of the wrong type makes the record malformed; the
# field's type is "object" and only that is checked (claim values are open, unknown claims ignored).
# The key record's new_jwk is checked as an object here; whether it is a usable P-256 key is decided
# by its proof in step 9 (E_KEY_ROTATION).
KIND_FIELDS: dict[str, list[tuple[str, Any]]] = {
    "sum": [
        ("channel", _t_str), ("interval_ms", _t_int), ("unit", _t_str), ("scale", _t_int),
        ("count", _t_int), ("errors", _t_int), ("min", _t_int_null), ("max", _t_int_null),
        ("mean", _t_int_null), ("last", _t_int_null), ("last_error", _t_str_null),
    ],
    "evt": [
        ("event_id", _t_str), ("phase", _t_enum("start", "end")), ("rule", _t_str), ("rule_v", _t_int),
        ("channel", _t_str), ("severity", _t_str), ("start_mono", _t_int),
        ("start_wall", _t_int), ("end_mono", _t_int_null), ("end_wall", _t_int_null), ("duration_ms", _t_int),
        ("unit", _t_str), ("scale", _t_int), ("params", _t_obj), ("baseline", _t_obj_null),
        ("window", _t_window), ("explanation", _t_str),
    ],
    "hb": [("interval_ms", _t_int), ("uptime_ms", _t_int), ("backlog", _t_int)],
    "gap": [
        ("reason", _t_enum("agent_down", "sensor_unreachable", "disk_budget", "store_corrupt")), ("channel", _t_str_null),
        ("from_boot", _t_int), ("from_mono", _t_int), ("from_wall", _t_int), ("to_mono", _t_int),
        ("to_wall", _t_int), ("missing", _t_int), ("detail", _t_str),
    ],
    "cfg": [
        ("config_sha256", _t_hex), ("previous_sha256", _t_hex_null), ("source", _t_str),
        ("who", _t_str_null), ("summary", _t_str),
    ],
    "act": [("action", _t_str), ("who", _t_str_null), ("params", _t_obj), ("explanation", _t_str)],
    "att": [("claims", _t_obj)],
    "key": [("new_jwk", _t_obj), ("proof", _t_str)],
    "clk": [("expected_wall", _t_int), ("step_ms", _t_int), ("tq_before", _t_enum(*TQ_VALUES))],
    "raw": [
        ("channel", _t_str), ("unit", _t_str), ("scale", _t_int), ("period_ms", _t_pos_int),
        ("values", _t_values),
    ],
}


def check_record(rec: Any) -> None:
    """Step 6 (per record): known kind, exact field count, field types and closed value lists.
    E_RECORD_MALFORMED."""
    if not isinstance(rec, list) or len(rec) < 1:
        raise VerifyError(E_RECORD_MALFORMED, "record is not a non-empty array")
    kind = rec[0]
    if not isinstance(kind, str) or kind not in KIND_FIELDS:
        raise VerifyError(E_RECORD_MALFORMED, f"unknown record kind {kind!r}")
    fields = COMMON_FIELDS + KIND_FIELDS[kind]
    if len(rec) != len(fields):
        raise VerifyError(E_RECORD_MALFORMED, f"{kind} record has {len(rec)} fields, the kind defines {len(fields)}")
    for i, (name, check) in enumerate(fields):
        if not check(rec[i]):
            raise VerifyError(E_RECORD_MALFORMED, f"{kind} field {i} ({name}) has the wrong type/value: {rec[i]!r}")


def parse_record_line(line: bytes) -> list:
    """Step 4 for one line: it parses as JSON without floats (else E_RECORD_MALFORMED, as step 6 and
    the error table name it) and re-serialising it canonically gives its exact bytes (else
    E_RECORD_NOT_CANONICAL).
    SPEC-GAP: the spec checks "parses as JSON without floats" in step 4 but names its code in step 6; we
    report it where the parse happens (step 4, so before the Merkle root).  An integer outside int64 is
    treated like a float (E_RECORD_MALFORMED); valid JSON that cannot be re-serialised to its own bytes
    (a duplicate member, an escaped lone surrogate) is E_RECORD_NOT_CANONICAL."""
    try:
        rec = strict_loads(line)
    except NotCanonicalValue as exc:
        raise VerifyError(E_RECORD_NOT_CANONICAL, str(exc)) from exc
    except ValueError as exc:
        raise VerifyError(E_RECORD_MALFORMED, f"record line is not JSON without floats: {exc}") from exc
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
# Key rotation proof (step 9)
# --------------------------------------------------------------------------------------------
def verify_key_proof(proof: str, new_jwk: dict, device: str, old_kid: str) -> dict:
    """Verify a key record's proof with new_jwk: header {"alg":"ES256","kid":<new kid>,
    "typ":"vouch-key-proof+jws"}, signed by the new key, payload {"dev","new","old"} naming this device,
    the new key's thumbprint and the kid that signed the batch.  Raises VerifyError(E_KEY_ROTATION)."""
    try:
        new_pub = public_jwk(new_jwk)
        new_kid = jwk_thumbprint(new_pub)
        pt = parse_token(proof)
        hdr = pt.header
        if hdr.get("alg") != "ES256" or hdr.get("typ") != TYP_KEY_PROOF:
            raise VerifyError(E_KEY_ROTATION, "proof header must be alg ES256, typ vouch-key-proof+jws")
        if "crit" in hdr:
            raise VerifyError(E_KEY_ROTATION, "proof header has crit")
        if hdr.get("kid") != new_kid:
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
    # SPEC-GAP: the payload is given as {"dev","new","old"}; whether other members are allowed is not
    # said.  We require exactly these three (a v1 verifier never guesses).
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
class Chain:
    """Verification state for one device: the bank's view of its accepted batches and its key history.
    enrolled_jwk may be the bare JWK or the enrolment document (which names the device)."""

    enrolled_jwk: dict
    device: str | None = None
    head_bseq: int = 0
    head_h: str = ZERO_HASH
    accepted: dict = field(default_factory=dict)        # bseq -> h
    last_rseq: int = 0
    keys: list = field(default_factory=list)            # [_KeyEpoch], the key history
    forks: list = field(default_factory=list)           # refused equivocating tokens, kept as evidence
    last_hb_interval_ms: int | None = None
    last_batch_wall: int | None = None
    last_arrival_wall: int | None = None                # set by a caller that knows arrival times

    def __post_init__(self):
        pub, enrolled_device = load_key_document(self.enrolled_jwk)
        self.enrolled_jwk = pub
        if self.device is None:
            self.device = enrolled_device
        elif enrolled_device is not None and enrolled_device != self.device:
            raise ValueError("device id differs from the enrolment document's")
        if not self.keys:
            self.keys = [_KeyEpoch(1, pub, jwk_thumbprint(pub))]

    def key_for(self, bseq: int) -> _KeyEpoch:
        """The key in force at bseq."""
        return _key_in_force(self.keys, bseq)

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
        """E_CHAIN_SILENT: no batch arrived for more than twice the latest accepted heartbeat's interval_ms.
        SPEC-GAP: silence is measured from the last batch's arrival at the bank, which a stream does not
        carry; set last_arrival_wall when it is known, else the last accepted manifest's t.wall (the
        device's own clock at sealing) stands in for it."""
        since = self.last_arrival_wall if self.last_arrival_wall is not None else self.last_batch_wall
        if self.last_hb_interval_ms is None or since is None:
            return None
        if now_wall - since > 2 * self.last_hb_interval_ms:
            return Verdict(-1, self.head_bseq, E_CHAIN_SILENT, "stream", False, None,
                           f"no batch since wall {since}, heartbeat interval {self.last_hb_interval_ms} ms")
        return None

    def verify_batch(self, raw: RawBatch, index: int = 0, later_bseqs: set | None = None,
                     peeked_bseq: int | None = None) -> Verdict:
        later_bseqs = later_bseqs or set()
        try:
            return self._verify_batch(raw, index, later_bseqs)
        except VerifyError as exc:
            return Verdict(index, peeked_bseq, exc.code, "refused", False, None, exc.detail)

    def _gap_code(self, bseq: int, later_bseqs: set) -> str:
        # "a batch that skips ahead (a gap) is a reorder when the batch at the first missing bseq appears
        # later in the same stream"
        return E_CHAIN_REORDER if self.head_bseq + 1 in later_bseqs else E_CHAIN_GAP

    def _verify_batch(self, raw: RawBatch, index: int, later_bseqs: set) -> Verdict:
        # Step 1: the batch file's lines
        if raw.error or raw.token_line is None:
            raise VerifyError(E_BATCH_MALFORMED, raw.error or "no token line")
        try:
            token = raw.token_line.decode("ascii")
        except UnicodeDecodeError as exc:
            raise VerifyError(E_JWS_MALFORMED, "token line is not base64url") from exc

        # Step 2: structure, alg, typ, kid of one of the device's keys, key in force at bseq, signature
        pt, epoch = verify_batch_jws(token, self.keys)
        kid = epoch.kid

        # Step 3: manifest members, dev is the enrolled device
        m = parse_manifest(pt.payload_bytes)
        if self.device is not None and m["dev"] != self.device:
            raise VerifyError(E_DEVICE_MISMATCH, f"manifest dev {m['dev']!r}, enrolled {self.device!r}")
        bseq = m["bseq"]

        # Step 4: n record lines, JSON without floats, canonical
        if len(raw.record_lines) != m["n"]:
            raise VerifyError(E_BATCH_MALFORMED, f"{len(raw.record_lines)} record lines, manifest n = {m['n']}")
        records = [parse_record_line(line) for line in raw.record_lines]

        # Step 5: Merkle root
        if merkle_root(raw.record_lines).hex() != m["root"]:
            raise VerifyError(E_MERKLE_ROOT, "Merkle root of the record lines differs from the manifest's root")

        # Step 6: each record against its kind
        for rec in records:
            check_record(rec)

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

        # Step 8 (extending batches only): rseq strictly increasing, following the last accepted record's
        rseq_gap = False
        prev_rseq = self.last_rseq
        for rec in records:
            if rec[1] <= prev_rseq:
                raise VerifyError(E_RSEQ_ORDER, f"rseq {rec[1]} after {prev_rseq}")
            if rec[1] > prev_rseq + 1:
                rseq_gap = True
            prev_rseq = rec[1]

        # Step 9: key rotation (at most one key record)
        key_records = [rec for rec in records if rec[0] == "key"]
        new_epoch = None
        if len(key_records) > 1:
            raise VerifyError(E_KEY_ROTATION, "a batch holds at most one key record")
        if key_records:
            rec = key_records[0]
            verify_key_proof(rec[7], rec[6], m["dev"], kid)
            new_pub = public_jwk(rec[6])
            new_epoch = _KeyEpoch(bseq + 1, new_pub, jwk_thumbprint(new_pub))

        # Accept
        if self.device is None:
            # Without an enrolment document (a bare JWK and no device id) the first accepted batch's dev
            # is bound; pass the enrolment document to check step 3 from the first batch.
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
    """Unauthenticated bseq of a batch (used to tell reorder from gap, and in refusal verdicts)."""
    if raw.token_line is None:
        return None
    try:
        parts = raw.token_line.decode("ascii").split(".")
        return _claimed_bseq(b64url_decode(parts[1]))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


def verify_stream(data: bytes, enrolled_jwk: dict, expected_last: int | None = None, *,
                  device: str | None = None, chain: Chain | None = None, now_wall: int | None = None) -> list:
    """Verify an export stream (batch files concatenated).  enrolled_jwk is the enrolled JWK or the
    enrolment document.  Returns one Verdict per batch, plus a stream-level E_CHAIN_TRUNCATED verdict when
    expected_last is given and the stream ends early (and E_CHAIN_SILENT when now_wall is given).  Pass
    `chain` to continue from a previous state."""
    if chain is None:
        chain = Chain(enrolled_jwk, device=device)
    return chain.verify_stream(data, expected_last=expected_last, now_wall=now_wall)


# --------------------------------------------------------------------------------------------
# Receipts
# --------------------------------------------------------------------------------------------
RECEIPT_MEMBERS = {"v", "dev", "bseq", "batch", "n", "log", "at"}


def verify_receipt(token: str, bank_jwk: dict) -> dict:
    """Verify a receipt JWS with the bank's key (a bare JWK or the `vouch-bank key` document); returns
    its payload.  JWS failures carry the step-2 codes (E_JWS_MALFORMED, E_JWS_ALG, E_JWS_KID,
    E_JWS_SIGNATURE).
    SPEC-GAP: the spec names no code for a receipt payload that is malformed or has v != 1 (it only says a
    verifier must refuse another version); E_PAYLOAD_MALFORMED / E_PAYLOAD_VERSION are used by analogy."""
    token = token.strip()
    bank_pub, _ = load_key_document(bank_jwk)
    pt = verify_jws(token, bank_pub, TYP_RECEIPT)
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
    return p


def receipt_signing_input_hash(token: str) -> str:
    """The hash a device puts in its next manifest's rcpt."""
    return parse_token(token.strip()).h


def check_receipt_names(payload: dict, batch: str | bytes) -> None:
    """Check the receipt's dev, bseq and batch against a batch (its token, or its batch file).
    E_RECEIPT_MISMATCH when they differ."""
    if isinstance(batch, bytes):
        batch = batch.decode("ascii", "replace")
    token = batch.split("\n", 1)[0].strip()
    pt = parse_token(token)
    m = parse_manifest(pt.payload_bytes)
    for name, want in (("dev", m["dev"]), ("bseq", m["bseq"]), ("batch", pt.h)):
        if payload.get(name) != want:
            raise VerifyError(E_RECEIPT_MISMATCH, f"receipt {name} = {payload.get(name)!r}, batch has {want!r}")


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


def verify_inclusion_proof(proof: dict | bytes | str, jwk: Any, *, device: str | None = None,
                           bank_jwk: dict | None = None) -> list:
    """Verify an inclusion proof document; returns the disclosed record (parsed).

    jwk is the key history to verify the batch with (never the proof's own jwk): a Chain that has
    verified the device's stream (enrolment plus verified rotations, with their bseq ranges), the
    enrolment document, or a bare JWK (a history of that one key).

    Codes: the batch's JWS fails with the codes of step 2 (E_JWS_*, E_KEY_RETIRED); the manifest with
    those of step 3; a record that is not canonical JSON, an index outside [0, n), or a path that does not
    lead to the manifest's root is E_PROOF_INVALID.
    SPEC-GAP: no code is named for a malformed proof document (missing/extra/mistyped members, wrong
    type); E_PROOF_INVALID is used, and E_PAYLOAD_VERSION for v != 1 (by analogy with the manifest).
    SPEC-GAP: the proof procedure does not apply step 6 to the disclosed record; Versioning says a v1
    verifier refuses any record kind or field it does not know, so step 6 is applied last
    (E_RECORD_MALFORMED).
    SPEC-GAP: the document is called canonical JSON, but nothing hashes or signs its bytes and the
    procedure does not ask for the check; it is parsed strictly (no floats), its canonical form not
    required.
    """
    if isinstance(jwk, Chain):
        epochs = jwk.keys
        device = device if device is not None else jwk.device
    else:
        pub, enrolled_device = load_key_document(jwk)
        epochs = [_KeyEpoch(1, pub, jwk_thumbprint(pub))]
        device = device if device is not None else enrolled_device

    if isinstance(proof, (bytes, str)):
        raw = proof.encode("utf-8") if isinstance(proof, str) else proof
        try:
            doc = strict_loads(raw)
        except ValueError as exc:
            raise VerifyError(E_PROOF_INVALID, f"proof document: {exc}") from exc
    else:
        doc = proof
    if not isinstance(doc, dict):
        raise VerifyError(E_PROOF_INVALID, "proof is not an object")
    if "v" in doc and doc["v"] != 1:
        raise VerifyError(E_PAYLOAD_VERSION, f"proof v is {doc['v']!r}")
    if set(doc) != PROOF_MEMBERS:
        raise VerifyError(E_PROOF_INVALID, f"proof members {sorted(doc)}")
    if doc["type"] != "vouch-inclusion-proof":
        raise VerifyError(E_PROOF_INVALID, "proof type is not vouch-inclusion-proof")
    if not (isinstance(doc["batch"], str) and _is_int(doc["index"]) and isinstance(doc["record"], str)
            and isinstance(doc["path"], list) and all(is_hex64(p) for p in doc["path"])
            and isinstance(doc["jwk"], dict) and (doc["receipt"] is None or isinstance(doc["receipt"], str))):
        raise VerifyError(E_PROOF_INVALID, "proof member of the wrong type")

    # "verify batch as in step 2" with the key in force from the key history (doc["jwk"] is ignored)
    pt, _ = verify_batch_jws(doc["batch"], epochs)
    m = parse_manifest(pt.payload_bytes)
    if device is not None and m["dev"] != device:
        raise VerifyError(E_DEVICE_MISMATCH, f"manifest dev {m['dev']!r}, enrolled {device!r}")

    line = doc["record"].encode("utf-8")
    try:
        rec = parse_record_line(line)
    except VerifyError as exc:
        raise VerifyError(E_PROOF_INVALID, f"record is not canonical JSON: {exc.detail}") from exc

    path = [bytes.fromhex(p) for p in doc["path"]]
    if not verify_audit_path(doc["index"], m["n"], line, path, bytes.fromhex(m["root"])):
        raise VerifyError(E_PROOF_INVALID, "the record with the path does not lead to the manifest's root")

    check_record(rec)

    if bank_jwk is not None and doc["receipt"] is not None:
        payload = verify_receipt(doc["receipt"], bank_jwk)
        check_receipt_names(payload, doc["batch"])
    return rec


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def load_jwk_file(path: str) -> tuple[dict, str | None]:
    """A bare JWK, the enrolment document (`vouch enroll`), or the bank key document (`vouch-bank key`)."""
    with open(path, "rb") as f:
        doc = json.loads(f.read())
    return load_key_document(doc)


def _read_files(paths: list[str]) -> bytes:
    data = b""
    for path in paths:
        with open(path, "rb") as f:
            data += f.read()
    return data


def _cmd_stream(args) -> int:
    jwk, device = load_jwk_file(args.jwk)
    verdicts = verify_stream(_read_files(args.files), jwk, args.last, device=args.device or device)
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
    keys: Any = jwk
    if args.history:
        # The key history: the enrolment, then the keys introduced by verified key records.
        chain = Chain(jwk, device=device)
        chain.verify_stream(_read_files(args.history))
        keys = chain
    bank = load_jwk_file(args.bank_jwk)[0] if args.bank_jwk else None
    with open(args.proof, "rb") as f:
        raw = f.read()
    try:
        rec = verify_inclusion_proof(raw, keys, device=device, bank_jwk=bank)
    except VerifyError as exc:
        print(f"proof {exc.code} ({exc.detail})")
        return 1
    print(f"proof ok kind={rec[0]} rseq={rec[1]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="spec_verifier.py", description="Vouch evidence format v1 verifier")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stream", help="verify batch files / an export stream")
    s.add_argument("--jwk", required=True, help="enrolment document or enrolled device JWK")
    s.add_argument("--last", type=int, default=None, help="last bseq known from the bank's latest receipt")
    s.add_argument("--device", default=None, help="enrolled device id (when --jwk is a bare JWK)")
    s.add_argument("files", nargs="+")
    r = sub.add_parser("receipt", help="verify a bank receipt")
    r.add_argument("--bank-jwk", required=True, help="bank JWK or `vouch-bank key` document")
    r.add_argument("--batch", default=None, help="batch file the receipt must name")
    r.add_argument("token")
    p = sub.add_parser("proof", help="verify an inclusion proof")
    p.add_argument("--jwk", required=True, help="enrolment document or enrolled device JWK")
    p.add_argument("--history", action="append", default=None, metavar="BATCHFILE",
                   help="the device's batch files or export stream (repeatable), to learn keys rotated "
                        "in after enrolment")
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
