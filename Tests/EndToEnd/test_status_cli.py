"""`vouch status` against a running agent (simulated meter, real bank): its JSON shape held to a
snapshot, what it says of channels, rules, the outbox and the bank; a failing channel named with its
error; and, with no agent running, exit 69 saying so (`{"running": false}` with --json)."""
import json
import os
import subprocess
from pathlib import Path

from json_shape import key_paths
from vouch_site import Site, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHAPE = ROOT / "Tests" / "EndToEnd" / "golden" / "json" / "vouch_status.keys"


def status(site, *args):
    run = subprocess.run([str(site.bin_dir / "vouch"), "status", "--config", str(site.config), *args], capture_output=True, text=True)
    return run.returncode, run.stdout, run.stderr


def status_json(site):
    code, out, err = status(site, "--json")
    assert code == 0, err
    return json.loads(out)


def current(site):
    """The status now, or {} while the agent is not up yet."""
    code, out, _ = status(site, "--json")
    return json.loads(out) if code == 0 else {}




def test_status_of_a_running_agent(tmp_path):
    # The press stops after 3 s and stays stopped: the stoppage rule has a finding open.
    site = Site(tmp_path / "site", stop_after=3, stop_for=1e9, stop_rule="2s", summary_interval="2s", batch_interval="1s",
                poll_interval="200ms")
    with site:
        site.start()
        assert wait_until(lambda: current(site).get("rules", [{}])[0].get("state") == "finding", timeout=40), status(site)
        assert wait_until(lambda: current(site)["uplink"].get("last_receipt_bseq"), timeout=30)
        s = status_json(site)
        assert s["running"] is True and s["device"] == "demo-press-1" and s["boot_count"] >= 1
        assert s["uptime_ms"] > 0 and s["clock"]["quality"] in ("sync", "unsync", "step")
        power = next(c for c in s["channels"] if c["id"] == "meter.power")
        assert power["quality"] == "ok" and power["unit"] == "W" and power["value"] == 0 and power["read_wall_ms"] <= s["clock"]["wall_ms"]
        rule = s["rules"][0]
        assert rule["id"] == "press-stop" and rule["channel"] == "meter.power" and rule["kind"] == "stoppage"
        assert rule["event_id"] and rule["since_wall_ms"] <= s["clock"]["wall_ms"]
        assert s["outbox"]["batches"] >= 1 and s["uplink"]["last_receipt_bseq"] >= 1 and s["uplink"]["failures"] == 0
        # The shape a script may rely on.
        shape = key_paths(s)
        if os.environ.get("VOUCH_UPDATE_GOLDEN") == "1":
            SHAPE.write_text("\n".join(shape) + "\n")
        assert shape == SHAPE.read_text().split(), "vouch status --json changed shape (VOUCH_UPDATE_GOLDEN=1 after a deliberate change)"

        code, out, _ = status(site)
        assert code == 0
        assert out.startswith("demo-press-1: running for ") and "\nchannels\n" in out and "\nrules\n" in out
        assert "meter.power" in out and "0 W" in out and "ok, read" in out and "FINDING" in out

        # The meter goes away: the channel is failing, with its error.
        site.stop_process("site")
        assert wait_until(lambda: next(c for c in status_json(site)["channels"] if c["id"] == "meter.power")["quality"] == "failing", timeout=20)
        power = next(c for c in status_json(site)["channels"] if c["id"] == "meter.power")
        assert power["failures"] >= 1 and power["last_error"].startswith("E_") and power["failing_since_wall_ms"] > 0, power
        assert "FAILING since" in status(site)[1]

        assert site.stop_process("agent") == 0
        code, out, err = status(site, "--json")
        assert code == 69 and json.loads(out) == {"running": False, "device": "demo-press-1", "socket": str(tmp_path / "site" / "agent" / "vouch.sock")}
        assert "no agent is running for" in err and "systemctl start vouch" in err
