#!/usr/bin/env python3
"""The gateway agent's footprint on a standard site: peak and steady RSS, CPU per hour, binary size.

Runs the release `vouch run` (the binary the .deb ships, from scripts/build-release) against a
simulated standard site for --seconds: an Eastron SDM630 (30 channels, its template) and a PLC (2
counters) on one Modbus TCP peer (pymodbus), all 32 channels polled at 1 Hz, five rules, summaries
every minute and batches sealed, signed and delivered to a local vouch-bank. GPIO lines are not part
of it on this machine (they need the gpio-sim kernel module, which only the qemu VM has).

It samples /proc/PID/status (VmRSS, VmHWM) and /proc/PID/stat (utime + stime) once a second, and
prints:
  peak RSS          VmHWM at the end (the most the process ever held)
  steady RSS        median VmRSS over the second half of the run
  RSS by kind       anonymous (heap, stacks), private dirty, and file-backed clean pages of the binary,
                    from /proc/PID/smaps_rollup at the end
  CPU per hour      CPU seconds from the end of the first minute (warm-up) to the end, scaled to an hour
  binary            the stripped size of .build/release/vouch
with, as the baseline from the same run, the peak RSS of `vouch --version` (runtime and binary
mapped, nothing done) and the ratio of the agent's steady RSS to it. Goals (issue 9): RSS <= 12 MB,
binary <= 25 MB. Figures, not pass/fail: it exits 1 only when the run itself fails (the agent exits,
or nothing reaches the bank).
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "sim"))
from vouch_site import free_port, wait_for_port  # noqa: E402  (the simulated site's helpers)

RELEASE = ROOT / ".build" / "release" / "vouch"
BIN_DIR = Path(os.environ.get("VOUCH_BIN_DIR", ROOT / ".build" / "debug"))
PYTHON = sys.executable
TICK = os.sysconf("SC_CLK_TCK")

CONFIG = """\
[device]
id = "footprint-1"
data_dir = "{work}/agent"

[bank]
url = "http://127.0.0.1:{bank_port}"
timeout = "5s"

[shift]
timezone = "UTC"
days = ["mon", "tue", "wed", "thu", "fri"]
start = "06:00"
end = "22:00"

[evidence]
summary_interval = "60s"
batch_interval = "60s"

[modbus]
templates = "{root}/boards/modbus"

[[modbus.device]]
name = "meter"
url = "tcp://127.0.0.1:{peer_port}"
unit_id = 1
poll_interval = "1s"
template = "eastron-sdm630"

[[modbus.device]]
name = "plc"
url = "tcp://127.0.0.1:{peer_port}"
unit_id = 2
poll_interval = "1s"

[[modbus.device.channel]]
name = "cycles"
register = "holding"
address = 0
type = "uint32"

[[modbus.device.channel]]
name = "parts"
register = "holding"
address = 2
type = "uint32"

[[stoppage]]
id = "line-stopped"
channel = "meter.total_power"
below = 500
for = "5m"

[[detect]]
id = "line-run"
kind = "run_state"
channel = "meter.total_power"
running_at_or_above = 2000
stopped_below = 500

[[detect]]
id = "voltage-stuck"
kind = "flatline"
channel = "meter.l1_voltage"
duration = "2h"

[[detect]]
id = "meter-silent"
kind = "comm_loss"
channel = "meter.frequency"
duration = "5m"

[[detect]]
id = "overcurrent"
kind = "threshold"
channel = "meter.l1_current"
above = 80
"""


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def smaps_rollup_kb(pid):
    """Rss split by kind: Anonymous (heap, stacks: what the agent allocates), Private_Dirty, and the
    rest, file-backed clean pages of the binary and libraries (the kernel can drop and re-read them)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15 of stat)


