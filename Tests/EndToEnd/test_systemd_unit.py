"""The systemd unit the package installs (scripts/debian/vouch.service): systemd's own checker finds
nothing wrong with it, and it asks for what the agent relies on (Type=notify with a watchdog, restart
forever, the vouch user in groups gpio and dialout, a read-only system but for the data directory)."""
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug")
UNIT = ROOT / "scripts" / "debian" / "vouch.service"


def unit_settings():
    """Every key=value of the unit, values of repeated keys in order."""
    settings = {}
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


def test_systemd_analyze_verify_finds_nothing(tmp_path):
    # The checker wants ExecStart's binary to exist: the built one stands in for /usr/bin/vouch.
    unit = tmp_path / "vouch.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/vouch", str(BIN / "vouch")))
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # Unknown keys and bad values are only warnings on stderr: any line about the unit fails the test.
    assert [l for l in run.stderr.splitlines() if "vouch.service" in l] == [], run.stderr


def test_a_misspelt_key_would_be_caught(tmp_path):
    unit = tmp_path / "vouch.service"
    unit.write_text(UNIT.read_text().replace("/usr/bin/vouch", str(BIN / "vouch")).replace("WatchdogSec=", "WatchdogSecs="))
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert "Unknown key 'WatchdogSecs'" in run.stderr, run.stderr


def test_the_unit_asks_for_what_the_agent_relies_on():
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["ExecStart"] == ["/usr/bin/vouch run --config /etc/vouch/vouch.toml"]
    assert s["Restart"] == ["always"] and s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    watchdog = int(s["WatchdogSec"][0].rstrip("s"))
    assert 10 <= watchdog <= 120, "the agent pings at half of it; its pipeline must answer well within"
    assert s["User"] == ["vouch"] and s["SupplementaryGroups"] == ["gpio dialout"]
    assert s["ProtectSystem"] == ["strict"] and s["ReadWritePaths"] == ["/var/lib/vouch"] and s["StateDirectory"] == ["vouch"]
    assert s["NoNewPrivileges"] == ["yes"] and s["CapabilityBoundingSet"] == [""]
    # adjtimex(2), read-only, gives the clock's quality: ProtectClock= would filter it.
    assert "ProtectClock" not in s
    assert {"char-gpiochip rw", "char-ttyUSB rw"} <= set(s["DeviceAllow"]) and s["DevicePolicy"] == ["closed"]
