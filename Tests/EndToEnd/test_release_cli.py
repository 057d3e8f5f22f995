"""`vouch release open | list | close` against a running `vouch run`: a load cell on a real pymodbus
peer, a real bank. Stock leaving inside an open window reaches the bank as a release (severity
record); the same after `vouch release close` as an alarm; both window records are in the signed chain
with who asked, as the kernel reports the Unix user.
"""
import json
import os
import pwd
import signal
import sys
import time
from pathlib import Path

import pytest
from pymodbus.client import ModbusTcpClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "sim"))
from vouch_site import Site, free_port, wait_for_port, wait_until  # noqa: E402

from test_modbus_cli import start_peer, stop  # noqa: E402

SCALE = """
[[modbus.device]]
name = "scale"
url = "tcp://127.0.0.1:{port}"
unit_id = 1
timeout = "500ms"
poll_interval = "500ms"

[[modbus.device.channel]]
name = "weight"
register = "holding"
address = 0
type = "u32"
unit = "kg"

[[detect]]
id = "stock-left"
kind = "weight_drop"
channel = "scale.weight"
tolerance = 100
noise = 5
settle = "3s"
window_before = 4
window_after = 2
"""


def weigh(port, kg):
    client = ModbusTcpClient("127.0.0.1", port=port)
    assert client.connect(), "the scale peer does not answer"
    try:
        reply = client.write_registers(0, [kg >> 16, kg & 0xFFFF], device_id=1)
        assert not reply.isError(), reply
    finally:
        client.close()


@pytest.fixture
def scale_site(tmp_path):
    site = Site(tmp_path / "site", summary_interval="5s", batch_interval="1s")
    port = free_port()
    peer = start_peer(tmp_path, {"units": {"1": {"holding": {"0": [0, 10_000]}}}}, "--tcp", f"127.0.0.1:{port}")
    try:
        site.prepare()
        text = site.config.read_text()
        site.config.write_text(text[: text.index("[[modbus.device]]")] + SCALE.format(port=port))
        check = site.vouch("config", "check", str(site.config), check=False)
        assert check.returncode == 0, check.stderr
        site.scale_port = port
        yield site
    finally:
        site.stop()
        stop(peer)


def release(site, *args):
    return site.vouch("release", *args, "--config", str(site.config), check=False)


def actions(site):
    """The `act` records the bank holds, as dicts."""
    out = []
    for b in site.batches():
        for line in b["records"]:
            r = json.loads(line)
            if r[0] == "act":
                out.append({"rseq": r[1], "action": r[6], "who": r[7], "params": r[8], "explanation": r[9]})
    return out


def starts(site):
    """The bank's events (one per event id, started or ended)."""
    return site.events()


def test_release_windows_on_a_running_agent(scale_site):
    site = scale_site
    # No agent yet: the CLI says so and how to fix it.
    none = release(site, "list")
    assert none.returncode == 69, none
    assert "no agent is running" in none.stderr and "vouch run" in none.stderr

    site._spawn("bank", [str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key", str(site.bank_key),
                         "--listen", f"127.0.0.1:{site.bank_port}"])
    assert wait_for_port(site.bank_port), "vouch-bank did not start"
    site.start_agent()
    assert wait_until(lambda: release(site, "list").returncode == 0, timeout=30), (site.workdir / "agent.log").read_text()
    assert "no release window is open" in release(site, "list").stdout

    # Wrong requests are refused by the agent with what was wrong; nothing opens.
    short = release(site, "open", "--for", "30s", "--reason", "x")
    assert short.returncode == 65 and "at least 1 min" in short.stderr, short
    unknown = release(site, "open", "--for", "1h", "--reason", "x", "--channel", "scale.wieght")
    assert unknown.returncode == 65 and "\"scale.wieght\" is not a configured channel" in unknown.stderr, unknown
    typo = release(site, "open", "--for", "2x", "--reason", "x")
    assert typo.returncode == 64, typo

    # Let the scale settle at 10 t, then open a window and take 2 t away.
    time.sleep(5)
    opened = release(site, "open", "--for", "10m", "--reason", "sale to Koné Ltd, invoice 2291", "--channel", "scale.weight",
                     "--by", "A. Diallo", "--json")
    assert opened.returncode == 0, opened
    window = json.loads(opened.stdout)["releases"][0]
    assert window["channels"] == ["scale.weight"] and 595 <= window["remaining_s"] <= 600
    listed = json.loads(release(site, "list", "--json").stdout)["releases"]
    assert [w["id"] for w in listed] == [window["id"]]

    weigh(site.scale_port, 8_000)
    released = wait_until(lambda: [e for e in starts(site) if e["rule"] == "stock-left"], timeout=30)
    assert [e["severity"] for e in released] == ["record"], released

    closed = release(site, "close", "--note", "truck gone")
    assert closed.returncode == 0 and f"closed release window {window['id']}" in closed.stdout, closed
    assert json.loads(release(site, "list", "--json").stdout)["releases"] == []
    again = release(site, "close")
    assert again.returncode == 65 and "no release window is open" in again.stderr

    # The reference follows the release: 8 t is the settled weight now. Taking 1.5 t more is an alarm.
    time.sleep(5)
    weigh(site.scale_port, 6_500)
    alarms = wait_until(lambda: [e for e in starts(site) if e["rule"] == "stock-left" and e["severity"] == "alarm"], timeout=30)
    assert len(alarms) == 1, starts(site)

    # Both window records are in the signed chain, the open one first, with who asked.
    acts = wait_until(lambda: [a for a in actions(site) if a["action"].startswith("release_")], timeout=20)
    assert [a["action"] for a in acts] == ["release_open", "release_close"], acts
    me = pwd.getpwuid(os.getuid()).pw_name
    assert acts[0]["rseq"] == window["id"]
    assert acts[0]["who"] == f"A. Diallo, as {me} (uid {os.getuid()})"
    assert acts[0]["params"]["reason"] == "sale to Koné Ltd, invoice 2291" and acts[0]["params"]["for_ms"] == 600_000
    assert acts[1]["params"]["release"] == window["id"] and acts[1]["params"]["note"] == "truck gone"
    assert site.stop_process("agent") == 0


def test_stock_taken_while_the_agent_was_killed_is_an_alarm_at_its_restart(scale_site):
    site = scale_site
    site._spawn("bank", [str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key", str(site.bank_key),
                         "--listen", f"127.0.0.1:{site.bank_port}"])
    assert wait_for_port(site.bank_port), "vouch-bank did not start"
    site.start_agent()
    # Settled at 10 t (3 s) and kept with the first summaries (every 5 s).
    assert wait_until(lambda: len(site.batches()) >= 3, timeout=30)
    time.sleep(6)
    agent = site.processes["agent"]
    os.killpg(agent.pid, signal.SIGKILL)
    agent.wait()
    weigh(site.scale_port, 8_000)  # 2 t leave while nothing watches
    site.start_agent(append=True)
    found = wait_until(lambda: [e for e in starts(site) if e["rule"] == "stock-left"], timeout=30)
    assert len(found) == 1 and found[0]["severity"] == "alarm", found
    assert "after the agent restarted, 2000 kg (20.0 %) below the 10000 kg settled before it stopped" in found[0]["explanation"], found
    assert [e["rule"] for e in starts(site) if e["channel"] == "gateway"] == ["agent-crash"]
    assert "resume from the settled values kept before the restart" in site.logs["agent"].read_text()
