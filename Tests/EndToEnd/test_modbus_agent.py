"""`vouch run` on an RS-485 line: three meters on one serial port (a socat pty pair), one of them dead,
a real pymodbus peer, a real bank. Checks what reaches the bank, and that the technician's CLI asks the
running agent instead of putting a second master on its bus.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "sim"))
from vouch_site import Site, wait_for_port, wait_until  # noqa: E402

from test_modbus_cli import f32, pty_pair, start_peer, stop  # noqa: E402

# Units 1 and 3 answer; unit 2 is configured but dead (the peer stays silent for unknown units).
LAYOUT = {"units": {
    "1": {"input": {"0": f32(230.5) + f32(12.25)}},
    "3": {"input": {"0": f32(231.5) + f32(3.5)}},
}}

POLL_S = 0.5


def rtu_config(site, port):
    """The site's generated config with its Modbus TCP meter replaced by an RTU bus of three meters."""
    text = site.config.read_text()
    head = text[: text.index("[[modbus.device]]")]
    devices = ""
    for name, unit in (("m1", 1), ("m2", 2), ("m3", 3)):
        devices += f"""
[[modbus.device]]
name = "{name}"
url = "rtu://{port}"
baud_rate = 19200
parity = "even"
unit_id = {unit}
timeout = "200ms"
poll_interval = "{int(POLL_S * 1000)}ms"

[[modbus.device.channel]]
name = "voltage"
register = "input"
address = 0
type = "float32"
decimals = 1
unit = "V"

[[modbus.device.channel]]
name = "current"
register = "input"
address = 2
type = "float32"
decimals = 2
unit = "A"
"""
    site.config.write_text(head + devices)


@pytest.fixture
def rtu_site(tmp_path):
    site = Site(tmp_path / "site", summary_interval="3s", batch_interval="2s")
    socat, a, b = pty_pair(tmp_path)
    peer = start_peer(tmp_path, LAYOUT, "--rtu", str(a))
    try:
        site.prepare()
        rtu_config(site, b)
        check = site.vouch("config", "check", str(site.config), check=False)
        assert check.returncode == 0, check.stderr
        site._spawn("bank", [str(site.bin_dir / "vouch-bank"), "serve", "--db", str(site.bank_db), "--key",
                             str(site.bank_key), "--listen", f"127.0.0.1:{site.bank_port}"])
        assert wait_for_port(site.bank_port), "vouch-bank did not start"
        site.start_agent()
        site.port = b
        yield site
    finally:
        site.stop()
        stop(peer)
        stop(socat)


def test_an_rs485_line_with_a_dead_meter(rtu_site):
    site = rtu_site
    socket_path = site.workdir / "agent" / "vouch.sock"
    assert wait_until(lambda: socket_path.exists() and len(site.batches()) >= 2, timeout=40), site.logs["agent"].read_text()[-3000:]
    started = time.monotonic()

    # The technician reads a register of meter 3 while the agent polls the line: the read goes through
    # the agent (no second master on the bus) and gets the right value.
    read = site.vouch("modbus", "read", "--url", f"rtu://{site.port}", "--baud", "19200", "--parity", "even", "--unit", "3",
                      "--register", "input", "--address", "0", "--type", "float32", "--agent-socket", str(socket_path), "--json", check=False)
    assert read.returncode == 0, read.stderr
    assert "reading through it" in read.stderr
    doc = json.loads(read.stdout)
    assert doc["words"] == f32(231.5), doc
    # Polling the whole config now would be a second master: refused, with what to do instead.
    whole = site.vouch("modbus", "read", "--config", str(site.config), check=False)
    assert whole.returncode == 69, whole
    assert "second master" in whole.stderr and "--direct" in whole.stderr

    time.sleep(6)
    ran = time.monotonic() - started
    assert site.processes["agent"].poll() is None, "the agent must keep polling"
    site.stop_process("agent")
    records = [json.loads(line) for b in site.batches() for line in b["records"]]

    def summaries(channel):
        return [r for r in records if r[0] == "sum" and r[6] == channel]

    # Meters 1 and 3 were read at their poll rate despite the dead meter between them on the line.
    for channel, last in (("m1.voltage", 2305), ("m3.current", 350)):
        s = summaries(channel)
        ok = sum(r[10] for r in s)  # count: good readings; r[11]: failed polls
        assert ok >= (ran / POLL_S) * 0.8, f"{channel}: {ok} good readings in the last {ran:.1f} s and before"
        assert all(r[11] == 0 for r in s), f"{channel} had errors: {s}"
        assert s[-1][15] == last, s[-1]
    # Meter 2: every poll time has a reading, each a timeout; it is a signed gap once it lasts.
    dead = summaries("m2.voltage")
    assert dead and all(r[10] == 0 for r in dead), dead
    polled = sum(r[10] for r in summaries("m1.voltage"))
    assert sum(r[11] for r in dead) >= polled * 0.8, "meter 2 gets a (failed) reading at each of its poll times"
    assert {r[16] for r in dead} == {"E_MODBUS_ETIMEDOUT"}
    gaps = [r for r in records if r[0] == "gap" and r[6] == "sensor_unreachable" and r[7] == "m2.voltage"]
    assert gaps, "an outage that lasts is recorded as a gap"
    log = site.logs["agent"].read_text()
    assert f"polling m1 at rtu://{site.port} 19200 8E1 unit 1" in log
    assert "1 request(s)" in log, "the planner joins voltage and current into one read"
