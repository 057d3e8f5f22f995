"""Logs for journald: when stderr is the journal (systemd names it in $JOURNAL_STREAM as device:inode),
every line of `vouch run` starts with its syslog priority (<6> info, <4> warning…) and carries no
timestamp (the journal adds its own), so `journalctl -p warning` filters by level; with stderr
anywhere else the usual format stays."""
import os
import re
import subprocess
import time

from vouch_site import Site, wait_until


def run_agent(site, journal):
    """Runs `vouch run` for a few seconds with stderr on a file, JOURNAL_STREAM naming it or not."""
    log = site.workdir / ("journal.log" if journal else "plain.log")
    with open(log, "wb") as err:
        env = dict(os.environ)
        env.pop("JOURNAL_STREAM", None)
        if journal:
            st = os.fstat(err.fileno())
            env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
        p = subprocess.Popen([str(site.bin_dir / "vouch"), "run", "--config", str(site.config)], stdout=subprocess.DEVNULL, stderr=err, env=env)
        assert wait_until(lambda: "bank accepted batch" in log.read_text(), timeout=30), log.read_text()[-2000:]
        p.terminate()
        assert p.wait(timeout=30) == 0
    return log.read_text().splitlines()


def test_journal_lines_carry_priorities_and_no_timestamps(tmp_path):
    site = Site(tmp_path / "site", stop_after=1e9, stop_for=0, summary_interval="2s", batch_interval="1s")
    with site:
        site.start()
        site.stop_process("agent")
        lines = run_agent(site, journal=True)
        assert lines and all(re.match(r"^<[2-7]>vouch: ", l) for l in lines), [l for l in lines if not re.match(r"^<[2-7]>", l)][:5]
        assert any(l.startswith("<6>vouch: agent demo-press-1 starting") for l in lines), lines[:5]
        assert not any(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", l.split(": ", 1)[0]) for l in lines)
        # Elsewhere (a file, a terminal) the usual swift-log format.
        plain = run_agent(site, journal=False)
        assert plain and not any(l.startswith("<") for l in plain)
        assert any(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\S* info vouch: ", l) for l in plain), plain[:3]
