"""`vouch doctor` on a real site (simulated meter, agent, bank): a healthy gateway passes; then each
thing a technician meets — a key readable by others, the bank down, the meter dead with no agent
running, a broken config — fails its own check, with a fix, and nothing else changes verdict."""
import json
import os
import subprocess
from pathlib import Path

from json_shape import key_paths
from vouch_site import Site, wait_until

ROOT = Path(__file__).resolve().parents[2]
SHAPE = ROOT / "Tests" / "EndToEnd" / "golden" / "json" / "vouch_doctor.keys"


def doctor(site, *args, config=None):
    run = subprocess.run([str(site.bin_dir / "vouch"), "doctor", "--config", str(config or site.config), *args],
                         capture_output=True, text=True, timeout=120)
    return run.returncode, run.stdout, run.stderr


def checks(site):
    code, out, err = doctor(site, "--json")
    doc = json.loads(out)
    return code, {c["id"]: c for c in doc["checks"]}, doc




def test_doctor_on_a_healthy_site_then_each_breakage(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 1, timeout=30)
        code, c, doc = checks(site)
        assert code == 0, json.dumps(doc, indent=1)
        assert list(c) == ["config", "key", "data_dir", "disk", "clock", "agent", "modbus meter", "gpio", "bank"], list(c)
        assert {k: v["outcome"] for k, v in c.items() if k != "clock"} == {
            "config": "ok", "key": "ok", "data_dir": "ok", "disk": "ok", "agent": "ok", "modbus meter": "ok", "gpio": "skip", "bank": "ok"}, doc
        assert c["clock"]["outcome"] in ("ok", "warn")
        assert "as the agent reads it" in c["modbus meter"]["detail"] and "meter.power" in c["modbus meter"]["detail"]
        assert '"status":"ok"' in c["bank"]["detail"]
        shape = key_paths(doc)
        if os.environ.get("VOUCH_UPDATE_GOLDEN") == "1":
            SHAPE.write_text("\n".join(shape) + "\n")
        assert shape == SHAPE.read_text().split(), "vouch doctor --json changed shape"
        code, out, _ = doctor(site)
        assert code == 0 and out.startswith(f"vouch doctor: {site.config}") and "all 9 checks passed" in out, out

        # A key others can read.
        key = site.workdir / "agent" / "device.key"
        os.chmod(key, 0o644)
        code, c, _ = checks(site)
        assert code == 1 and c["key"]["outcome"] == "fail" and "mode 644" in c["key"]["detail"]
        assert c["key"]["fix"].startswith(f"chmod 600 {key}")
        os.chmod(key, 0o600)

        # The bank down.
        site.stop_process("bank")
        code, c, _ = checks(site)
        assert code == 1 and c["bank"]["outcome"] == "fail" and "unreachable" in c["bank"]["detail"], c["bank"]
        assert "[bank] url" in c["bank"]["fix"]
        assert [k for k, v in c.items() if v["outcome"] == "fail"] == ["bank"]
        code, out, _ = doctor(site)
        assert "FAIL  bank" in out and "fix: check [bank] url" in out and "1 of 9 checks failed" in out, out

        # No agent, and the meter dead: the doctor polls it itself, and says what to check.
        assert site.stop_process("agent") == 0
        site.stop_process("site")
        code, c, _ = checks(site)
        assert c["agent"]["outcome"] == "warn" and "not running" in c["agent"]["detail"]
        m = c["modbus meter"]
        assert m["outcome"] == "fail" and "polled once now" in m["detail"] and "2 of 2 channel(s) unreadable" in m["detail"], m
        assert "unit id" in m["fix"] and "ping its address" in m["fix"]

    # A config that does not load: 78, and the JSON says so.
    broken = tmp_path / "broken.toml"
    broken.write_text("[device]\nid = 7\n")
    code, out, err = doctor(site, "--json", config=broken)
    assert code == 78 and json.loads(out)["checks"][0]["id"] == "config" and json.loads(out)["failed"] == 1
    assert "broken.toml" in err