def baseline_peak_kb(binary):
    """Peak RSS of `vouch --version`: the process floor (runtime, binary, nothing done)."""
    proc = subprocess.Popen([str(binary), "--version"], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = status
    if status != 0:
        raise RuntimeError(f"{binary} --version failed ({status})")
    return usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=600, help="how long the agent runs (default 600: 10 minutes)")
    args = ap.parse_args()
    if not RELEASE.exists():
        sys.exit(f"footprint: {RELEASE} is missing: run scripts/build-release vouch")

    work = Path(tempfile.mkdtemp(prefix="vouch-footprint."))
    processes = []
    try:
        stripped = work / "vouch.stripped"
        subprocess.run(["strip", "--strip-unneeded", "-o", stripped, RELEASE], check=True)
        binary_bytes = stripped.stat().st_size

        layout = json.loads(subprocess.run([PYTHON, ROOT / "scripts/sim/sdm630_layout.py", "--unit", "1"],
                                           capture_output=True, text=True, check=True).stdout)
        layout["units"]["2"] = {"holding": {"0": [0, 41_000, 0, 39_500]}}
        (work / "layout.json").write_text(json.dumps(layout))
        peer_port, bank_port = free_port(), free_port()
        (work / "vouch.toml").write_text(CONFIG.format(work=work, root=ROOT, peer_port=peer_port, bank_port=bank_port))

        def spawn(name, argv):
            log = open(work / f"{name}.log", "w")
            proc = subprocess.Popen([str(a) for a in argv], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            processes.append(proc)
            return proc

        bank = [BIN_DIR / "vouch-bank"]
        subprocess.run(bank + ["key", "--key", work / "bank.key"], capture_output=True, check=True)
        enrollment = subprocess.run([RELEASE, "enroll", "--config", work / "vouch.toml"], capture_output=True, text=True, check=True).stdout
        (work / "enrollment.json").write_text(enrollment)
        subprocess.run(bank + ["devices", "add", work / "enrollment.json", "--db", work / "bank.sqlite"], capture_output=True, check=True)
        spawn("bank", bank + ["serve", "--db", work / "bank.sqlite", "--key", work / "bank.key", "--listen", f"127.0.0.1:{bank_port}"])
        spawn("peer", [PYTHON, ROOT / "scripts/sim/modbus_peer.py", work / "layout.json", "--tcp", f"127.0.0.1:{peer_port}"])
        if not (wait_for_port(bank_port) and wait_for_port(peer_port)):
            sys.exit("footprint: the bank or the Modbus peer did not start")

        baseline_kb = baseline_peak_kb(RELEASE)
        agent = spawn("agent", [RELEASE, "run", "--config", work / "vouch.toml"])
        started = time.monotonic()
        samples = []  # (seconds since start, rss kB, cpu s)
        peak_anon_kb = 0
        cpu_at_minute = None
        while (elapsed := time.monotonic() - started) < args.seconds:
            if agent.poll() is not None:
                sys.exit(f"footprint: the agent exited ({agent.returncode}); see {work}/agent.log:\n" + (work / "agent.log").read_text()[-2000:])
            rss, cpu = status_kb(agent.pid, "VmRSS"), cpu_seconds(agent.pid)
            peak_anon_kb = max(peak_anon_kb, status_kb(agent.pid, "RssAnon"))
            samples.append((elapsed, rss, cpu))
            if cpu_at_minute is None and elapsed >= min(60, args.seconds / 2):
                cpu_at_minute = (elapsed, cpu)
            time.sleep(1)
        peak_kb = status_kb(agent.pid, "VmHWM")
        rollup = smaps_rollup_kb(agent.pid)
        end_elapsed, end_cpu = time.monotonic() - started, cpu_seconds(agent.pid)
        agent.terminate()
        agent.wait(timeout=30)

        steady = [rss for t, rss, _ in samples if t >= args.seconds / 2]
        steady_kb = statistics.median(steady)
        since, cpu0 = cpu_at_minute
        cpu_per_hour = (end_cpu - cpu0) / (end_elapsed - since) * 3600
        mb = lambda kb: kb / 1024
        print(f"footprint: standard site (32 Modbus channels at 1 Hz, 5 rules, summaries and batches every 60 s), {args.seconds} s, release build")
        print(f"footprint: peak RSS {mb(peak_kb):.1f} MiB, steady RSS {mb(steady_kb):.1f} MiB (median of the second half), "
              f"goal <= 12 MB: {'met' if steady_kb * 1024 <= 12e6 and peak_kb * 1024 <= 12e6 else 'NOT met'}")
        print(f"footprint: of the RSS at the end ({mb(rollup['Rss']):.1f} MiB): anonymous {mb(rollup['Anonymous']):.1f} MiB "
              f"(heap and stacks; peak {mb(peak_anon_kb):.1f} MiB), private dirty {mb(rollup['Private_Dirty']):.1f} MiB, "
              f"file-backed clean {mb(rollup['Private_Clean'] + rollup['Shared_Clean']):.1f} MiB (the binary's code and data, reclaimable)")
        print(f"footprint: baseline (vouch --version) peak RSS {mb(baseline_kb):.1f} MiB; agent steady / baseline = {steady_kb / baseline_kb:.2f}")
        print(f"footprint: CPU {end_cpu:.1f} s in {end_elapsed:.0f} s; after warm-up ({since:.0f} s) {cpu_per_hour:.0f} s per hour "
              f"({cpu_per_hour / 36:.2f} % of one core)")
        print(f"footprint: binary {binary_bytes / 1e6:.1f} MB stripped (.build/release/vouch unstripped {RELEASE.stat().st_size / 1e6:.1f} MB), "
              f"goal <= 25 MB: {'met' if binary_bytes <= 25e6 else 'NOT met'}")
        exported = work / "footprint-1.batches"
        exported.write_text(subprocess.run(bank + ["export", "--db", work / "bank.sqlite", "--device", "footprint-1"],
                                           capture_output=True, text=True, check=True).stdout)
        verdict = subprocess.run(bank + ["verify", "--enrollment", work / "enrollment.json", exported], capture_output=True, text=True)
        last = verdict.stdout.strip().splitlines()[-1] if verdict.stdout.strip() else "nothing reached the bank"
        counted = re.search(r": (\d+) batch\(es\) ok, 0 failed$", last)
        if verdict.returncode != 0 or not counted or int(counted.group(1)) == 0:
            print(f"footprint: FAIL: the bank's copy does not verify: {last}")
            return 1
        print(f"footprint: at the bank, verified: {last}")
        return 0
    finally:
        for proc in processes:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait()
        if os.environ.get("VOUCH_KEEP_FOOTPRINT") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
