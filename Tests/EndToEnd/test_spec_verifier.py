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
    assert _proof_code({**PROOF, "record": sv.canonical_json(rec).decode()}) == sv.E_MERKLE_ROOT
    # another genuine record of the batch at the same index does not pass either
    assert _proof_code({**PROOF, "record": batch_lines(0)[2].decode()}) == sv.E_MERKLE_ROOT
    # a non-canonical rendering of the very same record
    assert _proof_code({**PROOF, "record": PROOF["record"].replace(",", ", ", 1)}) == sv.E_RECORD_NOT_CANONICAL


@pytest.mark.parametrize("index", [0, 1, 2, 4, 5, 6, 7, 8, 11, 19, 27, -1, -5, 100])
def test_inclusion_proof_altered_index_fails(index):
    assert _proof_code({**PROOF, "index": index}) == sv.E_MERKLE_ROOT


@pytest.mark.parametrize("k", range(3))
def test_inclusion_proof_altered_path_element_fails(k):
    path = list(PROOF["path"])
    flipped = bytearray(bytes.fromhex(path[k]))
    flipped[0] ^= 1
    path[k] = flipped.hex()
    assert _proof_code({**PROOF, "path": path}) == sv.E_MERKLE_ROOT


def test_inclusion_proof_other_alterations_fail():
    assert _proof_code({**PROOF, "path": PROOF["path"][:-1]}) == sv.E_MERKLE_ROOT
    assert _proof_code({**PROOF, "path": PROOF["path"] + [PROOF["path"][0]]}) == sv.E_MERKLE_ROOT
    assert _proof_code({**PROOF, "path": PROOF["path"][::-1]}) == sv.E_MERKLE_ROOT
    # the key is taken from the enrolment, never from the proof
    assert _proof_code({**PROOF, "jwk": ROT["jwk"]}, key=ROT["jwk"]) == sv.E_JWS_KID
    assert _proof_code({**PROOF, "v": 2}) == sv.E_PAYLOAD_VERSION
    assert _proof_code({**PROOF, "type": "other"}) == sv.E_PAYLOAD_MALFORMED
    h, p, s = PROOF["batch"].split(".")
    other_manifest = b64e(B[1]["manifest"].encode())
    assert _proof_code({**PROOF, "batch": ".".join([h, other_manifest, s])}) == sv.E_JWS_SIGNATURE


# ------------------------------------------------------------------------------------------
# tampered streams
# ------------------------------------------------------------------------------------------
def test_delete_batch_2_is_a_gap():
    v = run_stream(FILES[0], FILES[2])
    assert codes(v) == ["ok", sv.E_CHAIN_GAP]
    assert not v[1].accepted


def test_swap_batches_2_and_3_is_a_reorder():
    v = run_stream(FILES[0], FILES[2], FILES[1])
    assert codes(v) == ["ok", sv.E_CHAIN_REORDER, "ok"]


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
    for bad in (line.replace(b",", b", ", 1), line.replace(b"300000", b"3e5"), line.replace(b"300000", b"300000.0")):
        f = replace_line(FILES[0], 2, bad)
        assert codes(run_stream(f))[0] == sv.E_RECORD_NOT_CANONICAL
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
    enrol.write_text(json.dumps({"dev": DEVICE_ID, "jwk": DEV["jwk"]}))
    bare = tmp_path / "dev.jwk"
    bare.write_text(json.dumps(DEV["jwk"]))
    bank = tmp_path / "bank.jwk"
    bank.write_text(json.dumps(BANK["jwk"]))
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
    assert r.returncode == 1 and "E_CHAIN_REORDER" in r.stdout
    tok = tmp_path / "r1.jws"
    tok.write_text(B[0]["receipt"]["token"] + "\n")
    assert _cli("receipt", "--bank-jwk", bank, "--batch", paths[0], tok).returncode == 0
    assert _cli("receipt", "--bank-jwk", bank, "--batch", paths[1], tok).returncode == 1
    assert _cli("receipt", "--bank-jwk", bare, tok).returncode == 1
    proof = tmp_path / "proof.json"
    proof.write_bytes(sv.canonical_json(PROOF))
    assert _cli("proof", "--jwk", enrol, "--bank-jwk", bank, proof).returncode == 0
    proof.write_text(json.dumps(PROOF, indent=2))  # the document's own bytes are not hashed or signed
    assert _cli("proof", "--jwk", bare, proof).returncode == 0
    proof.write_bytes(sv.canonical_json({**PROOF, "index": 2}))
    r = _cli("proof", "--jwk", enrol, proof)
    assert r.returncode == 1 and "E_MERKLE_ROOT" in r.stdout


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
    """The inclusion-proof loop exactly as printed in the spec (no 'index < n' precondition)."""
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


def test_spec_pseudocode_without_range_check_accepts_out_of_range_indices():
    """Documents a spec defect: without RFC 9162's 'leaf_index >= tree_size: fail' step, the printed loop
    accepts the vector proof for index 3 + 8k (11, 19, ...) in a 7-leaf tree.  Our verifier refuses."""
    m = json.loads(B[0]["manifest"])
    path = [bytes.fromhex(x) for x in PROOF["path"]]
    root = bytes.fromhex(m["root"])
    leaf = PROOF["record"].encode()
    accepted = [i for i in range(64) if _spec_pseudocode_as_written(i, m["n"], leaf, path, root)]
    assert accepted == [3, 11, 19, 27, 35, 43, 51, 59]
    assert [i for i in range(64) if sv.verify_audit_path(i, m["n"], leaf, path, root)] == [3]
