"""`vouch events` and `vouch outbox`, read from the outbox read-only: while the agent runs and after it
stopped, with an event that started and ended (a press stop), JSON shapes held to snapshots; before
any agent ran, 66."""
import json
import os
import subprocess
from pathlib import Path

from json_shape import key_paths
from vouch_site import Site, wait_until

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "Tests" / "EndToEnd" / "golden" / "json"


def vouch(site, *args):
    run = subprocess.run([str(site.bin_dir / "vouch"), *args, "--config", str(site.config)], capture_output=True, text=True, timeout=60)
    return run.returncode, run.stdout, run.stderr


def same_shape(doc, name):
    shape = key_paths(doc)
    if os.environ.get("VOUCH_UPDATE_GOLDEN") == "1":
        (GOLDEN / name).write_text("\n".join(shape) + "\n")
    assert shape == (GOLDEN / name).read_text().split(), f"the --json shape changed ({name})"


def test_events_and_outbox_while_running_and_after(tmp_path):
    fresh = Site(tmp_path / "fresh")
    fresh.prepare()
    code, _, err = vouch(fresh, "events")
    assert code == 66 and "has not run" in err
    assert vouch(fresh, "outbox")[0] == 66
    site = Site(tmp_path / "site", stop_after=3, stop_for=4, stop_rule="2s", summary_interval="2s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()

        def events():
            code, out, _ = vouch(site, "events", "--json")
            return json.loads(out)["events"] if code == 0 else []

        assert wait_until(lambda: [e for e in events() if e["status"] == "ended" and e["bseq"]], timeout=60), events()
        doc = json.loads(vouch(site, "events", "--json")[1])
        e = doc["events"][-1]
        assert doc["device"] == "demo-press-1" and e["rule"] == "press-stop" and e["channel"] == "meter.power" and e["end_wall_ms"] > e["start_wall_ms"]
        same_shape(doc, "vouch_events.keys")
        code, out, _ = vouch(site, "events")
        assert code == 0 and "press-stop on meter.power: lasted" in out and "sealed in batch" in out, out

        assert wait_until(lambda: json.loads(vouch(site, "outbox", "--json")[1])["undelivered_batches"] == 0, timeout=30)
        doc = json.loads(vouch(site, "outbox", "--json")[1])
        assert doc["batches"] >= 2 and doc["records"] > doc["unsealed_records"] and doc["quarantined"] == [] and doc["bytes"] > 0, doc
        same_shape(doc, "vouch_outbox.keys")
        code, out, _ = vouch(site, "outbox")
        assert code == 0 and "batch(es) not yet acknowledged by the bank" in out and "no batch refused by the bank" in out, out

        assert site.stop_process("agent") == 0
        code, out, _ = vouch(site, "events", "--json", "--limit", "1")
        assert code == 0 and len(json.loads(out)["events"]) == 1
        assert vouch(site, "outbox")[0] == 0
