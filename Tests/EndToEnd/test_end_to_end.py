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

from vouch_site import Site  # scripts/sim/vouch_site.py

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


def wait_until(predicate, timeout, step=0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


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
    for b in batches:
        token = b["token"]
        result = jws.deserialize_compact(token, key, algorithms=["ES256"])  # raises if the signature is wrong
        header = result.protected
        assert header["alg"] == "ES256" and header["kid"] == enrollment["kid"] and header["typ"] == "vouch-batch+jws"
        payload = json.loads(result.payload)
        assert payload["dev"] == enrollment["device"] and payload["bseq"] == b["bseq"] and payload["v"] == 1

        signing_input = token.rsplit(".", 1)[0].encode()
        expected_prev = "0" * 64 if previous_signing_input is None else hashlib.sha256(previous_signing_input).hexdigest()
        assert payload["prev"] == expected_prev, f"batch {b['bseq']} does not link to its predecessor"
        assert hashlib.sha256(signing_input).hexdigest() == b["hash"]
        previous_signing_input = signing_input

        records = payload["recs"]
        assert merkle_root([canonical(r) for r in records]).hex() == payload["root"]
        # The payload itself is canonical: re-serialising gives the signed bytes.
        assert canonical(payload) == b64url_decode(token.split(".")[1])
        for r in records:
            assert r[0] in ("sum", "evt") and r[1] == next_rseq, f"rseq {r[1]} where {next_rseq} was due"
            next_rseq += 1

    # The bank's own offline verifier agrees, and catches a deleted batch.
    export = site.workdir / "export.jsonl"
    export.write_text(site.bank("export", "--device", site.device_id).stdout)
    ok = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(export)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1] == f"{site.device_id}: {len(batches)} batch(es) ok, 0 failed"
    lines = export.read_text().splitlines()
    export.write_text("\n".join(lines[:1] + lines[2:]) + "\n")
    gap = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(export)],
                         capture_output=True, text=True)
    assert gap.returncode == 1
    assert f"{export}:2: bseq 3: FAIL E_CHAIN_GAP" in gap.stdout, gap.stdout

    # The gateway's own export of its outbox is the same chain, and verifies the same way.
    gateway_export = site.workdir / "gateway.jsonl"
    gateway_export.write_text(site.vouch("evidence", "export", "--config", str(site.config)).stdout)
    gateway_lines = [json.loads(l) for l in gateway_export.read_text().splitlines()]
    assert [(g["bseq"], g["token"]) for g in gateway_lines] == [(b["bseq"], b["token"]) for b in batches]
    assert all(g["delivered"] for g in gateway_lines)
    ok = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(gateway_export)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # A forged batch fails the same check.
    header, body, signature = batches[-1]["token"].split(".")
    forged = json.loads(b64url_decode(body))
    forged["recs"] = forged["recs"][:-1]
    forged_body = base64.urlsafe_b64encode(canonical(forged)).rstrip(b"=").decode()
    with pytest.raises(Exception):
        jws.deserialize_compact(f"{header}.{forged_body}.{signature}", key, algorithms=["ES256"])


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

    summaries = []
    for b in site.batches():
        payload = json.loads(b64url_decode(b["token"].split(".")[1]))
        summaries += [r for r in payload["recs"] if r[0] == "sum" and r[6] == "meter.power"]
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
