"""SIGHUP applies a changed config to a running agent, and never a broken one: a file with an error is
refused whole (logged with its line; the agent goes on, same process, same batches), an unchanged file
changes nothing, and a checked, changed file restarts the agent in place — same pid, so systemd keeps
watching it — which records the change in the chain (a `cfg` record naming the old and new hashes)."""
import json
import os
import signal
import subprocess

from vouch_site import Site, wait_until


def cfg_records(site):
    return [json.loads(r) for b in site.batches() for r in b["records"] if r.startswith('["cfg"')]


def agent_log(site):
    return site.logs["agent"].read_text()


def test_sighup_refuses_a_broken_config_and_applies_a_changed_one_in_place(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s", poll_interval="200ms")
    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 2, timeout=30)
        agent = site.processes["agent"]
        assert len(cfg_records(site)) == 1  # the first configuration
        original = site.config.read_text()

        # Unchanged: nothing happens.
        os.kill(agent.pid, signal.SIGHUP)
        assert wait_until(lambda: "is unchanged" in agent_log(site), timeout=10), agent_log(site)[-2000:]

        # A broken file: refused with its line, the agent carries on.
        site.config.write_text(original.replace('summary_interval = "2s"', 'summary_interval = "2 parsecs"'))
        before = len(site.batches())
        os.kill(agent.pid, signal.SIGHUP)
        assert wait_until(lambda: "was not applied" in agent_log(site), timeout=10), agent_log(site)[-2000:]
        line = next(l for l in agent_log(site).splitlines() if "was not applied" in l)
        assert "keeps running on the configuration it started with" in line and "vouch.toml:" in line and "summary_interval" in line, line
        assert agent.poll() is None
        assert wait_until(lambda: len(site.batches()) >= before + 2, timeout=30), "batches stopped after a refused reload"

        # A good change: restart in place, same pid, the change in the chain.
        site.config.write_text(original.replace('summary_interval = "2s"', 'summary_interval = "3s"'))
        os.kill(agent.pid, signal.SIGHUP)
        assert wait_until(lambda: "restarting in place" in agent_log(site), timeout=15), agent_log(site)[-2000:]
        assert wait_until(lambda: agent_log(site).count("agent demo-press-1 starting") == 2, timeout=30), agent_log(site)[-3000:]
        assert agent.poll() is None, "the agent exited instead of restarting in place"
        assert wait_until(lambda: subprocess.run([str(site.bin_dir / "vouch"), "status", "--config", str(site.config)],
                                                 capture_output=True).returncode == 0, timeout=20)
        assert wait_until(lambda: len(cfg_records(site)) == 2, timeout=30), cfg_records(site)
        first, changed = cfg_records(site)
        # [kind, rseq, boot, mono, wall, tq, sha256, previous, source, who, summary]
        assert changed[7] == first[6] and changed[6] != first[6], (first, changed)
        assert changed[10].startswith("configuration changed"), changed
        assert site.stop_process("agent") == 0


def test_config_apply_checks_signals_and_waits_for_the_new_file(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s", poll_interval="200ms")

    def apply():
        return subprocess.run([str(site.bin_dir / "vouch"), "config", "apply", "--config", str(site.config), "--timeout", "60"],
                              capture_output=True, text=True, timeout=90)

    with site:
        site.start()
        assert wait_until(lambda: len(site.batches()) >= 1, timeout=30)
        agent = site.processes["agent"]
        original = site.config.read_text()
        run = apply()
        assert run.returncode == 0 and f"(pid {agent.pid}) already runs" in run.stdout, run.stdout + run.stderr

        site.config.write_text(original.replace('summary_interval = "2s"', 'summary_interval = "2 parsecs"'))
        run = apply()
        assert run.returncode == 78 and "summary_interval" in run.stderr and "nothing applied" in run.stderr, run.stderr
        assert "was not applied" not in agent_log(site), "the agent was signalled for a file that does not check"

        site.config.write_text(original.replace('summary_interval = "2s"', 'summary_interval = "4s"'))
        run = apply()
        assert run.returncode == 0 and "applied: the agent (pid" in run.stdout, run.stdout + run.stderr
        assert f"(pid {agent.pid})" in run.stdout.splitlines()[-1] and agent.poll() is None
        assert site.stop_process("agent") == 0
        run = apply()
        assert run.returncode == 69 and "no agent is running" in run.stderr
