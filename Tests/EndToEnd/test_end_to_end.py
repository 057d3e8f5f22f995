"""End to end, real processes only: pymodbus meter → `vouch run` → `vouch-bank serve` on loopback.

The bank-side checks use only the enrolled public JWK, a standard JOSE library (joserfc) and SHA-256:
no Vouch code, as a bank's own integrators would verify.
"""
import base64
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

import spec_verifier  # Tests/EndToEnd/spec_verifier.py: written from the spec alone
from vouch_site import Site, wait_until  # scripts/sim/vouch_site.py

POLL_S = 1.0


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def canonical(value):
    # RFC 8785 for integers/strings/arrays/objects: what the evidence spec requires of record bytes.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def merkle_root(leaves):
    """RFC 6962 §2.1, written from the RFC (recursive split at the largest power of two < n)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + merkle_root(leaves[:k]) + merkle_root(leaves[k:])).digest()




@pytest.fixture
def stoppage_site(tmp_path):
    # Power drops at t=6 s for 12 s; the rule needs 5 s below 500 W.
    site = Site(tmp_path / "site", stop_after=6, stop_for=12, stop_rule="5s", summary_interval="5s", batch_interval="3s")
    site.start()
    try:
        yield site
    finally:
        site.stop()


def test_stoppage_reaches_the_bank_as_a_verified_event(stoppage_site):
    site = stoppage_site
    ended = wait_until(lambda: [e for e in site.events() if e["status"] == "ended"], timeout=60)
    assert ended, f"no ended stoppage at the bank; agent log:\n{site.logs['agent'].read_text()[-3000:]}"
    codes = site.stop()
    assert codes["agent"] == 0, "the agent must shut down cleanly on SIGTERM"

    phases = {p["event"]: p["wall_ns"] // 1_000_000 for p in site.site_phases()}
    real_start, real_end = phases["stoppage begins"], phases["production resumes"]
    [event] = ended
    assert event["rule"] == "press-stop" and event["channel"] == "meter.power"
    # The first low reading comes at most one poll interval after the real drop.
    lag = event["start_wall_ms"] - real_start
    assert -200 <= lag <= POLL_S * 1000 + 500, f"start off by {lag} ms"
    real_duration = real_end - real_start
    assert abs(event["duration_ms"] - real_duration) <= POLL_S * 1000 + 500, (event["duration_ms"], real_duration)
    assert abs(event["end_wall_ms"] - real_end) <= POLL_S * 1000 + 500

    # Everything the agent sealed was delivered and receipted before it stopped.
    with sqlite3.connect(f"file:{site.outbox}?mode=ro", uri=True) as db:
        undelivered = db.execute("SELECT COUNT(*) FROM batch WHERE receipt IS NULL").fetchone()[0]
        unsealed = db.execute("SELECT COUNT(*) FROM record WHERE bseq IS NULL").fetchone()[0]
        sealed = db.execute("SELECT COUNT(*) FROM batch").fetchone()[0]
    assert (undelivered, unsealed) == (0, 0)
    assert len(site.batches()) == sealed


def test_batches_verify_with_a_standard_jose_library_and_only_the_public_key(stoppage_site):
    site = stoppage_site
    assert wait_until(lambda: len(site.batches()) >= 3, timeout=45), "expected at least 3 batches at the bank"
    site.stop()
    enrollment = json.loads(site.enrollment.read_text())
    key = ECKey.import_key(enrollment["jwk"])
    batches = site.batches()
    assert [b["bseq"] for b in batches] == list(range(1, len(batches) + 1))

    previous_signing_input = None
    next_rseq = 1
    kinds = set()
    for b in batches:
        token = b["token"]
        result = jws.deserialize_compact(token, key, algorithms=["ES256"])  # raises if the signature is wrong
        header = result.protected
        assert header["alg"] == "ES256" and header["kid"] == enrollment["kid"] and header["typ"] == "vouch-batch+jws"
        manifest = json.loads(result.payload)
        assert manifest["dev"] == enrollment["device"] and manifest["bseq"] == b["bseq"] and manifest["v"] == 1

        signing_input = token.rsplit(".", 1)[0].encode()
        expected_prev = "0" * 64 if previous_signing_input is None else hashlib.sha256(previous_signing_input).hexdigest()
        assert manifest["prev"] == expected_prev, f"batch {b['bseq']} does not link to its predecessor"
        previous_signing_input = signing_input

        # The records travel beside the signed manifest, committed to by n and the Merkle root.
        lines = [line.encode() for line in b["records"]]
        assert manifest["n"] == len(lines)
        assert merkle_root(lines).hex() == manifest["root"]
        # The manifest and every record line are canonical: re-serialising gives the signed bytes.
        assert canonical(manifest) == b64url_decode(token.split(".")[1])
        for line in lines:
            r = json.loads(line)
            assert canonical(r) == line
            assert r[1] == next_rseq, f"rseq {r[1]} where {next_rseq} was due"
            kinds.add(r[0])
            next_rseq += 1
    # A first start records its configuration, what runs (attestation) and its heartbeat interval.
    assert {"cfg", "att", "hb", "sum", "evt"} <= kinds, kinds

    # The bank's own offline verifier agrees, and catches a deleted batch.
    export = site.workdir / "export.batches"
    export.write_text(site.bank("export", "--device", site.device_id).stdout)
    ok = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(export)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1] == f"{site.device_id}: {len(batches)} batch(es) ok, 0 failed"
    without_second = "".join(b["token"] + "\n" + "".join(r + "\n" for r in b["records"]) for b in batches if b["bseq"] != 2)
    deleted = site.workdir / "deleted.batches"
    deleted.write_text(without_second)
    gap = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(deleted)],
                         capture_output=True, text=True)
    assert gap.returncode == 1
    third_line = 1 + 1 + len(batches[0]["records"])
    assert f"{deleted}:{third_line}: bseq 3: FAIL E_CHAIN_GAP" in gap.stdout, gap.stdout

    # The gateway's own export of its outbox is the same stream, byte for byte, and verifies the same way.
    gateway_export = site.workdir / "gateway.batches"
    receipts = site.workdir / "receipts.jws"
    gateway_export.write_text(site.vouch("evidence", "export", "--config", str(site.config), "--receipts", str(receipts)).stdout)
    assert gateway_export.read_bytes() == export.read_bytes()
    assert len(receipts.read_text().splitlines()) == len(batches), "every batch delivered has its receipt"
    ok = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(gateway_export)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # The verifier written from the spec alone agrees on every batch, every receipt and a disclosed record.
    verdicts = spec_verifier.verify_stream(export.read_bytes(), enrollment["jwk"], expected_last=len(batches))
    assert [v.code for v in verdicts] == ["ok"] * len(batches), [v.line() for v in verdicts]
    bank_jwk = json.loads((site.workdir / "bank.jwk").read_text())["jwk"]
    for token, batch in zip(receipts.read_text().splitlines(), batches):
        payload = spec_verifier.verify_receipt(token, bank_jwk)
        spec_verifier.check_receipt_names(payload, batch["token"])
        assert payload["log"]["size"] == payload["log"]["idx"] + 1, "one device on this bank: its log is this chain"
    # Each manifest names the hash of the receipt before it.
    receipt_hashes = [spec_verifier.receipt_signing_input_hash(t) for t in receipts.read_text().splitlines()]
    assert [b["manifest"]["rcpt"] for b in batches[1:]] == receipt_hashes[:-1]
    proof_record = json.loads(batches[1]["records"][-1])[1]
    proof = site.bank("proof", "--device", site.device_id, "--rseq", str(proof_record)).stdout
    disclosed = spec_verifier.verify_inclusion_proof(json.loads(proof), enrollment["jwk"])
    assert disclosed == json.loads(batches[1]["records"][-1])
    # Only the disclosed record is revealed: the manifest carries hashes and counts, the path hashes.
    document = json.loads(proof)
    assert set(document) == {"v", "type", "batch", "index", "record", "path", "jwk", "receipt"}
    assert document["record"] == batches[1]["records"][-1] and document["batch"] == batches[1]["token"]
    assert all(len(p) == 64 for p in document["path"])
    proof_file = site.workdir / "record.proof.json"
    proof_file.write_text(proof)
    checked = subprocess.run([str(site.bin_dir / "vouch-bank"), "proof", "--check", str(proof_file), "--enrollment", str(site.enrollment)],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and ": ok: record" in checked.stdout, checked.stdout + checked.stderr

    # An edited record fails the Merkle check, for the bank's verifier and for anyone recomputing the root.
    last = batches[-1]
    edited_lines = list(last["records"])
    edited_record = json.loads(edited_lines[0])
    edited_record[2] += 1
    edited_lines[0] = canonical(edited_record).decode()
    assert merkle_root([line.encode() for line in edited_lines]).hex() != last["manifest"]["root"]
    forged = site.workdir / "forged.batches"
    forged.write_text(last["token"] + "\n" + "".join(line + "\n" for line in edited_lines))
    refused = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(forged)],
                             capture_output=True, text=True)
    assert refused.returncode == 1 and "FAIL E_MERKLE_ROOT" in refused.stdout, refused.stdout


def test_agent_survives_frozen_and_dead_meter_and_records_comm_errors(tmp_path):
    site = Site(tmp_path / "site", stop_after=1000, stop_for=0, summary_interval="3s", batch_interval="2s")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 1, timeout=30)
        meter = site.processes["site"]
        os.killpg(meter.pid, signal.SIGSTOP)   # frozen: reads time out
        time.sleep(4)
        os.killpg(meter.pid, signal.SIGCONT)
        site.stop_process("site")             # gone: connection refused
        time.sleep(4)
        site.start_meter()                    # back on the same port
        time.sleep(7)
        assert site.processes["agent"].poll() is None, "the agent must keep running through meter failures"
        site.stop()

    records = [json.loads(line) for b in site.batches() for line in b["records"]]
    summaries = [r for r in records if r[0] == "sum" and r[6] == "meter.power"]
    # The outage (about 8 s) outlasted a summary interval (3 s): it is also a signed gap record.
    gaps = [r for r in records if r[0] == "gap" and r[6] == "sensor_unreachable" and r[7] == "meter.power"]
    assert gaps and gaps[0][13] >= 3, gaps
    errors = {r[16] for r in summaries if r[11] > 0}
    assert "E_MODBUS_ETIMEDOUT" in errors, errors
    assert errors & {"E_MODBUS_ECONNREFUSED", "E_MODBUS_ECONNRESET"}, errors
    # Readings resumed after the meter came back: the last summaries have values again.
    assert summaries[-1][10] > 0 and summaries[-1][15] is not None
    log = site.logs["agent"].read_text()
    assert "unreadable (E_MODBUS_ETIMEDOUT)" in log and "readable again" in log


def test_config_check_reports_errors_with_file_and_line(tmp_path):
    site = Site(tmp_path / "site")
    site.workdir.mkdir(parents=True)
    bad = site.workdir / "bad.toml"
    bad.write_text('[device]\nid = "x"\n\n[bank]\nurl = 42\n\n[shift]\nstart = "06:00"\nend = "22:00"\nzone = "UTC"\n')
    result = site.vouch("config", "check", str(bad), check=False)
    assert result.returncode == 78
    lines = result.stderr.splitlines()
    assert f'{bad}:5:7: error: "url" in [bank] must be a URL such as "https://bank.example:8443", found an integer' in lines
    assert any(l.startswith(f"{bad}:10:1: error: unknown key \"zone\" in [shift]") for l in lines), lines
