"""A corrupt outbox at start, end to end: moved aside, a fresh one carries the chain on, and the bank
accepts the continuation and learns what was lost from a signed gap record."""
import json
import os
import signal
import subprocess

from vouch_site import Site, wait_until




def test_corrupt_outbox_is_moved_aside_and_the_bank_chain_goes_on(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="1s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 3, timeout=30), "expected batches at the bank"
        agent = site.processes["agent"]
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        delivered = len(site.batches())

        # A failing SD card: the database header is overwritten.
        with open(site.outbox, "r+b") as f:
            f.write(b"\x5a" * 4096)
        for suffix in ("-wal", "-shm"):
            try:
                os.unlink(str(site.outbox) + suffix)
            except FileNotFoundError:
                pass

        site.start_agent(append=True)
        assert wait_until(lambda: len(site.batches()) >= delivered + 2, timeout=30), site.logs["agent"].read_text()[-3000:]
        assert site.stop_process("agent") == 0
        log = site.logs["agent"].read_text()
        assert "the outbox was unusable" in log and "moved aside" in log, log[-2000:]

    moved = [p for p in (site.workdir / "agent").iterdir() if ".corrupt-" in p.name]
    assert moved, "the damaged database is kept for inspection"

    batches = site.batches()
    assert [b["bseq"] for b in batches] == list(range(1, len(batches) + 1)), "the bank's chain has no hole and no fork"
    export = site.workdir / "after.batches"
    export.write_text(site.bank("export", "--device", site.device_id).stdout)
    verified = subprocess.run([str(site.bin_dir / "vouch-bank"), "verify", "--enrollment", str(site.enrollment), str(export)],
                              capture_output=True, text=True)
    assert verified.returncode == 0, verified.stdout
    incidents = [json.loads(line) for line in site.bank("incidents", "--json").stdout.splitlines() if line.strip()]
    assert not [i for i in incidents if i["kind"] == "fork"], incidents

    # The first batch after the recovery says what happened, signed.
    records = [json.loads(line) for b in batches[delivered:] for line in b["records"]]
    gaps = [r for r in records if r[0] == "gap" and r[6] == "store_corrupt"]
    assert len(gaps) == 1, records[:5]
    assert "moved aside" in gaps[0][14]
