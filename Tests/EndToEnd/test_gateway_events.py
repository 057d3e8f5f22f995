"""The gateway's own events, end to end: an agent killed without a clean shutdown reports it at its
restart as an `agent-crash` warning the bank lists beside the rules' events; a clean stop does not."""
import json
import os
import signal
import time

from vouch_site import Site, wait_until


def test_a_killed_agent_reports_its_crash_at_restart_and_a_clean_stop_reports_nothing(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="1s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 2, timeout=30), "expected batches at the bank"
        agent = site.processes["agent"]
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait()
        killed_at = time.time()
        time.sleep(3)
        site.start_agent(append=True)
        crash = wait_until(lambda: [e for e in site.events() if e["rule"] == "agent-crash"], timeout=30)
        assert len(crash) == 1, site.events()
        e = crash[0]
        assert e["status"] == "ended" and e["channel"] == "gateway" and e["severity"] == "warning", e
        # Down from the last stored record (at most a second before the kill) to the restart (3 s + start-up).
        assert 3_000 <= e["duration_ms"] <= 3_000 + 1_500 + (time.time() - killed_at) * 1000, e
        assert "crash or kill" in e["explanation"] and "while the gateway kept running" in e["explanation"], e

        # A clean stop and start: no new event.
        assert site.stop_process("agent") == 0
        site.start_agent(append=True)
        before = len(site.batches())
        assert wait_until(lambda: len(site.batches()) >= before + 2, timeout=30)
        assert [e["rule"] for e in site.events() if e["channel"] == "gateway"] == ["agent-crash"], site.events()

        # The bank lists both stretches the agent was down as gaps the gateway reported (the kill, and
        # the clean stop), each bounded by wall times, over the CLI and the API alike.
        gaps = [json.loads(line) for line in site.bank("gaps", "--json").stdout.splitlines()]
        down = [g for g in gaps if g["kind"] == "agent_down"]
        assert len(down) == 2, gaps
        assert all(g["channel"] is None and g["from_wall_ms"] < g["to_wall_ms"] and g["rseq"] is not None for g in down), down
        assert 3_000 <= down[0]["to_wall_ms"] - down[0]["from_wall_ms"] <= 3_000 + 1_500 + (time.time() - killed_at) * 1000, down[0]
        assert "no gaps" not in site.bank("gaps").stdout
