"""Tests for spec_verifier.py, driven only by the published test vectors (vectors.json).

The vectors' path comes from the environment variable VOUCH_VECTORS; by default it is the
vectors.json beside the specification, Sources/VouchEvidence/VouchEvidence.docc/Resources/vectors.json.
spec_verifier.py and these tests were written from EvidenceFormat.md and vectors.json alone, without
reading Vouch's code: they are the proof that the spec is enough.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import spec_verifier as sv  # noqa: E402

VECTORS_PATH = Path(os.environ.get("VOUCH_VECTORS")
                    or (HERE.parents[1] / "Sources" / "VouchEvidence" / "VouchEvidence.docc" / "Resources" / "vectors.json"))
V = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))

DEV = V["keys"]["device"]
ROT = V["keys"]["rotated_device"]
BANK = V["keys"]["bank"]
B = V["batches"]
FILES = [b["file"].encode("utf-8") for b in B]
DEVICE_ID = V["device"]
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# ------------------------------------------------------------------------------------------
# helpers (signing is done with joserfc and the private scalars in the vectors)
# ------------------------------------------------------------------------------------------
def b64d(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def private_key(entry: dict) -> ECKey:
    return ECKey.import_key({**entry["jwk"], "d": entry["d"]})


def sign(header: dict, payload: bytes, entry: dict) -> str:
    # header given in sorted order so joserfc's encoding is the canonical one
    hdr = {k: header[k] for k in sorted(header)}
    return jws.serialize_compact(hdr, payload, private_key(entry), algorithms=["ES256"])


def batch_lines(i: int) -> list[bytes]:
    return FILES[i].split(b"\n")[1:-1]


def manifest(i: int) -> dict:
    return json.loads(B[i]["manifest"])


def make_batch(m: dict, lines: list[bytes], entry: dict, *, fix_root: bool = True, kid: str | None = None) -> bytes:
    m = dict(m)
    if fix_root:
        m["n"] = len(lines)
        m["root"] = sv.merkle_root(lines).hex()
    header = {"alg": "ES256", "kid": kid or entry["kid"], "typ": "vouch-batch+jws"}
    token = sign(header, sv.canonical_json(m), entry)
    return token.encode() + b"\n" + b"".join(line + b"\n" for line in lines)


def token_of(file: bytes) -> str:
    return file.split(b"\n", 1)[0].decode()


def h_of(file: bytes) -> str:
    return hashlib.sha256(token_of(file).rsplit(".", 1)[0].encode()).hexdigest()


def codes(verdicts) -> list[str]:
    return [v.code for v in verdicts]


def run_stream(*files: bytes, last=None, **kw):
    return sv.verify_stream(b"".join(files), DEV["jwk"], last, **kw)


def replace_line(file: bytes, index: int, new_line: bytes) -> bytes:
    lines = file.split(b"\n")
    lines[1 + index] = new_line
    return b"\n".join(lines)


# ------------------------------------------------------------------------------------------
# canonical JSON and strict parsing
# ------------------------------------------------------------------------------------------
def test_every_record_line_is_canonical_and_its_leaf_hash_matches():
    kinds = set()
    for r in V["records"]:
        line = r["line"].encode("utf-8")
        rec = sv.strict_loads(line)
        assert sv.canonical_json(rec) == line
        # the spec's claim: json.dumps with these options gives the same bytes for this value space
        assert json.dumps(rec, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode() == line
        assert sv.leaf_hash(line).hex() == r["leaf_hash"]
        assert hashlib.sha256(b"\x00" + line).hexdigest() == r["leaf_hash"]
        assert rec[0] == r["kind"]
        sv.check_record(rec)  # field types per kind
        kinds.add(rec[0])
    assert kinds == set(sv.KIND_FIELDS), "the vectors hold one record of every kind"


def test_raw_delta_decoding_matches_the_spec_example():
    raw = next(sv.strict_loads(r["line"]) for r in V["records"] if r["kind"] == "raw")
    assert raw[10] == [1250, 12, None, -22, 0, -1240]
    assert sv.decode_raw_values(raw[10]) == [1250, 1262, None, 1240, 1240, 0]
    assert sv.decode_raw_values([2**63 - 1, 1]) == [2**63 - 1, -(2**63)]  # wrapping


@pytest.mark.parametrize("text", ["1.0", "1e3", "1E3", "[1,2.5]", '{"a":-0.0}', "[1e0]", "NaN", "[Infinity]",
                                  '{"a":1,"a":2}', "[9223372036854775808]", '["\\ud800"]'])
def test_strict_parse_refuses(text):
    with pytest.raises(ValueError):
        sv.strict_loads(text)


def test_canonical_encoding_rules():
    assert sv.canonical_json({"b": 1, "a": [True, False, None, -1, 0, 120113]}) == \
        b'{"a":[true,false,null,-1,0,120113],"b":1}'
    assert sv.canonical_json("\"\\\b\f\n\r\t\x01\x1f\x7fé€😀") == \
        '"\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7fé€😀"'.encode("utf-8")
    # keys compare as UTF-16 code units: U+FF61 sorts after U+1F600 (surrogate D83D) in UTF-16
    assert sv.canonical_json({"\uff61": 1, "\U0001f600": 2}) == '{"😀":2,"｡":1}'.encode()
    with pytest.raises(ValueError):
        sv.canonical_json(1.5)
    with pytest.raises(ValueError):
        sv.canonical_json(2**63)
    assert not sv.is_canonical(b'{"b":1,"a":2}')
    assert not sv.is_canonical(b'[1, 2]')
    assert not sv.is_canonical(b'["\\u00e9"]')
    assert not sv.is_canonical(b'["\\u001F"]')
    assert sv.is_canonical(b'["\\u001f"]')


def test_thumbprints():
    for entry in (DEV, ROT, BANK):
        assert sv.jwk_thumbprint(entry["jwk"]) == entry["kid"]


# ------------------------------------------------------------------------------------------
# batches
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("i", range(len(B)))
def test_batch_header_manifest_signing_input_decode_and_match(i):
    b = B[i]
    token = b["token"]
    seg_h, seg_p, seg_s = token.split(".")
    assert b64d(seg_h).decode() == b["protected"]
    assert b64d(seg_p).decode() == b["manifest"]
    assert sv.is_canonical(b["protected"].encode()) and sv.is_canonical(b["manifest"].encode())
    assert b["signing_input"] == seg_h + "." + seg_p
    assert hashlib.sha256(b["signing_input"].encode()).hexdigest() == b["signing_input_sha256"]
    pt = sv.parse_token(token)
    assert pt.h == b["signing_input_sha256"]
    m = sv.parse_manifest(pt.payload_bytes)
    assert m == json.loads(b["manifest"])
    assert m["bseq"] == b["bseq"] == i + 1 and m["dev"] == DEVICE_ID and m["v"] == 1
    # the batch file: token line, then n canonical record lines, each ending in LF
    assert b["file"].split("\n", 1)[0] == token
    assert b["file"].endswith("\n") and "\r" not in b["file"] and "\n\n" not in b["file"]
    assert len(batch_lines(i)) == m["n"]
    rseqs = [json.loads(line)[1] for line in batch_lines(i)]
    assert rseqs == sorted(rseqs)


def test_each_signing_input_hash_is_the_next_prev():
    assert manifest(0)["prev"] == "0" * 64
    for i in range(len(B) - 1):
        assert manifest(i + 1)["prev"] == B[i]["signing_input_sha256"]


def test_rseq_continues_across_batches():
    rseqs = [json.loads(line)[1] for i in range(len(B)) for line in batch_lines(i)]
    assert rseqs == list(range(1, len(rseqs) + 1))


@pytest.mark.parametrize("i", range(len(B)))
def test_merkle_roots_recompute(i):
    lines = batch_lines(i)
    assert sv.merkle_root(lines).hex() == B[i]["merkle_root"] == manifest(i)["root"]


def test_merkle_helpers():
    assert sv.merkle_root([]).hex() == V["empty_tree_root"]
    leaves = [bytes([i]) for i in range(11)]
    for n in range(1, 12):
        root = sv.merkle_root(leaves[:n])
        for idx in range(n):
            path = sv.audit_path(idx, leaves[:n])
            assert sv.verify_audit_path(idx, n, leaves[idx], path, root)
            assert not sv.verify_audit_path(idx, n, leaves[idx] + b"x", path, root)
            if n > 1:
                assert not sv.verify_audit_path((idx + 1) % n, n, leaves[idx], path, root)
        assert not sv.verify_audit_path(n, n, leaves[0], sv.audit_path(0, leaves[:n]), root)


def test_tokens_verify_with_the_right_key():
    # batches 1 and 2 with the enrolled device key, batch 3 with the key rotated in batch 2
    for i, entry in ((0, DEV), (1, DEV), (2, ROT)):
        pt = sv.verify_jws(B[i]["token"], entry["jwk"], "vouch-batch+jws")
        assert pt.header["kid"] == entry["kid"]
        assert sv.jws_signature_valid(B[i]["token"], entry["jwk"])
    assert not sv.jws_signature_valid(B[2]["token"], DEV["jwk"])
    assert not sv.jws_signature_valid(B[0]["token"], ROT["jwk"])
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_jws(B[2]["token"], DEV["jwk"], "vouch-batch+jws")
    assert e.value.code == sv.E_JWS_KID
    # batch 2 holds the rotation: new_jwk is the rotated key and the proof verifies with it
    key_recs = [json.loads(line) for line in batch_lines(1) if line.startswith(b'["key"')]
    assert len(key_recs) == 1
    assert key_recs[0][6] == ROT["jwk"]
    payload = sv.verify_key_proof(key_recs[0][7], key_recs[0][6], DEVICE_ID, DEV["kid"])
    assert payload == {"dev": DEVICE_ID, "new": ROT["kid"], "old": DEV["kid"]}


def test_whole_stream_verifies_end_to_end():
    assert V["stream"] == "".join(b["file"] for b in B)
    verdicts = sv.verify_stream(V["stream"].encode(), DEV["jwk"], expected_last=3, device=DEVICE_ID)
    assert codes(verdicts) == ["ok", "ok", "ok"]
    assert [v.bseq for v in verdicts] == [1, 2, 3]
    assert [v.disposition for v in verdicts] == ["extends"] * 3
    assert [v.h for v in verdicts] == [b["signing_input_sha256"] for b in B]


def test_stream_accepts_an_enrolment_style_device_binding():
    v = sv.verify_stream(V["stream"].encode(), DEV["jwk"], device="another-site")
    assert codes(v)[0] == sv.E_DEVICE_MISMATCH


# ------------------------------------------------------------------------------------------
# receipts and the bank log
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("i", range(len(B)))
def test_receipts(i):
    rc = B[i]["receipt"]
    p = sv.verify_receipt(rc["token"], BANK["jwk"])
    assert p == json.loads(rc["payload"])
    seg_h, seg_p, _ = rc["token"].split(".")
    assert b64d(seg_p).decode() == rc["payload"]
    assert json.loads(b64d(seg_h)) == {"alg": "ES256", "kid": BANK["kid"], "typ": "vouch-receipt+jws"}
    assert sv.receipt_signing_input_hash(rc["token"]) == rc["signing_input_sha256"]
    # names its batch
    sv.check_receipt_names(p, B[i]["token"])
    sv.check_receipt_names(p, FILES[i])
    assert (p["dev"], p["bseq"], p["batch"]) == (DEVICE_ID, i + 1, B[i]["signing_input_sha256"])
    assert not sv.receipt_names(p, B[(i + 1) % len(B)]["token"])
    # rcpt of batch n+1 = hash of receipt n's signing input
    if i == 0:
        assert manifest(0)["rcpt"] is None
    if i + 1 < len(B):
        assert manifest(i + 1)["rcpt"] == rc["signing_input_sha256"]
    # log root over the raw 32-byte signing-input hashes of batches 1..size
    size = p["log"]["size"]
    leaves = [bytes.fromhex(b["signing_input_sha256"]) for b in B[:size]]
    assert sv.merkle_root(leaves).hex() == sv.log_root(leaves).hex() == p["log"]["root"]
    assert p["log"]["idx"] == i and size == i + 1
    # and the receipt's own leaf is in that tree
    path = sv.audit_path(p["log"]["idx"], leaves)
    assert sv.verify_audit_path(p["log"]["idx"], size, leaves[i], path, bytes.fromhex(p["log"]["root"]))


def test_receipt_refused_with_the_wrong_key_or_altered():
    tok = B[0]["receipt"]["token"]
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_receipt(tok, DEV["jwk"])
    assert e.value.code == sv.E_JWS_KID
    h, p, s = tok.split(".")
    forged_p = b64e(B[1]["receipt"]["payload"].encode())
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_receipt(".".join([h, forged_p, s]), BANK["jwk"])
    assert e.value.code == sv.E_JWS_SIGNATURE


# ------------------------------------------------------------------------------------------
# inclusion proof
# ------------------------------------------------------------------------------------------
PROOF = V["inclusion_proof"]


def test_inclusion_proof_verifies():
    rec = sv.verify_inclusion_proof(PROOF, DEV["jwk"], device=DEVICE_ID, bank_jwk=BANK["jwk"])
    assert sv.canonical_json(rec).decode() == PROOF["record"]
    assert PROOF["batch"] == B[0]["token"]
    assert PROOF["record"].encode() == batch_lines(0)[PROOF["index"]]
    assert [p.hex() for p in sv.audit_path(PROOF["index"], batch_lines(0))] == PROOF["path"]
    # also as a canonical document
    sv.verify_inclusion_proof(sv.canonical_json(PROOF), DEV["jwk"])


def _proof_code(doc, key=None):
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_inclusion_proof(doc, key or DEV["jwk"])
    return e.value.code


def test_inclusion_proof_altered_record_fails():
    rec = json.loads(PROOF["record"])
    rec[13] = 121  # still canonical, different content
    assert _proof_code({**PROOF, "record": sv.canonical_json(rec).decode()}) == sv.E_PROOF_INVALID
    # another genuine record of the batch at the same index does not pass either
    assert _proof_code({**PROOF, "record": batch_lines(0)[2].decode()}) == sv.E_PROOF_INVALID
    # a non-canonical rendering of the very same record, a float, a non-JSON record: all E_PROOF_INVALID
    assert _proof_code({**PROOF, "record": PROOF["record"].replace(",", ", ", 1)}) == sv.E_PROOF_INVALID
    assert _proof_code({**PROOF, "record": PROOF["record"].replace(",120,", ",120.0,", 1)}) == sv.E_PROOF_INVALID
    assert _proof_code({**PROOF, "record": PROOF["record"][:-1]}) == sv.E_PROOF_INVALID


@pytest.mark.parametrize("index", [0, 1, 2, 4, 5, 6, 7, 8, 11, 19, 27, -1, -5, 100])
def test_inclusion_proof_altered_index_fails(index):
    assert _proof_code({**PROOF, "index": index}) == sv.E_PROOF_INVALID


@pytest.mark.parametrize("k", range(3))
def test_inclusion_proof_altered_path_element_fails(k):
    path = list(PROOF["path"])
    flipped = bytearray(bytes.fromhex(path[k]))
    flipped[0] ^= 1
    path[k] = flipped.hex()
    assert _proof_code({**PROOF, "path": path}) == sv.E_PROOF_INVALID


def test_inclusion_proof_other_alterations_fail():
    assert _proof_code({**PROOF, "path": PROOF["path"][:-1]}) == sv.E_PROOF_INVALID
    assert _proof_code({**PROOF, "path": PROOF["path"] + [PROOF["path"][0]]}) == sv.E_PROOF_INVALID
    assert _proof_code({**PROOF, "path": PROOF["path"][::-1]}) == sv.E_PROOF_INVALID
    assert _proof_code({**PROOF, "path": PROOF["path"][:-1] + ["zz"]}) == sv.E_PROOF_INVALID
    # the key is taken from the key history, never from the proof
    assert _proof_code({**PROOF, "jwk": ROT["jwk"]}, key=ROT["jwk"]) == sv.E_JWS_KID
    assert _proof_code({**PROOF, "v": 2}) == sv.E_PAYLOAD_VERSION
    assert _proof_code({**PROOF, "type": "other"}) == sv.E_PROOF_INVALID
    assert _proof_code({k: v for k, v in PROOF.items() if k != "receipt"}) == sv.E_PROOF_INVALID
    assert _proof_code({**PROOF, "batch": PROOF["batch"].rsplit(".", 1)[0]}) == sv.E_JWS_MALFORMED
    h, p, s = PROOF["batch"].split(".")
    other_manifest = b64e(B[1]["manifest"].encode())
    assert _proof_code({**PROOF, "batch": ".".join([h, other_manifest, s])}) == sv.E_JWS_SIGNATURE


# ------------------------------------------------------------------------------------------
# tampered streams
# ------------------------------------------------------------------------------------------
def _plain_chain() -> list[bytes]:
    """Batches 1..3 without the rotation (batch 2 loses its key record, batch 3 is signed by the
    enrolled key and renumbered to rseq 10), so that gaps and reorders reach the chain rule."""
    f2 = make_batch(manifest(1), batch_lines(1)[:-1], DEV)
    rec = json.loads(batch_lines(2)[0])
    rec[1] = 10
    m3 = manifest(2)
    m3["prev"] = h_of(f2)
    f3 = make_batch(m3, [sv.canonical_json(rec)], DEV)
    assert codes(run_stream(FILES[0], f2, f3)) == ["ok", "ok", "ok"]
    return [FILES[0], f2, f3]


def test_delete_batch_2_is_a_gap():
    p = _plain_chain()
    v = run_stream(p[0], p[2])
    assert codes(v) == ["ok", sv.E_CHAIN_GAP]
    assert not v[1].accepted


def test_swap_batches_2_and_3_is_a_reorder():
    p = _plain_chain()
    v = run_stream(p[0], p[2], p[1])
    assert codes(v) == ["ok", sv.E_CHAIN_REORDER, "ok"]
    # the reorder is judged by the first missing bseq appearing later; a later bseq 5 alone does not count
    assert codes(run_stream(p[0], p[2])) == ["ok", sv.E_CHAIN_GAP]


def test_vectors_deleting_or_moving_the_rotating_batch_is_e_jws_kid():
    # Step 2: "A batch signed by a key whose rotation the verifier has not seen (the rotating batch was
    # deleted) fails here with E_JWS_KID" - before the chain rule could call it a gap or a reorder.
    v = run_stream(FILES[0], FILES[2])
    assert codes(v) == ["ok", sv.E_JWS_KID] and not v[1].accepted
    v = run_stream(FILES[0], FILES[2], FILES[1])
    assert codes(v) == ["ok", sv.E_JWS_KID, "ok"]


def test_truncated_tail():
    v = run_stream(FILES[0], FILES[1], last=3)
    assert codes(v) == ["ok", "ok", sv.E_CHAIN_TRUNCATED]
    assert v[-1].disposition == "stream"
    assert codes(run_stream(FILES[0], FILES[1], last=2)) == ["ok", "ok"]


def _forked_batch_2() -> bytes:
    m = manifest(1)
    m["t"] = {**m["t"], "wall": m["t"]["wall"] + 1}  # a different batch 2, same records, same prev
    f = make_batch(m, batch_lines(1), DEV)
    assert h_of(f) != B[1]["signing_input_sha256"]
    return f


def test_fork_batch_2_resigned_with_the_device_key():
    fork = _forked_batch_2()
    # both versions in one export: the second is an equivocation
    v = run_stream(FILES[0], FILES[1], FILES[2], fork)
    assert codes(v) == ["ok", "ok", "ok", sv.E_CHAIN_FORK]
    assert not v[3].accepted
    # batch 2 replaced in the export, checked against a bank that already accepted 1..3
    chain = sv.Chain(DEV["jwk"], device=DEVICE_ID)
    assert codes(chain.verify_stream(V["stream"].encode())) == ["ok", "ok", "ok"]
    v = chain.verify_stream(FILES[0] + fork + FILES[2])
    assert codes(v) == ["ok", sv.E_CHAIN_FORK, "ok"]
    assert [v_.disposition for v_ in v] == ["duplicate", "refused", "duplicate"]
    assert chain.forks and chain.forks[-1][0] == 2  # kept as evidence
    # batch 2 replaced, fresh verifier: the forged 2 extends, but the genuine 3 no longer chains
    assert codes(run_stream(FILES[0], fork, FILES[2])) == ["ok", "ok", sv.E_CHAIN_PREV]


def test_edit_one_record_breaks_the_merkle_root():
    rec = json.loads(batch_lines(0)[0])
    rec[10] = 60  # count 59 -> 60, still canonical
    f = replace_line(FILES[0], 0, sv.canonical_json(rec))
    v = run_stream(f, FILES[1], FILES[2])
    assert codes(v)[0] == sv.E_MERKLE_ROOT


def test_edit_manifest_without_resigning_breaks_the_signature():
    h, p, s = B[0]["token"].split(".")
    m = manifest(0)
    m["t"]["wall"] += 1000
    forged = ".".join([h, b64e(sv.canonical_json(m)), s]).encode()
    f = forged + FILES[0][len(B[0]["token"]):]
    assert codes(run_stream(f))[0] == sv.E_JWS_SIGNATURE


def _high_s(file: bytes) -> bytes:
    token = token_of(file)
    h, p, s = token.split(".")
    sig = b64d(s)
    r, s_int = sig[:32], int.from_bytes(sig[32:], "big")
    s2 = (P256_N - s_int).to_bytes(32, "big")
    t2 = ".".join([h, p, b64e(r + s2)])
    assert t2 != token
    return t2.encode() + file[len(token):]


def test_reencoded_signature_r_n_minus_s():
    f1b = _high_s(FILES[0])
    t = token_of(f1b)
    # still verifies, with joserfc directly and through the verifier
    jws.deserialize_compact(t, ECKey.import_key(DEV["jwk"]), algorithms=["ES256"])
    assert sv.jws_signature_valid(t, DEV["jwk"])
    assert h_of(f1b) == B[0]["signing_input_sha256"]
    # treated as a duplicate of the original; the chain continues with batch 2
    v = run_stream(FILES[0], f1b, FILES[1], FILES[2])
    assert codes(v) == ["ok", "ok", "ok", "ok"]
    assert [x.disposition for x in v] == ["extends", "duplicate", "extends", "extends"]
    # the re-encoded token alone also carries the chain
    assert codes(run_stream(f1b, FILES[1], FILES[2])) == ["ok", "ok", "ok"]


def test_non_canonical_record_line():
    line = batch_lines(0)[2]  # ["hb",3,...]
    for bad in (line.replace(b",", b", ", 1), line + b" ", line.replace(b'"hb"', b'"\\u0068b"')):
        f = replace_line(FILES[0], 2, bad)
        assert codes(run_stream(f))[0] == sv.E_RECORD_NOT_CANONICAL
    # a float or a non-JSON line is E_RECORD_MALFORMED, found where step 4 parses (before the root)
    for bad in (line.replace(b"300000", b"3e5"), line.replace(b"300000", b"300000.0"), line[:-1],
                line.replace(b",300000,", b",0300000,")):
        f = replace_line(FILES[0], 2, bad)
        assert codes(run_stream(f))[0] == sv.E_RECORD_MALFORMED
    # the att record's claims with keys out of order
    att = batch_lines(0)[6]
    rec = json.loads(att)
    unsorted = ("[" + ",".join(json.dumps(x, separators=(",", ":"), ensure_ascii=False) for x in rec[:6])
                + "," + json.dumps(dict(reversed(list(rec[6].items()))), separators=(",", ":")) + "]").encode()
    assert unsorted != att and json.loads(unsorted) == rec
    assert codes(run_stream(replace_line(FILES[0], 6, unsorted)))[0] == sv.E_RECORD_NOT_CANONICAL


def test_wrong_record_count():
    lines = FILES[0].split(b"\n")
    dropped = b"\n".join(lines[:-2] + [b""])  # drop the last record line
    assert codes(run_stream(dropped))[0] == sv.E_BATCH_MALFORMED
    # manifest n says 8 for 7 lines, properly signed
    m = manifest(0)
    m["n"] = 8
    f = make_batch(m, batch_lines(0), DEV, fix_root=False)
    assert codes(run_stream(f))[0] == sv.E_BATCH_MALFORMED


def test_batch_3_signed_by_the_old_key_after_rotation_is_retired():
    old3 = make_batch(manifest(2), batch_lines(2), DEV)
    assert manifest(2)["prev"] == B[1]["signing_input_sha256"]
    v = run_stream(FILES[0], FILES[1], old3)
    assert codes(v) == ["ok", "ok", sv.E_KEY_RETIRED]
    # before the rotation is accepted, the same batch is a gap, not a retirement
    assert codes(run_stream(FILES[0], old3)) == ["ok", sv.E_CHAIN_GAP]


def _batch_2_with_proof(proof_signer: dict, payload: dict | None = None) -> bytes:
    lines = batch_lines(1)
    key_rec = json.loads(lines[-1])
    assert key_rec[0] == "key"
    payload = payload or {"dev": DEVICE_ID, "new": ROT["kid"], "old": DEV["kid"]}
    key_rec[7] = sign({"alg": "ES256", "kid": ROT["kid"], "typ": "vouch-key-proof+jws"},
                      sv.canonical_json(payload), proof_signer)
    return make_batch(manifest(1), lines[:-1] + [sv.canonical_json(key_rec)], DEV)


def test_rotation_proof_signed_by_another_key():
    bad2 = _batch_2_with_proof(BANK)
    v = run_stream(FILES[0], bad2, FILES[2])
    assert codes(v)[:2] == ["ok", sv.E_KEY_ROTATION]
    assert v[2].code != "ok"
    # control: the same construction signed by the rotated key is accepted and batch 3 verifies
    good2 = _batch_2_with_proof(ROT)
    m3 = manifest(2)
    m3["prev"] = h_of(good2)
    assert codes(run_stream(FILES[0], good2, make_batch(m3, batch_lines(2), ROT))) == ["ok", "ok", "ok"]


def test_rotation_proof_naming_another_device_or_keys():
    for payload in ({"dev": "other", "new": ROT["kid"], "old": DEV["kid"]},
                    {"dev": DEVICE_ID, "new": BANK["kid"], "old": DEV["kid"]},
                    {"dev": DEVICE_ID, "new": ROT["kid"], "old": BANK["kid"]}):
        assert codes(run_stream(FILES[0], _batch_2_with_proof(ROT, payload)))[1] == sv.E_KEY_ROTATION


# ------------------------------------------------------------------------------------------
# further spec rules
# ------------------------------------------------------------------------------------------
def test_record_malformed_cases():
    hb = json.loads(batch_lines(0)[2])
    for bad in (["xyz"] + hb[1:], hb + [1], hb[:-1], hb[:6] + ["300000"] + hb[7:], hb[:5] + ["maybe"] + hb[6:]):
        lines = list(batch_lines(0))
        lines[2] = sv.canonical_json(bad)
        assert codes(run_stream(make_batch(manifest(0), lines, DEV)))[0] == sv.E_RECORD_MALFORMED


def test_rseq_gap_and_order():
    lines = list(batch_lines(0))
    del lines[3]  # rseq 4 deleted before sealing
    v = run_stream(make_batch(manifest(0), lines, DEV))
    assert codes(v) == [sv.E_RSEQ_GAP] and v[0].accepted
    lines = list(batch_lines(0))
    lines[2], lines[3] = lines[3], lines[2]
    assert codes(run_stream(make_batch(manifest(0), lines, DEV))) == [sv.E_RSEQ_ORDER]


def test_stale_prev_and_version_and_malformed_file():
    m = manifest(0)
    m["prev"] = "1" * 64
    assert codes(run_stream(make_batch(m, batch_lines(0), DEV))) == [sv.E_CHAIN_PREV]
    m = manifest(0)
    m["v"] = 2
    assert codes(run_stream(make_batch(m, batch_lines(0), DEV))) == [sv.E_PAYLOAD_VERSION]
    m = manifest(0)
    m["extra"] = 1
    assert codes(run_stream(make_batch(m, batch_lines(0), DEV))) == [sv.E_PAYLOAD_MALFORMED]
    assert codes(run_stream(FILES[0].replace(b"\n", b"\r\n", 1)))[0] == sv.E_BATCH_MALFORMED
    assert codes(run_stream(FILES[0] + b"\n"))[0] == sv.E_BATCH_MALFORMED
    assert codes(run_stream(FILES[0][:-1]))[0] == sv.E_BATCH_MALFORMED


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------
def _cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "spec_verifier.py"), *map(str, args)],
                          capture_output=True, text=True)


def test_cli(tmp_path):
    enrol = tmp_path / "enrol.json"
    enrol.write_text(json.dumps({"alg": "ES256", "created_ms": 1789999000000, "device": DEVICE_ID,
                                 "jwk": DEV["jwk"], "kid": DEV["kid"]}))
    bare = tmp_path / "dev.jwk"
    bare.write_text(json.dumps(DEV["jwk"]))
    bank = tmp_path / "bank.jwk"
    bank.write_text(json.dumps({"jwk": BANK["jwk"], "kid": BANK["kid"]}))  # as `vouch-bank key` prints it
    paths = []
    for i, f in enumerate(FILES):
        p = tmp_path / f"b{i + 1}.vouch"
        p.write_bytes(f)
        paths.append(p)
    r = _cli("stream", "--jwk", enrol, "--last", 3, *paths)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == 3
    r = _cli("stream", "--jwk", bare, "--last", 3, paths[0], paths[1])
    assert r.returncode == 1 and "E_CHAIN_TRUNCATED" in r.stdout
    r = _cli("stream", "--jwk", bare, paths[0], paths[2], paths[1])
    assert r.returncode == 1 and "E_JWS_KID" in r.stdout
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"alg": "ES256", "created_ms": 1, "device": "another-site",
                                 "jwk": DEV["jwk"], "kid": DEV["kid"]}))
    r = _cli("stream", "--jwk", other, *paths)
    assert r.returncode == 1 and "E_DEVICE_MISMATCH" in r.stdout
    tok = tmp_path / "r1.jws"
    tok.write_text(B[0]["receipt"]["token"] + "\n")
    assert _cli("receipt", "--bank-jwk", bank, "--batch", paths[0], tok).returncode == 0
    assert _cli("receipt", "--bank-jwk", bank, "--batch", paths[1], tok).returncode == 1
    r = _cli("receipt", "--bank-jwk", bank, "--batch", paths[1], tok)
    assert "E_RECEIPT_MISMATCH" in r.stdout
    assert _cli("receipt", "--bank-jwk", bare, tok).returncode == 1
    proof = tmp_path / "proof.json"
    proof.write_bytes(sv.canonical_json(PROOF))
    assert _cli("proof", "--jwk", enrol, "--bank-jwk", bank, proof).returncode == 0
    proof.write_text(json.dumps(PROOF, indent=2))  # the document's own bytes are not hashed or signed
    assert _cli("proof", "--jwk", bare, proof).returncode == 0
    proof.write_bytes(sv.canonical_json({**PROOF, "index": 2}))
    r = _cli("proof", "--jwk", enrol, proof)
    assert r.returncode == 1 and "E_PROOF_INVALID" in r.stdout
    # a proof from batch 3 needs the key history (the rotation in batch 2)
    proof.write_bytes(sv.canonical_json(_proof_for(2, 0)))
    r = _cli("proof", "--jwk", enrol, proof)
    assert r.returncode == 1 and "E_JWS_KID" in r.stdout
    r = _cli("proof", "--jwk", enrol, "--history", paths[0], "--history", paths[1], "--bank-jwk", bank, proof)
    assert r.returncode == 0, r.stdout + r.stderr


def test_key_in_force_is_per_bseq_for_resends_and_forks_after_rotation():
    # a resend of batch 1 (signed by the since-retired key) after the rotation is still a duplicate
    v = run_stream(FILES[0], FILES[1], FILES[2], _high_s(FILES[0]))
    assert codes(v) == ["ok"] * 4 and v[3].disposition == "duplicate"
    # a different batch 1 signed by the old key after the rotation is a fork, not a retired-key batch
    m = manifest(0)
    m["t"] = {**m["t"], "mono": m["t"]["mono"] + 1}
    v = run_stream(FILES[0], FILES[1], FILES[2], make_batch(m, batch_lines(0), DEV))
    assert codes(v) == ["ok", "ok", "ok", sv.E_CHAIN_FORK]
    # batch 2 signed by the new key (before its own rotation takes effect) is refused
    assert codes(run_stream(FILES[0], make_batch(manifest(1), batch_lines(1), ROT)))[1] == sv.E_JWS_KID


def _spec_pseudocode_as_written(index, n, leaf, path, root):
    """The inclusion-proof algorithm exactly as printed in the spec (with its index check)."""
    if index < 0 or index >= n:
        return False
    fn, sn, r = index, n - 1, sv.leaf_hash(leaf)
    for p in path:
        if sn == 0:
            return False
        if fn % 2 == 1 or fn == sn:
            r = sv.node_hash(p, r)
            if fn % 2 == 0:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn % 2 == 1 or fn == 0:
                        break
        else:
            r = sv.node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def test_spec_pseudocode_and_verifier_accept_only_the_true_index():
    """Without the printed 'index < 0 or index >= n: fail' step the loop would accept the vector proof
    for index 3 + 8k (11, 19, ...) in a 7-leaf tree; with it, both accept only index 3."""
    m = json.loads(B[0]["manifest"])
    path = [bytes.fromhex(x) for x in PROOF["path"]]
    root = bytes.fromhex(m["root"])
    leaf = PROOF["record"].encode()
    printed = [i for i in range(-8, 64) if _spec_pseudocode_as_written(i, m["n"], leaf, path, root)]
    ours = [i for i in range(-8, 64) if sv.verify_audit_path(i, m["n"], leaf, path, root)]
    assert printed == ours == [3]
    for n in range(1, 12):
        leaves = [bytes([i]) for i in range(n)]
        root = sv.merkle_root(leaves)
        for idx in range(n):
            pth = sv.audit_path(idx, leaves)
            for j in range(n + 9):
                assert _spec_pseudocode_as_written(j, n, leaves[idx], pth, root) == \
                    sv.verify_audit_path(j, n, leaves[idx], pth, root) == (j == idx)


# ------------------------------------------------------------------------------------------
# revised spec: enrolment, step 2 codes and order, per-bseq keys, step order, closed value lists
# ------------------------------------------------------------------------------------------
ENROLMENT = {"alg": "ES256", "created_ms": 1789999000000, "device": DEVICE_ID, "jwk": DEV["jwk"], "kid": DEV["kid"]}


def _proof_for(i: int, index: int) -> dict:
    """An inclusion proof document for record `index` of batch i+1, built as the spec describes it."""
    lines = batch_lines(i)
    return {"v": 1, "type": "vouch-inclusion-proof", "batch": B[i]["token"], "index": index,
            "record": lines[index].decode(), "path": [p.hex() for p in sv.audit_path(index, lines)],
            "jwk": DEV["jwk"], "receipt": B[i]["receipt"]["token"]}


def test_the_vector_proof_is_the_one_the_spec_describes():
    assert _proof_for(0, 3) == PROOF
    # the key record is deterministic now: the records list holds the very line batch 2 carries
    key_line = next(r["line"] for r in V["records"] if r["kind"] == "key")
    assert batch_lines(1)[-1].decode() == key_line


def test_enrolment_document_binds_the_device():
    assert codes(sv.verify_stream(V["stream"].encode(), ENROLMENT, 3)) == ["ok", "ok", "ok"]
    other = {**ENROLMENT, "device": "another-site"}
    v = sv.verify_stream(V["stream"].encode(), other)
    assert codes(v)[0] == sv.E_DEVICE_MISMATCH and not v[0].accepted
    with pytest.raises(ValueError):
        sv.Chain({**ENROLMENT, "kid": ROT["kid"]})  # kid is not the jwk's thumbprint
    with pytest.raises(ValueError):
        sv.Chain(ENROLMENT, device="another-site")


def _token_with_header(header_json: bytes, sig_from: str = None) -> str:
    _, p, s = (sig_from or B[0]["token"]).split(".")
    return ".".join([b64e(header_json), p, s])


def _refile(token: str, i: int = 0) -> bytes:
    return token.encode() + FILES[i][len(B[i]["token"]):]


def _step2_code(token: str) -> str:
    return codes(run_stream(_refile(token)))[0]


def test_step2_structure_codes():
    t = B[0]["token"]
    h, p, s = t.split(".")
    assert _step2_code(h + "." + p) == sv.E_JWS_MALFORMED                      # two parts
    assert _step2_code(t + ".x") == sv.E_JWS_MALFORMED                         # four parts
    assert _step2_code(h + ".." + s) == sv.E_JWS_MALFORMED                     # detached payload
    assert _step2_code("!" + t[1:]) == sv.E_JWS_MALFORMED                      # bad base64url
    assert _step2_code(h + "=." + p + "." + s) == sv.E_JWS_MALFORMED           # padding
    assert _step2_code(_token_with_header(b"[1]")) == sv.E_JWS_MALFORMED       # header not an object
    assert _step2_code(_token_with_header(b"{nope")) == sv.E_JWS_MALFORMED     # header not JSON
    f = FILES[0].replace(b"e", "é".encode(), 1)                                # non-ASCII token line
    assert codes(run_stream(f))[0] == sv.E_JWS_MALFORMED


def test_step2_alg_typ_crit_kid_codes_and_order():
    kid = DEV["kid"]
    hdr = lambda **kw: sv.canonical_json({"alg": "ES256", "kid": kid, "typ": "vouch-batch+jws", **kw})
    assert _step2_code(_token_with_header(hdr(alg="HS256"))) == sv.E_JWS_ALG
    assert _step2_code(_token_with_header(hdr(alg="none"))) == sv.E_JWS_ALG
    assert _step2_code(_token_with_header(b'{"kid":"%s","typ":"vouch-batch+jws"}' % kid.encode())) == sv.E_JWS_ALG
    assert _step2_code(_token_with_header(hdr(typ="JWT"))) == sv.E_JWS_MALFORMED
    assert _step2_code(_token_with_header(hdr(typ="vouch-receipt+jws"))) == sv.E_JWS_MALFORMED
    assert _step2_code(_token_with_header(hdr(crit=["b64"]))) == sv.E_JWS_MALFORMED
    # order: alg before typ, typ before kid
    assert _step2_code(_token_with_header(hdr(alg="RS256", typ="JWT"))) == sv.E_JWS_ALG
    assert _step2_code(_token_with_header(hdr(typ="JWT", kid="nobody"))) == sv.E_JWS_MALFORMED
    # kid: missing, of no key of this device (the bank's), then the signature
    assert _step2_code(_token_with_header(b'{"alg":"ES256","typ":"vouch-batch+jws"}')) == sv.E_JWS_KID
    assert _step2_code(sign({"alg": "ES256", "kid": BANK["kid"], "typ": "vouch-batch+jws"},
                            B[0]["manifest"].encode(), BANK)) == sv.E_JWS_KID
    # a header that is not in canonical form but is signed: "a verifier need not check" - accepted
    odd = b'{"typ":"vouch-batch+jws","alg":"ES256","kid":"%s"}' % kid.encode()
    seg = b64e(odd) + "." + B[0]["token"].split(".")[1]
    assert codes(run_stream(_refile(seg + "." + _raw_es256(seg.encode(), DEV)))) == ["ok"]
    # other header members are ignored (only crit is refused)
    seg = b64e(hdr(x5u="https://example.invalid")) + "." + B[0]["token"].split(".")[1]
    assert codes(run_stream(_refile(seg + "." + _raw_es256(seg.encode(), DEV)))) == ["ok"]
    # a signature of the wrong length is a signature failure
    h, p, s = B[0]["token"].split(".")
    assert _step2_code(".".join([h, p, b64e(b64d(s) + b"\0")])) == sv.E_JWS_SIGNATURE


def _raw_es256(signing_input: bytes, entry: dict) -> str:
    """ES256 over an arbitrary signing input (joserfc would re-encode the header)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
    d = int.from_bytes(b64d(entry["d"]), "big")
    priv = ec.derive_private_key(d, ec.SECP256R1())
    r, s_ = decode_dss_signature(priv.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    return b64e(r.to_bytes(32, "big") + s_.to_bytes(32, "big"))


def test_signed_manifest_not_in_canonical_form_is_accepted():
    m = manifest(0)
    body = json.dumps(m, separators=(", ", ": ")).encode()  # signed over these exact bytes
    seg = b64e(B[0]["protected"].encode()) + "." + b64e(body)
    t = seg + "." + _raw_es256(seg.encode(), DEV)
    v = run_stream(_refile(t))
    assert codes(v) == ["ok"] and v[0].h != B[0]["signing_input_sha256"]


def test_key_in_force_per_bseq_retired_and_not_yet_in_force():
    full = FILES[0] + FILES[1] + FILES[2]
    # the rotated key signing bseq 2 (the rotating batch itself): outside its range -> E_KEY_RETIRED
    v = run_stream(full, make_batch(manifest(1), batch_lines(1), ROT))
    assert codes(v) == ["ok", "ok", "ok", sv.E_KEY_RETIRED]
    # ... and the genuine resends of 1, 2 (old key) and 3 (new key) are duplicates
    v = run_stream(full, FILES[0], FILES[1], FILES[2])
    assert codes(v) == ["ok"] * 6 and [x.disposition for x in v[3:]] == ["duplicate"] * 3
    # the old key signing bseq 4 after the rotation: E_KEY_RETIRED
    m4 = {**manifest(2), "bseq": 4, "prev": B[2]["signing_input_sha256"]}
    assert codes(run_stream(full, make_batch(m4, [], DEV)))[-1] == sv.E_KEY_RETIRED
    # and the new key signing bseq 4 extends
    assert codes(run_stream(full, make_batch(m4, [], ROT))) == ["ok"] * 4


def test_key_retired_is_decided_before_the_signature():
    old3 = make_batch(manifest(2), batch_lines(2), DEV)
    token = token_of(old3)
    h, p, s = token.split(".")
    broken = ".".join([h, p, b64e(bytes(64))])
    f = broken.encode() + old3[len(token):]
    assert codes(run_stream(FILES[0], FILES[1], f)) == ["ok", "ok", sv.E_KEY_RETIRED]
    # before the rotation is known, the same broken token fails its signature
    assert codes(run_stream(FILES[0], f)) == ["ok", sv.E_JWS_SIGNATURE]


def test_step_order_merkle_before_fields_fields_before_chain():
    unknown = b'["zzz",1,3,0,0,"sync"]'
    # not re-signed: step 5 (root) fails before step 6 (kind)
    assert codes(run_stream(replace_line(FILES[0], 0, unknown)))[0] == sv.E_MERKLE_ROOT
    # re-signed: step 6
    lines = list(batch_lines(0))
    lines[0] = unknown
    assert codes(run_stream(make_batch(manifest(0), lines, DEV)))[0] == sv.E_RECORD_MALFORMED
    # step 6 before the chain rule: a fork of batch 1 with a malformed record is E_RECORD_MALFORMED
    assert codes(run_stream(FILES[0], make_batch(manifest(0), lines, DEV))) == ["ok", sv.E_RECORD_MALFORMED]
    # step 4 count before canonical form
    bad = replace_line(FILES[0], 0, batch_lines(0)[0].replace(b",", b", ", 1))
    assert codes(run_stream(b"\n".join(bad.split(b"\n")[:-2] + [b""])))[0] == sv.E_BATCH_MALFORMED
    # step 3 before step 4
    m = {**manifest(0), "n": 8}
    m.pop("rcpt")
    assert codes(run_stream(make_batch(m, batch_lines(0), DEV, fix_root=False)))[0] == sv.E_PAYLOAD_MALFORMED


def test_rseq_rules_apply_only_to_extending_batches():
    # a fork of batch 2 whose rseq values are out of order is a fork, not E_RSEQ_ORDER
    lines = list(batch_lines(1))
    lines[0], lines[1] = lines[1], lines[0]
    fork = make_batch(manifest(1), lines, DEV)
    assert codes(run_stream(FILES[0], FILES[1], fork)) == ["ok", "ok", sv.E_CHAIN_FORK]
    # the same batch extending the chain is E_RSEQ_ORDER
    assert codes(run_stream(FILES[0], fork)) == ["ok", sv.E_RSEQ_ORDER]
    # rseq must follow the last accepted record across batches
    p = _plain_chain()
    rec = json.loads(batch_lines(2)[0])
    for rseq, code in ((9, sv.E_RSEQ_ORDER), (12, sv.E_RSEQ_GAP), (10, "ok")):
        rec[1] = rseq
        m3 = {**manifest(2), "prev": h_of(p[1])}
        v = run_stream(p[0], p[1], make_batch(m3, [sv.canonical_json(rec)], DEV))
        assert codes(v)[2] == code
        assert v[2].accepted == (code != sv.E_RSEQ_ORDER)
    # a batch with no records extends without an rseq check
    m3 = {**manifest(2), "prev": h_of(p[1])}
    assert codes(run_stream(p[0], p[1], make_batch(m3, [], DEV))) == ["ok", "ok", "ok"]


def test_two_key_records_in_one_batch():
    lines = batch_lines(1)
    m = manifest(1)
    second = json.loads(lines[-1])
    second[1] = 11
    f = make_batch(m, list(lines) + [sv.canonical_json(second)], DEV)
    assert codes(run_stream(FILES[0], f)) == ["ok", sv.E_KEY_ROTATION]


def test_rotation_proof_header():
    good = {"dev": DEVICE_ID, "new": ROT["kid"], "old": DEV["kid"]}
    lines = batch_lines(1)
    for header in ({"alg": "ES256", "kid": DEV["kid"], "typ": "vouch-key-proof+jws"},     # kid of the old key
                   {"alg": "ES256", "typ": "vouch-key-proof+jws"},                        # no kid
                   {"alg": "ES256", "kid": ROT["kid"], "typ": "vouch-batch+jws"}):        # wrong typ
        key_rec = json.loads(lines[-1])
        key_rec[7] = sign(header, sv.canonical_json(good), ROT)
        f = make_batch(manifest(1), list(lines[:-1]) + [sv.canonical_json(key_rec)], DEV)
        assert codes(run_stream(FILES[0], f))[1] == sv.E_KEY_ROTATION, header
    # a new_jwk that is not a P-256 key is a bad rotation
    key_rec = json.loads(lines[-1])
    key_rec[6] = {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}
    f = make_batch(manifest(1), list(lines[:-1]) + [sv.canonical_json(key_rec)], DEV)
    assert codes(run_stream(FILES[0], f))[1] == sv.E_KEY_ROTATION


def test_new_jwk_members_beyond_the_four_are_not_used():
    lines = batch_lines(1)
    key_rec = json.loads(lines[-1])
    key_rec[6] = {**key_rec[6], "kid": "ignored", "use": "sig"}
    f2 = make_batch(manifest(1), list(lines[:-1]) + [sv.canonical_json(key_rec)], DEV)
    m3 = {**manifest(2), "prev": h_of(f2)}
    f3 = make_batch(m3, batch_lines(2), ROT)
    assert codes(run_stream(FILES[0], f2, f3)) == ["ok", "ok", "ok"]


def _one_record_batch_code(rec: list) -> str:
    return codes(run_stream(make_batch(manifest(0), [sv.canonical_json(rec)], DEV)))[0]


def test_closed_and_open_value_lists():
    recs = {r["kind"]: json.loads(r["line"]) for r in V["records"]}
    for r in recs.values():
        r[1] = 1
    # open: severity, unit, claim values, unknown claims
    assert _one_record_batch_code([*recs["evt"][:11], "critical", *recs["evt"][12:]]) == "ok"
    assert _one_record_batch_code([*recs["sum"][:8], "", *recs["sum"][9:]]) == "ok"
    att = recs["att"]
    assert _one_record_batch_code([*att[:6], {**att[6], "vouch.keyprot": "tpm2", "x.new": [1]}]) == "ok"
    # closed: phase, reason, tq, tq_before
    assert _one_record_batch_code([*recs["evt"][:7], "middle", *recs["evt"][8:]]) == sv.E_RECORD_MALFORMED
    assert _one_record_batch_code([*recs["gap"][:6], "other", *recs["gap"][7:]]) == sv.E_RECORD_MALFORMED
    assert _one_record_batch_code([*recs["hb"][:5], "good", *recs["hb"][6:]]) == sv.E_RECORD_MALFORMED
    assert _one_record_batch_code([*recs["clk"][:8], "synced"]) == sv.E_RECORD_MALFORMED
    # window samples are exactly [int, int, int|null]; raw period_ms > 0; rseq >= 1
    evt = recs["evt"]
    assert _one_record_batch_code([*evt[:21], [[1, 2, 3, 4]], evt[22]]) == sv.E_RECORD_MALFORMED
    assert _one_record_batch_code([*evt[:21], [[1, 2, None]], evt[22]]) == "ok"
    assert _one_record_batch_code([*recs["raw"][:9], 0, recs["raw"][10]]) == sv.E_RECORD_MALFORMED
    assert _one_record_batch_code(["hb", 0, *recs["hb"][2:]]) == sv.E_RECORD_MALFORMED
    # fewer or more fields than the kind defines
    assert _one_record_batch_code(recs["key"][:-1]) == sv.E_RECORD_MALFORMED
    assert _one_record_batch_code(recs["key"] + [None]) == sv.E_RECORD_MALFORMED


def test_record_line_parse_codes():
    base = list(batch_lines(0))

    def code(line: bytes) -> str:
        lines = list(base)
        lines[5] = line
        return codes(run_stream(make_batch(manifest(0), lines, DEV)))[0]

    act = base[5]
    assert code(act.replace(b'"for_ms":7200000', b'"for_ms":7.2e6')) == sv.E_RECORD_MALFORMED
    assert code(act.replace(b'"for_ms":7200000', b'"for_ms":7200000.0')) == sv.E_RECORD_MALFORMED
    assert code(act.replace(b'"for_ms":7200000', b'"for_ms":9223372036854775808')) == sv.E_RECORD_MALFORMED
    assert code(act.replace(b'"for_ms":7200000', b'"for_ms":NaN')) == sv.E_RECORD_MALFORMED
    assert code(act[:-1]) == sv.E_RECORD_MALFORMED
    assert code(b"[\xff]") == sv.E_RECORD_MALFORMED
    assert code(act.replace(b'"for_ms":7200000', b'"for_ms":9223372036854775807')) == "ok"
    # valid JSON that is not canonical
    assert code(act.replace(b'{"channels"', b'{"for_ms":1,"channels"')) == sv.E_RECORD_NOT_CANONICAL  # dup key
    assert code(act.replace(b"release_open", b"release\\u005fopen")) == sv.E_RECORD_NOT_CANONICAL
    assert code(act.replace(b"release_open", b"\\ud800")) == sv.E_RECORD_NOT_CANONICAL


def test_inclusion_proof_needs_the_key_in_force_from_the_key_history():
    chain = sv.Chain(ENROLMENT)
    assert codes(chain.verify_stream(V["stream"].encode())) == ["ok", "ok", "ok"]
    p3 = _proof_for(2, 0)
    assert p3["path"] == []
    # batch 3 is signed by the rotated key: the enrolment alone does not know it
    assert _proof_code(p3, key=ENROLMENT) == sv.E_JWS_KID
    rec = sv.verify_inclusion_proof(p3, chain, bank_jwk={"jwk": BANK["jwk"], "kid": BANK["kid"]})
    assert rec == json.loads(batch_lines(2)[0])
    # every record of batches 1 and 2 with the history (the old key is in force at their bseq)
    for i in (0, 1):
        for idx in range(len(batch_lines(i))):
            sv.verify_inclusion_proof(_proof_for(i, idx), chain, bank_jwk=BANK["jwk"])
    # a batch 3 signed by the retired key is refused with the step-2 code
    old3 = make_batch(manifest(2), batch_lines(2), DEV)
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_inclusion_proof({**p3, "batch": token_of(old3), "receipt": None}, chain)
    assert e.value.code == sv.E_KEY_RETIRED
    # the proof names the wrong device for the enrolment
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_inclusion_proof(PROOF, {**ENROLMENT, "device": "another-site"})
    assert e.value.code == sv.E_DEVICE_MISMATCH
    # the embedded receipt must name the batch
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_inclusion_proof({**PROOF, "receipt": B[1]["receipt"]["token"]}, ENROLMENT, bank_jwk=BANK["jwk"])
    assert e.value.code == sv.E_RECEIPT_MISMATCH


def test_receipt_codes():
    rc = B[0]["receipt"]["token"]
    p = sv.verify_receipt(rc, {"jwk": BANK["jwk"], "kid": BANK["kid"]})
    with pytest.raises(sv.VerifyError) as e:
        sv.check_receipt_names(p, FILES[1])
    assert e.value.code == sv.E_RECEIPT_MISMATCH
    for name, value in (("dev", "another-site"), ("bseq", 2), ("batch", "0" * 64)):
        with pytest.raises(sv.VerifyError) as e:
            sv.check_receipt_names({**p, name: value}, B[0]["token"])
        assert e.value.code == sv.E_RECEIPT_MISMATCH
    # typ and alg of a receipt are checked as in step 2
    payload = B[0]["receipt"]["payload"].encode()
    wrong_typ = sign({"alg": "ES256", "kid": BANK["kid"], "typ": "vouch-batch+jws"}, payload, BANK)
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_receipt(wrong_typ, BANK["jwk"])
    assert e.value.code == sv.E_JWS_MALFORMED
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_receipt(_token_with_header(b'{"alg":"ES384","kid":"x","typ":"vouch-receipt+jws"}', rc),
                          BANK["jwk"])
    assert e.value.code == sv.E_JWS_ALG
    v2 = sign({"alg": "ES256", "kid": BANK["kid"], "typ": "vouch-receipt+jws"},
              sv.canonical_json({**json.loads(payload), "v": 2}), BANK)
    with pytest.raises(sv.VerifyError) as e:
        sv.verify_receipt(v2, BANK["jwk"])
    assert e.value.code == sv.E_PAYLOAD_VERSION


def test_every_verdict_code_is_a_spec_code():
    assert {sv.OK} | sv.SPEC_CODES >= {
        sv.E_JWS_MALFORMED, sv.E_JWS_ALG, sv.E_RECEIPT_MISMATCH, sv.E_PROOF_INVALID, sv.E_DEVICE_UNKNOWN,
        sv.E_DEVICE_REVOKED}
    assert not hasattr(sv, "X_RECEIPT_MISMATCH")
