"""`vouch sensors`: every channel's live value from the running agent (which owns the buses), or read
once by the command itself when no agent runs; a dead meter is a failing channel with its error and
exit 1; the JSON shape is held to a snapshot."""
import json
import os
import subprocess
from pathlib import Path

from json_shape import key_paths
from vouch_site import Site, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHAPE = ROOT / "Tests" / "EndToEnd" / "golden" / "json" / "vouch_sensors.keys"


def sensors(site, *args):
    run = subprocess.run([str(site.bin_dir / "vouch"), "sensors", "--config", str(site.config), *args], capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout, run.stderr


def test_sensors_from_the_agent_then_directly_then_a_dead_meter(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()

        def from_agent():
            code, out, _ = sensors(site, "--json")
            return json.loads(out) if code == 0 and json.loads(out)["source"] == "agent" else None

        assert wait_until(lambda: (from_agent() or {}).get("channels", [{}])[0].get("quality") == "ok", timeout=30)
        doc = from_agent()
        assert [c["id"] for c in doc["channels"]] == ["meter.power", "meter.energy"] and doc["device"] == "demo-press-1"
        assert all(c["quality"] == "ok" and c["value"] is not None and c["error"] is None for c in doc["channels"]), doc
        shape = key_paths(doc)
        if os.environ.get("VOUCH_UPDATE_GOLDEN") == "1":
            SHAPE.write_text("\n".join(shape) + "\n")
        assert shape == SHAPE.read_text().split(), "vouch sensors --json changed shape"
        code, out, _ = sensors(site)
        assert code == 0 and "as the running agent last read them" in out and "meter.power" in out and " W " in out, out

        # No agent: the command reads the meter itself.
        assert site.stop_process("agent") == 0
        code, out, _ = sensors(site, "--json")
        doc = json.loads(out)
        assert code == 0 and doc["source"] == "direct" and all(c["quality"] == "ok" for c in doc["channels"]), doc
        assert key_paths(doc) == SHAPE.read_text().split()
        code, out, err = sensors(site, "--watch")
        assert code == 69 and "--watch needs the running agent" in err

        # The meter gone: failing, with the error, exit 1.
        site.stop_process("site")
        code, out, _ = sensors(site, "--json")
        doc = json.loads(out)
        assert code == 1 and all(c["quality"] == "failing" and c["error"].startswith("E_MODBUS") and c["value"] is None for c in doc["channels"]), doc
        code, out, _ = sensors(site)
        assert code == 1 and "FAILING: E_MODBUS" in out and "read once now (no agent running)" in out
