"""Two `vouch-bank serve` processes on one real PostgreSQL behave as one receiver.

A throwaway cluster from Debian's binaries (scripts/pg-cluster), two receivers sharing it and one
receipt key, and a load generator (vouch-bench-bank --targets) playing many gateways: every batch sent
to both receivers at the same moment must be stored once (one `accepted`, one `duplicate`, one
receipt), every chain whole, no incident, the bank log holding each batch once; and batches spread
over both receivers must chain as if there were one. Afterwards each device's export verifies offline.
"""
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

from vouch_site import free_port, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug")
TOKEN = secrets.token_hex(32)


class Fleet:
    def __init__(self, work):
        self.work = work
        self.processes = []
        # Not under pytest's tmp: its 0700 parents keep the postgres user (the server, as root runs it) out.
        self.cluster = Path(tempfile.mkdtemp(prefix="vouch-bank-pg-"))
        self.url = subprocess.run([str(ROOT / "scripts/pg-cluster"), "start", str(self.cluster)],
                                  capture_output=True, text=True, check=True).stdout.strip()
        self.token = work / "api.token"
        self.token.write_text(TOKEN + "\n")
        os.chmod(self.token, 0o600)
        self.key = work / "bank.key"
        subprocess.run([str(BIN / "vouch-bank"), "key", "--key", str(self.key)], capture_output=True, check=True)
        self.ports = []

    def start_receiver(self, name):
        port = free_port()
        log = open(self.work / f"{name}.log", "wb")
        p = subprocess.Popen([str(BIN / "vouch-bank"), "serve", "--db", self.url, "--key", str(self.key),
                              "--listen", f"127.0.0.1:{port}", "--api-token-file", str(self.token),
                              "--device-rate", "1000", "--device-burst", "1000"], stdout=log, stderr=subprocess.STDOUT)
        self.processes.append(p)
        assert wait_for_port(port), (self.work / f"{name}.log").read_text()[-2000:]
        self.ports.append(port)
        return port

    def sql(self, query):
        socket_dir = self.cluster / "socket"
        port = (self.cluster / "port").read_text().strip()
        out = subprocess.run(["psql", "-h", str(socket_dir), "-p", port, "-U", "vouch", "-d", "vouch", "-tAc", query],
                             capture_output=True, text=True, check=True).stdout
        return out.strip()

    def load(self, *args):
        targets = ",".join(f"http://127.0.0.1:{p}" for p in self.ports)
        run = subprocess.run([str(BIN / "vouch-bench-bank"), "--targets", targets, "--api-token-file", str(self.token),
                              "--concurrency", "16", *args], capture_output=True, text=True, timeout=300)
        summary = [l for l in run.stdout.splitlines() if l.startswith("bench-bank: summary ")]
        assert summary, run.stdout + run.stderr
        return run.returncode, json.loads(summary[-1][len("bench-bank: summary "):]), run.stdout + run.stderr

    def api(self, port, path):
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            return json.loads(r.read())

    def stop(self):
        for p in self.processes:
            p.terminate()
        for p in self.processes:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([str(ROOT / "scripts/pg-cluster"), "stop", str(self.cluster)], check=False)
        shutil.rmtree(self.cluster, ignore_errors=True)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("bank-pg"))
    try:
        f.start_receiver("receiver-a")
        f.start_receiver("receiver-b")
        yield f
    finally:
        f.stop()


def test_the_same_batch_sent_to_both_receivers_at_once_is_stored_once(fleet):
    enrollments = fleet.work / "enrollments-dup"
    code, summary, output = fleet.load("--devices", "30", "--batches", "6", "--duplicate", "--prefix", "dup-gw-",
                                       "--enrollments", str(enrollments))
    assert code == 0, output
    assert summary["accepted"] == 180 and summary["duplicate"] == 180, summary
    assert summary["problem_count"] == 0, summary
    assert fleet.sql("SELECT COUNT(*) FROM batch WHERE device LIKE 'dup-gw-%'") == "180"
    assert fleet.sql("SELECT COUNT(*) FROM record WHERE device LIKE 'dup-gw-%'") == str(180 * 60)
    # The bank log: one leaf per stored batch, each position given once.
    assert fleet.sql("SELECT COUNT(DISTINCT log_idx) FROM batch WHERE device LIKE 'dup-gw-%'") == "180"
    assert fleet.sql("SELECT COUNT(*) FROM batch WHERE receipt = ''") == "0"
    incidents = fleet.api(fleet.ports[1], "/v1/incidents")["incidents"]
    assert [i for i in incidents if i["device"].startswith("dup-gw-")] == []
    # What the bank holds verifies offline against each device's enrollment, whole (through batch 6).
    for device in ["dup-gw-0", "dup-gw-17", "dup-gw-29"]:
        export = subprocess.run([str(BIN / "vouch-bank"), "export", "--db", fleet.url, "--device", device],
                                capture_output=True, check=True).stdout
        path = fleet.work / f"{device}.batches"
        path.write_bytes(export)
        verify = subprocess.run([str(BIN / "vouch-bank"), "verify", "--enrollment", str(enrollments / f"{device}.json"),
                                 "--last", "6", str(path)], capture_output=True, text=True)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert "6 batch(es) ok, 0 failed" in verify.stdout


def test_batches_spread_over_both_receivers_chain_as_one(fleet):
    code, summary, output = fleet.load("--devices", "24", "--batches", "8", "--prefix", "spread-gw-")
    assert code == 0, output
    assert summary["accepted"] == 192 and summary["duplicate"] == 0 and summary["problem_count"] == 0, summary
    # Each device's batches went to A, B, A, B…: both receivers' logs name it.
    for name in ["receiver-a", "receiver-b"]:
        log = (fleet.work / f"{name}.log").read_text()
        assert "accepted batch 1 from spread-gw-0:" in log or "accepted batch 2 from spread-gw-0:" in log, name
    devices = {d["id"]: d for d in fleet.api(fleet.ports[0], "/v1/devices")["devices"]}
    for i in range(24):
        chain = devices[f"spread-gw-{i}"]["chain"]
        assert chain["batches"] == 8 and chain["last_bseq"] == 8 and chain["incidents"] == 0, chain
    # Both receivers read one database: the log size each reports in its receipts is the same sequence.
    assert fleet.sql("SELECT size FROM bank_log") == fleet.sql("SELECT COUNT(*) FROM batch")


def test_a_bad_database_url_stops_serve_with_the_reason(tmp_path):
    run = subprocess.run([str(BIN / "vouch-bank"), "serve", "--db", "postgres://db.bank.internal/vouch", "--key",
                          str(tmp_path / "bank.key"), "--listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 1
    assert "no user (postgres://USER@" in run.stderr, run.stderr


def test_a_database_that_does_not_answer_stops_serve_with_the_reason(tmp_path):
    run = subprocess.run([str(BIN / "vouch-bank"), "serve", "--db", f"postgres://vouch@/vouch?host={tmp_path}/nothere&port=5432",
                          "--key", str(tmp_path / "bank.key"), "--listen", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert "unreachable: no connection within 10" in run.stderr and f"{tmp_path}/nothere/.s.PGSQL.5432" in run.stderr, run.stderr
