"""The file system holding the outbox fills up, end to end: the agent keeps running, keeps what it
accepts in memory, and once space returns stores it and tells the bank, in a signed event, that the
outbox could not be written and for how long. Nothing accepted is lost: the bank's chain verifies and
has no missing record.

The agent's data directory is a 4 MB tmpfs mounted for the test (root only, as CI runs)."""
import errno
import json
import os
import subprocess
import time

import pytest

from vouch_site import Site, wait_until


def mount_tmpfs(path, size):
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


def fill(directory):
    """Writes a file in `directory` until the file system answers ENOSPC; returns its path."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        chunk = b"\xaa" * 4096
        while True:
            try:
                f.write(chunk)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
    return filler


def records_at_bank(site):
    return [json.loads(line) for b in site.batches() for line in b["records"]]


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")
def test_disk_full_agent_keeps_running_and_the_bank_hears_of_it(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="1s", batch_interval="1s", poll_interval="200ms")
    data_dir = site.workdir / "agent"
    mount_tmpfs(data_dir, "4m")
    try:
        with site:
            site.start()
            assert wait_until(lambda: len(site.batches()) >= 2, timeout=30), "expected batches at the bank"

            filler = fill(data_dir)
            full_from = time.monotonic()
            log = lambda: site.logs["agent"].read_text()
            assert wait_until(lambda: "the outbox cannot be written" in log(), timeout=20), log()[-3000:]
            time.sleep(4)  # summaries, heartbeats and seals keep failing meanwhile
            agent = site.processes["agent"]
            assert agent.poll() is None, "the agent must keep running on a full disk:\n" + log()[-3000:]

            filler.unlink()
            assert wait_until(lambda: "the outbox is writable again" in log(), timeout=20), log()[-3000:]
            outage = lambda: [r for r in records_at_bank(site) if r[0] == "evt" and r[8] == "store-unwritable"]
            assert wait_until(lambda: len(outage()) == 2, timeout=30), log()[-3000:]
            assert site.stop_process("agent") == 0
            full_for = time.monotonic() - full_from

        start, end = outage()
        assert (start[7], end[7]) == ("start", "end")
        assert start[19]["error"] == "E_STORE_FULL"
        assert 3_000 <= end[16] <= full_for * 1000 + 5_000, f"the event duration ({end[16]} ms) is the outage duration"
        assert "nothing was lost" in end[22]

        # Nothing accepted was lost: the chain verifies offline, rseq has no hole, no fork.
        batches = site.batches()
        assert [b["bseq"] for b in batches] == list(range(1, len(batches) + 1))
        export = site.workdir / "after.batches"
        export.write_text(site.bank("export", "--device", site.device_id).stdout)
        verified = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(export)],
                                  capture_output=True, text=True)
        assert verified.returncode == 0, verified.stdout
        rseqs = [r[1] for r in records_at_bank(site)]
        assert rseqs == list(range(1, len(rseqs) + 1)), "every accepted record reached the bank"
        incidents = [json.loads(line) for line in site.bank("incidents", "--json").stdout.splitlines() if line.strip()]
        assert not [i for i in incidents if i["kind"] != "silence"], incidents
        # Readings kept flowing through the outage: summaries cover it without a hole in time.
        power = sorted(r[4] for r in records_at_bank(site) if r[0] == "sum" and r[6] == "meter.power")
        assert max(b - a for a, b in zip(power, power[1:])) < 3_000, "a summary every second, outage included"
    finally:
        subprocess.run(["umount", "-l", str(data_dir)], capture_output=True)
