"""`vouch detect replay` as a technician runs it, and README.md's detection config as printed."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VOUCH = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug") / "vouch"

SITE = """
[device]
id = "readme"
data_dir = "{tmp}"

[bank]
url = "http://127.0.0.1:9"

[shift]
timezone = "Europe/Berlin"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "06:00"
end = "22:00"

[[modbus.device]]
name = "press"
url = "tcp://127.0.0.1:5020"
unit_id = 1

[[modbus.device.channel]]
name = "power"
register = "input"
address = 0
type = "f32"
decimals = 2
unit = "kW"

[[modbus.device.channel]]
name = "energy"
register = "input"
address = 2
type = "u32"
decimals = 1
unit = "kWh"

[[modbus.device]]
name = "scale"
url = "tcp://127.0.0.1:5021"
unit_id = 1

[[modbus.device.channel]]
name = "weight"
register = "holding"
address = 0
type = "i32"
decimals = 1
unit = "kg"

[[modbus.device]]
name = "loader"
url = "tcp://127.0.0.1:5022"
unit_id = 1

[[modbus.device.channel]]
name = "tilt"
register = "input"
address = 0
type = "i16"
unit = "deg"

[[gpio.input]]
name = "door"
line = "door"
active_low = true

[[gpio.input]]
name = "press_run"
line = "press_run"
signal = "duty"
"""


def vouch(*args):
    assert VOUCH.exists(), f"{VOUCH} missing: run `swift build` first"
    return subprocess.run([str(VOUCH), *map(str, args)], capture_output=True, text=True, timeout=120)


def readme_detection_config():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Detection"):]
    start = section.index("```toml\n") + len("```toml\n")
    return section[start:section.index("```", start)]


def site_with_readme_rules(tmp_path):
    config = tmp_path / "vouch.toml"
    config.write_text(SITE.format(tmp=tmp_path) + "\n" + readme_detection_config())
    return config


def test_the_readme_detection_config_is_valid(tmp_path):
    config = site_with_readme_rules(tmp_path)
    check = vouch("config", "check", config)
    assert check.returncode == 0, check.stderr
    kinds = {line.split('"')[1] for line in readme_detection_config().splitlines() if line.startswith("kind = ")}
    assert kinds == {"run_state", "weight_drop", "contact", "threshold", "count_drop", "flatline", "comm_loss", "baseline", "machine"}


def test_replay_finds_a_stop_in_the_shift_and_records_one_outside_it(tmp_path):
    config = site_with_readme_rules(tmp_path)
    # Tuesday 2026-12-01 (Berlin, UTC+1): running, stopped 10:00–10:30 local, running; then stopped from 22:30.
    rows = ["timestamp,press.power"]
    for minute in range(8 * 60, 23 * 60):
        running = not (10 * 60 <= minute < 10 * 60 + 30) and minute < 22 * 60 + 30
        rows.append(f"2026-12-01T{minute // 60:02d}:{minute % 60:02d}:00,{'41.20' if running else '0.20'}")
    history = tmp_path / "press.csv"
    history.write_text("\n".join(rows) + "\n")
    out, events = tmp_path / "replay.csv", tmp_path / "events.jsonl"
    r = vouch("detect", "replay", "--config", config, "--csv", history, "--out", out, "--events", events)
    assert r.returncode == 0, r.stderr
    assert f"{len(rows) - 1} rows, 1 channel(s)" in r.stderr
    found = [json.loads(line) for line in events.read_text().splitlines()]
    starts = [(e["rule"], e["severity"], e["start"]) for e in found if e["phase"] == "start" and e["rule"] == "press-stop"]
    assert starts == [("press-stop", "alarm", "2026-12-01T09:00:00.000Z"), ("press-stop", "record", "2026-12-01T21:30:00.000Z")], found
    stop = next(e for e in found if e["rule"] == "press-stop")
    assert stop["kind"] == "run_state" and stop["explanation"] and stop["window"] and stop["params"]
    table = out.read_text().splitlines()
    assert table[0] == "timestamp,press.power,press.power.score,press.power.event"
    assert len(table) == len(rows)
    marked = [line for line in table[1:] if line.split(",")[3]]
    assert any(line.startswith("2026-12-01T10:05:00,") for line in marked), "the row where the stop was confirmed names its event"


def test_bad_input_names_the_line_or_the_option(tmp_path):
    config = site_with_readme_rules(tmp_path)
    history = tmp_path / "bad.csv"
    history.write_text("timestamp,press.power\n2026-12-01T10:00:00,41\n2026-12-01T10:01:00,forty\n")
    r = vouch("detect", "replay", "--config", config, "--csv", history)
    assert r.returncode == 65 and 'line 3: column "press.power": "forty" is not a number' in r.stderr, r.stderr
    r = vouch("detect", "replay", "--config", config, "--csv", history, "--channel", "press.powr")
    assert r.returncode == 64 and "--channel press.powr: not a channel of" in r.stderr, r.stderr
    r = vouch("detect", "replay", "--config", config, "--csv", tmp_path / "missing.csv")
    assert r.returncode == 64 and "no such file" in r.stderr, r.stderr
    # A config with no [[detect]] rule says so, not that no column matches an empty list of channels.
    no_rules = tmp_path / "no-rules.toml"
    no_rules.write_text(SITE.format(tmp=tmp_path))
    r = vouch("detect", "replay", "--config", no_rules, "--csv", history)
    assert r.returncode == 64 and f"{no_rules} has no [[detect]] rule, so there is nothing to replay" in r.stderr, r.stderr
