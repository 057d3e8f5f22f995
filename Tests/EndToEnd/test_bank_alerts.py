"""Alerts and `vouch-bank events --follow`, end to end: a real agent whose press stops, a real bank that
hands every alert to a command (retried until it succeeds), and an operator's terminal following the
events as they arrive."""
import json
import os
import subprocess
import sys
import time

from vouch_site import Site, wait_for_port, wait_until

# Fails its first two runs (the webhook is down), then appends the alert.
FLAKY = """#!/bin/sh
n=$(cat "$1.count" 2>/dev/null || echo 0)
echo $((n + 1)) > "$1.count"
if [ "$n" -lt 2 ]; then echo "hook unreachable (run $n)" >&2; exit 7; fi
cat >> "$1"
"""


def alerts_in(path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_alerts_reach_the_command_with_retries_and_events_can_be_followed(tmp_path):
    site = Site(tmp_path / "site", stop_after=4, stop_for=8, stop_rule="3s", summary_interval="3s", batch_interval="1s")
    hook = tmp_path / "hook.sh"
    hook.write_text(FLAKY)
    os.chmod(hook, 0o755)
    delivered = tmp_path / "alerts.jsonl"
    with site:
        site.prepare()
        site._spawn("bank", [str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key", str(site.bank_key),
                             "--listen", f"127.0.0.1:{site.bank_port}", "--alert-command", f"{hook} {delivered}"])
        assert wait_for_port(site.bank_port), "vouch-bank did not start"
        follow = subprocess.Popen([str(site.bin_dir / "vouch-bank"), "events", "--db", str(site.bank_db), "--follow", "--json"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            site.start_meter()
            site.start_agent()
            # The stop starts and ends; both reach the command once it works again (after 2 failures).
            def stop_alerts():
                found = [a for a in alerts_in(delivered) if a["kind"] == "event" and a["rule"] == "press-stop"]
                return found if len(found) >= 2 else None
            got = wait_until(stop_alerts, timeout=90)
            assert got, site.logs["bank"].read_text()[-3000:]
            assert [a["phase"] for a in got] == ["start", "end"], got
            assert got[0]["device"] == site.device_id and got[0]["message"] and got[1]["duration_ms"] > 0
            log = site.logs["bank"].read_text()
            assert "not delivered (attempt 1): exit status 7: hook unreachable" in log and "retrying in 1 s" in log, log[-2000:]
            assert "delivered" in log
            # Each alert was delivered once, however many times the command was tried.
            ids = [(a["event_id"], a["phase"]) for a in alerts_in(delivered) if a["kind"] == "event"]
            assert len(ids) == len(set(ids))
        finally:
            site.stop_process("agent")
            time.sleep(1.5)
            follow.terminate()
            out, _ = follow.communicate(timeout=10)
        followed = [json.loads(line) for line in out.splitlines() if line.strip()]
        stops = [e for e in followed if e["rule"] == "press-stop"]
        assert [e["status"] for e in stops] == ["ongoing", "ended"] or [e["status"] for e in stops] == ["ended"], followed
        assert stops[-1]["status"] == "ended"


def test_a_bank_without_an_alert_command_queues_nothing(tmp_path):
    site = Site(tmp_path / "site", stop_after=4, stop_for=8, stop_rule="3s", summary_interval="3s", batch_interval="1s")
    with site:
        site.start()
        assert wait_until(lambda: [e for e in site.events() if e["status"] == "ended"], timeout=60)
        site.stop()
    count = subprocess.run([sys.executable, "-c", f"import sqlite3; print(sqlite3.connect('{site.bank_db}').execute('SELECT COUNT(*) FROM alert').fetchone()[0])"],
                           capture_output=True, text=True, check=True)
    assert count.stdout.strip() == "0"
