"""The demo's promises: it stops by itself, or on Ctrl-C, and leaves nothing running."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "scripts" / "sim" / "vouch_site.py"


def leftovers(workdir):
    out = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout.split()
    return [pid for pid in out if int(pid) != os.getpid()]


def start(workdir, duration):
    return subprocess.Popen(
        [sys.executable, str(RUNNER), "--workdir", str(workdir), "--duration", str(duration), "--stop-after", "2", "--stop-for", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_runner_stops_by_itself_and_leaves_nothing_running(tmp_path):
    workdir = tmp_path / "run"
    proc = start(workdir, duration=8)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "What the bank holds now" in out and "batches accepted" in out
    assert "first reading from meter.power" in out, "the narration must show readings arriving"
    assert leftovers(workdir) == [], out


def test_ctrl_c_stops_everything(tmp_path):
    workdir = tmp_path / "run"
    proc = start(workdir, duration=120)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (workdir / "agent.log").exists():
        time.sleep(0.2)
    time.sleep(3)
    assert len(leftovers(workdir)) >= 3, "meter, bank and agent should be running"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal sends on Ctrl-C
    out, _ = proc.communicate(timeout=30)
    assert "interrupted: stopping everything" in out
    assert leftovers(workdir) == [], out
