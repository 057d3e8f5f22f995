"""`vouch modbus read | scan | plan` against real Modbus peers: pymodbus over TCP and over RTU (a socat
pty pair), and the hand-written RTU responder for garbled answers. No mocks: every test runs the built
`vouch` binary (.build/debug, or $VOUCH_BIN_DIR) as a technician would.

Peers: scripts/sim/modbus_peer.py (serves LAYOUT below; any address outside it is exception 2, unit ids
not in it stay silent) and scripts/sim/rtu_responder.py (--mode bad-crc).
"""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "scripts" / "sim"
VOUCH = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug") / "vouch"
SERIAL_EXAMPLE = "/dev/serial/by-id/"


def f32(v):
    return list(struct.unpack(">HH", struct.pack(">f", v)))


def f64(v):
    return list(struct.unpack(">HHHH", struct.pack(">d", v)))


def u64(v):
    return list(struct.unpack(">HHHH", struct.pack(">Q", v)))


U32_ENERGY = 123456789
COUNTER_64 = 2**63 + 5  # beyond a double's exact range: must come back to the last digit
LAYOUT = {"units": {
    "1": {
        "holding": {
            "0": [1],                                   # uint16
            "10": [U32_ENERGY & 0xFFFF, U32_ENERGY >> 16],  # uint32 CDAB (low word first)
            "20": [0x10000 - 5],                        # int16 -5
            "22": list(struct.unpack(">HH", struct.pack(">i", -100000))),  # int32 ABCD
            "30": f32(230.1),                           # float32 ABCD
            "40": f64(-1234.5678),                      # float64 ABCD
            "50": [0x4142, 0x3132],                     # string "AB12"
            "60": u64(COUNTER_64),                      # uint64 ABCD
            "64": list(struct.unpack(">HHHH", struct.pack("<q", -42))),  # int64 DCBA (little-endian)
            "70": [0b101],                              # bits 0 and 2 set
            "80": [0x7FC0, 0x0000],                     # a float32 NaN in ABCD
        },
        "input": {"0": f32(230.1), "6": list(reversed(f32(5.25)))},  # float32 ABCD; float32 CDAB
        "coils": {"0": [1, 0, 1]},
        "discrete": {"5": [1]},
    },
    "3": {"holding": {"0": [7, 8, 9]}},
}}


def vouch(*args, timeout=60):
    assert VOUCH.exists(), f"{VOUCH} missing: run `swift build` first"
    return subprocess.run([str(VOUCH), *map(str, args)], capture_output=True, text=True, timeout=timeout)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(path, proc, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(path).exists():
            return
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.05)
    pytest.fail(f"{what} not ready after {timeout} s")


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_peer(tmp, layout, *where):
    layout_file = tmp / "layout.json"
    layout_file.write_text(json.dumps(layout))
    ready = tmp / "peer.ready"
    proc = subprocess.Popen([sys.executable, str(SIM / "modbus_peer.py"), str(layout_file), *where, "--ready-file", str(ready)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(ready, proc, "modbus_peer.py")
    return proc


@pytest.fixture(scope="module")
def tcp_url(tmp_path_factory):
    port = free_port()
    proc = start_peer(tmp_path_factory.mktemp("tcp"), LAYOUT, "--tcp", f"127.0.0.1:{port}")
    yield f"tcp://127.0.0.1:{port}"
    stop(proc)


def pty_pair(tmp):
    """socat's two linked ptys: the peer opens A, vouch opens B."""
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed: run scripts/setup (it installs socat)")
    a, b = tmp / "A", tmp / "B"
    proc = subprocess.Popen(["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(a, proc, "socat")
    wait_for(b, proc, "socat")
    return proc, a, b


@pytest.fixture(scope="module")
def rtu_url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("rtu")
    socat, a, b = pty_pair(tmp)
    peer = start_peer(tmp, LAYOUT, "--rtu", str(a))
    yield f"rtu://{b}"
    stop(peer)
    stop(socat)


def read_json(url, *args):
    r = vouch("modbus", "read", "--url", url, *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


# --- read: every type ------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, value", [
    (["--register", "holding", "--address", "0", "--type", "uint16"], 1),
    (["--register", "holding", "--address", "10", "--type", "uint32", "--byte-order", "CDAB"], U32_ENERGY),
    (["--register", "holding", "--address", "20", "--type", "int16"], -5),
    (["--register", "holding", "--address", "22", "--type", "i32"], -100000),
    (["--register", "holding", "--address", "30", "--type", "float32"], 230.1),
    (["--register", "holding", "--address", "40", "--type", "FLOAT64"], -1234.5678),
    (["--register", "holding", "--address", "60", "--type", "uint64"], COUNTER_64),
    (["--register", "holding", "--address", "64", "--type", "int64", "--byte-order", "dcba"], -42),
    (["--register", "holding", "--address", "50", "--type", "string", "--length", "2"], "AB12"),
    (["--register", "holding", "--address", "70", "--type", "bool", "--bit", "2"], True),
    (["--register", "holding", "--address", "70", "--type", "bool", "--bit", "1"], False),
    (["--register", "input", "--address", "6", "--type", "f32", "--byte-order", "CDAB"], 5.25),
    (["--register", "coil", "--address", "0"], True),
    (["--register", "coil", "--address", "1", "--type", "bool"], False),
    (["--register", "discrete", "--address", "5"], True),
])
def test_read_decodes_each_type(tcp_url, args, value):
    doc = read_json(tcp_url, *args)
    assert doc["value"] == value  # exact: 230.1 is float32's shortest text, the 64-bit counter to the last digit
    assert doc["error"] is None
    assert doc["url"] == tcp_url and doc["unit"] == 1


def test_read_shows_raw_words_in_hex_and_decimal(tcp_url):
    r = vouch("modbus", "read", "--url", tcp_url, "--register", "holding", "--address", "10", "--type", "uint32", "--byte-order", "CDAB")
    assert r.returncode == 0, r.stderr
    low, high = U32_ENERGY & 0xFFFF, U32_ENERGY >> 16
    assert f"0x{low:04X}" in r.stdout and str(low) in r.stdout and f"0x{high:04X}" in r.stdout
    assert f"uint32 CDAB: {U32_ENERGY}" in r.stdout
    doc = read_json(tcp_url, "--register", "holding", "--address", "10", "--count", "2")
    assert doc["words"] == [low, high] and doc["hex"] == [f"0x{low:04X}", f"0x{high:04X}"]


def test_read_count_of_raw_registers_and_bits(tcp_url):
    doc = read_json(tcp_url, "--register", "holding", "--address", "50", "--count", "2")
    assert doc["words"] == [0x4142, 0x3132] and doc["hex"] == ["0x4142", "0x3132"]
    doc = read_json(tcp_url, "--register", "coil", "--address", "0", "--count", "3")
    assert doc["words"] == [1, 0, 1]


def test_scaling_gives_the_integer_the_agent_stores(tcp_url):
    doc = read_json(tcp_url, "--register", "holding", "--address", "20", "--type", "int16", "--scale", "0.001", "--decimals", "3")
    assert doc["stored"]["value"] == -5 and doc["stored"]["scale_exponent"] == -3 and doc["stored"]["display"] == "-0.005"
    doc = read_json(tcp_url, "--register", "input", "--address", "0", "--type", "float32", "--decimals", "1", "--offset", "-30")
    assert doc["stored"]["value"] == 2001 and doc["stored"]["display"] == "200.1"


# --- read: guessing the byte order --------------------------------------------------------------------------

def rows(doc):
    return {o["order"]: o for o in doc["orders"]}


def test_all_orders_json_singles_out_the_right_order(tcp_url):
    # A float32 type shows all four orders by itself; only ABCD reads the meter's 230.1 V.
    doc = read_json(tcp_url, "--register", "input", "--address", "0", "--type", "float32")
    orders = rows(doc)
    assert set(orders) == {"ABCD", "CDAB", "BADC", "DCBA"}
    assert [o for o, row in orders.items() if row["float"] == 230.1] == ["ABCD"]
    # Raw --count 2 (no type): the technician does not know the order; only CDAB gives 5.25.
    doc = read_json(tcp_url, "--register", "input", "--address", "6", "--count", "2")
    assert "value" not in doc
    assert [o for o, row in rows(doc).items() if row["float"] == 5.25] == ["CDAB"]
    # --all-orders on an integer: the uint32 column singles out CDAB for the energy counter.
    doc = read_json(tcp_url, "--register", "holding", "--address", "10", "--type", "uint32", "--all-orders")
    assert doc["value"] != U32_ENERGY  # the default order (ABCD) is the wrong one here
    assert [o for o, row in rows(doc).items() if row["uint"] == U32_ENERGY] == ["CDAB"]
    # Four registers: float64 in all orders.
    doc = read_json(tcp_url, "--register", "holding", "--address", "40", "--count", "4")
    assert [o for o, row in rows(doc).items() if row["float"] == -1234.5678] == ["ABCD"]


def test_all_orders_marks_nan(tcp_url):
    doc = read_json(tcp_url, "--register", "holding", "--address", "80", "--count", "2")
    nan = rows(doc)["ABCD"]
    assert nan["finite"] is False and nan["float"] is None and nan["float_text"] == "NaN"
    assert all(row["finite"] for o, row in rows(doc).items() if o != "ABCD")
    r = vouch("modbus", "read", "--url", tcp_url, "--register", "holding", "--address", "80", "--type", "float32")
    assert r.returncode == 0, r.stderr
    abcd = next(line for line in r.stdout.splitlines() if line.strip().startswith("ABCD"))
    assert "NaN" in abcd and "not a float in this order" in abcd
    # What the agent would do with it: refuse to store a number, saying why.
    assert "stored as: nothing" in r.stdout and "byte_order ABCD is wrong" in r.stdout


# --- read: RTU ------------------------------------------------------------------------------------------------

def test_read_over_rtu(rtu_url):
    doc = read_json(rtu_url, "--baud", "19200", "--parity", "even", "--unit", "1", "--register", "input", "--address", "0", "--type", "float32")
    assert doc["value"] == 230.1 and doc["url"] == rtu_url
    doc = read_json(rtu_url, "--register", "holding", "--address", "10", "--type", "u32", "--byte-order", "CDAB")
    assert doc["value"] == U32_ENERGY
    doc = read_json(rtu_url, "--unit", "3", "--register", "holding", "--address", "0", "--count", "3")
    assert doc["words"] == [7, 8, 9]
    r = vouch("modbus", "read", "--url", rtu_url, "--baud", "19200", "--parity", "even", "--register", "holding", "--address", "0")
    assert r.returncode == 0 and "(19200 8E1)" in r.stdout


def test_rtu_silent_unit_times_out(rtu_url):
    start = time.monotonic()
    r = vouch("modbus", "read", "--url", rtu_url, "--unit", "9", "--timeout", "300ms", "--register", "holding", "--address", "0")
    assert r.returncode == 69
    assert "ETIMEDOUT" in r.stderr and "unit 9" in r.stderr and "line settings used" in r.stderr
    assert time.monotonic() - start < 5


def test_rtu_bad_crc_is_named(tmp_path):
    socat, a, b = pty_pair(tmp_path)
    ready = tmp_path / "responder.ready"
    responder = subprocess.Popen([sys.executable, str(SIM / "rtu_responder.py"), "--device", str(a), "--units", "1", "--mode", "bad-crc",
                                  "--ready-file", str(ready)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready, responder, "rtu_responder.py")
        r = vouch("modbus", "read", "--url", f"rtu://{b}", "--timeout", "300ms", "--register", "holding", "--address", "0")
        assert r.returncode == 69
        assert "EMBBADCRC" in r.stderr and "check baud rate and parity" in r.stderr
        # A scan lists a garbled answer apart from silence: something is on the line.
        r = vouch("modbus", "scan", "--url", f"rtu://{b}", "--units", "1-2", "--json")
        assert r.returncode == 69  # nobody answered readably
        doc = json.loads(r.stdout)
        assert [g["unit"] for g in doc["garbled"]] == [1] and doc["garbled"][0]["error"] == "EMBBADCRC"
        assert doc["silent"] == [2] and doc["answered"] == []
    finally:
        stop(responder)
        stop(socat)


# --- read: failures ---------------------------------------------------------------------------------------------

def test_exception_is_a_clear_message_and_exit_69(tcp_url):
    r = vouch("modbus", "read", "--url", tcp_url, "--register", "holding", "--address", "3")
    assert r.returncode == 69 and r.stdout == ""
    assert "read holding registers 3 from unit 1" in r.stderr
    assert "Illegal data address (EMBXILADD)" in r.stderr and "the device has no such register" in r.stderr
    r = vouch("modbus", "read", "--url", tcp_url, "--register", "holding", "--address", "40001")
    assert r.returncode == 69 and "try --address 0" in r.stderr  # manual numbering spotted


def test_timeout_on_a_silent_tcp_listener():
    # A port that accepts connections and never answers (a device whose Modbus task hangs).
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    held = []

    def accept():
        try:
            while True:
                held.append(server.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        start = time.monotonic()
        r = vouch("modbus", "read", "--url", f"tcp://127.0.0.1:{port}", "--timeout", "400ms", "--register", "holding", "--address", "0")
        elapsed = time.monotonic() - start
        assert r.returncode == 69
        assert "Connection timed out (ETIMEDOUT)" in r.stderr and "did not answer within the response timeout" in r.stderr
        assert 0.3 < elapsed < 5
    finally:
        server.close()
        for c in held:
            c.close()


def test_nothing_listening_on_the_port():
    port = free_port()
    r = vouch("modbus", "read", "--url", f"tcp://127.0.0.1:{port}", "--register", "holding", "--address", "0")
    assert r.returncode == 69
    assert "ECONNREFUSED" in r.stderr and f"connect to tcp://127.0.0.1:{port}" in r.stderr


def test_a_missing_serial_port():
    r = vouch("modbus", "read", "--url", "rtu:///dev/serial/by-id/usb-none-if00-port0", "--register", "holding", "--address", "0")
    assert r.returncode == 69 and "ENOENT" in r.stderr and "/dev/serial/by-id" in r.stderr


# --- scan --------------------------------------------------------------------------------------------------------

def test_unit_scan_finds_units_1_and_3(tcp_url):
    r = vouch("modbus", "scan", "--url", tcp_url, "--units", "1-6", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)  # one document on stdout, nothing else
    assert {a["unit"] for a in doc["answered"]} == {1, 3}
    assert all(a["status"] == "ok" for a in doc["answered"])
    assert doc["silent"] == [2, 4, 5, 6] and doc["probed"] == 6 and doc["timeout_ms"] == 200
    # An exception answer also means a device is there, named with the exception.
    doc = json.loads(vouch("modbus", "scan", "--url", tcp_url, "--units", "1,2,3", "--register", "input", "--address", "2", "--json").stdout)
    assert [(a["unit"], a["status"], a["exception"]) for a in doc["answered"]] == [(1, "exception", "EMBXILADD"), (3, "exception", "EMBXILADD")]


def test_unit_scan_text_and_nobody_there(tcp_url):
    r = vouch("modbus", "scan", "--url", tcp_url, "--units", "1-4")
    assert r.returncode == 0
    assert "2 unit(s) answered of 4 probed: 1, 3" in r.stdout
    r = vouch("modbus", "scan", "--url", tcp_url, "--units", "4,5", "--timeout", "100ms")
    assert r.returncode == 69 and "no unit answered" in r.stderr


def test_unit_scan_behind_a_gateway(tmp_path):
    # A TCP gateway answers exception 0x0B for a unit it cannot reach: that is no device, not a device.
    port = free_port()
    peer = start_peer(tmp_path, LAYOUT, "--tcp", f"127.0.0.1:{port}", "--unknown-unit", "gateway")
    try:
        r = vouch("modbus", "scan", "--url", f"tcp://127.0.0.1:{port}", "--units", "1-5")
        assert r.returncode == 0, r.stderr
        assert "2 unit(s) answered of 5 probed: 1, 3; 3 silent (3 reported missing by the gateway)" in r.stdout
        doc = json.loads(vouch("modbus", "scan", "--url", f"tcp://127.0.0.1:{port}", "--units", "1-5", "--json").stdout)
        assert [a["unit"] for a in doc["answered"]] == [1, 3] and doc["silent"] == [2, 4, 5]
    finally:
        stop(peer)


def test_unit_scan_over_rtu(rtu_url):
    doc = json.loads(vouch("modbus", "scan", "--url", rtu_url, "--units", "1-4", "--json").stdout)
    assert {a["unit"] for a in doc["answered"]} == {1, 3}


def expected_ranges(runs):
    """Merges the layout's runs {start: values} into contiguous [first, last] ranges."""
    spans = sorted((int(s), int(s) + len(v) - 1) for s, v in runs.items())
    merged = []
    for first, last in spans:
        if merged and merged[-1][1] + 1 >= first:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return merged


@pytest.mark.parametrize("block", ["7", "16", "50", "125"])
def test_register_scan_finds_the_exact_edges(tcp_url, block):
    r = vouch("modbus", "scan", "--url", tcp_url, "--unit", "1", "--register", "holding", "--range", "0-199", "--block", block, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [[x["first"], x["last"]] for x in doc["readable"]] == expected_ranges(LAYOUT["units"]["1"]["holding"])
    assert set(doc["refusals"]) == {"EMBXILADD"}


def test_register_scan_edges_at_block_borders(tmp_path):
    runs = {"0": [1] * 50, "50": [2] * 3, "99": [3, 3], "149": [4], "151": [5] * 49}
    port = free_port()
    peer = start_peer(tmp_path, {"units": {"1": {"input": runs, "coils": {"3": [1] * 20, "40": [0]}}}}, "--tcp", f"127.0.0.1:{port}")
    try:
        url = f"tcp://127.0.0.1:{port}"
        doc = json.loads(vouch("modbus", "scan", "--url", url, "--unit", "1", "--register", "input", "--range", "0-299", "--json").stdout)
        assert [[x["first"], x["last"]] for x in doc["readable"]] == [[0, 52], [99, 100], [149, 149], [151, 199]]
        doc = json.loads(vouch("modbus", "scan", "--url", url, "--unit", "1", "--register", "coil", "--range", "0-99", "--json").stdout)
        assert [[x["first"], x["last"]] for x in doc["readable"]] == [[3, 22], [40, 40]]
        r = vouch("modbus", "scan", "--url", url, "--unit", "1", "--register", "input", "--range", "40-160")
        assert r.returncode == 0
        assert "40-52" in r.stdout and "13 registers" in r.stdout and "99-100" in r.stdout and "151-160" in r.stdout
    finally:
        stop(peer)


def test_register_scan_of_a_silent_unit_is_69(tcp_url):
    r = vouch("modbus", "scan", "--url", tcp_url, "--unit", "2", "--timeout", "200ms", "--range", "0-999")
    assert r.returncode == 69 and "unit 2 does not answer" in r.stderr and "ETIMEDOUT" in r.stderr


# --- read --config, plan -----------------------------------------------------------------------------------------

CONFIG = """\
[device]
id = "cli-test"
data_dir = "{tmp}/agent"
key_file = "{tmp}/agent/device.key"

[bank]
url = "http://127.0.0.1:9"

[shift]
timezone = "UTC"
start = "00:00"
end = "24:00"

[[modbus.device]]
name = "m"
url = "{tcp}"
unit_id = 1
timeout = "300ms"

[[modbus.device.channel]]
name = "voltage"
register = "input"
address = 0
type = "float32"
decimals = 1
unit = "V"

[[modbus.device.channel]]
name = "status"
register = "holding"
address = 0
type = "uint16"

[[modbus.device.channel]]
name = "energy"
register = "holding"
address = 10
type = "uint32"
byte_order = "CDAB"
unit = "Wh"

[[modbus.device.channel]]
name = "pf"
register = "holding"
address = 20
type = "int16"
scale = 0.001
decimals = 3

[[modbus.device.channel]]
name = "serial"
register = "holding"
address = 50
type = "string"
length = 2

[[modbus.device.channel]]
name = "run"
register = "coil"
address = 2

[[modbus.device]]
name = "other"
url = "{tcp}"
unit_id = 3
timeout = "300ms"

[[modbus.device.channel]]
name = "a"
register = "holding"
address = 0
type = "uint16"

[[modbus.device.channel]]
name = "c"
register = "holding"
address = 2
type = "uint16"
"""

GHOST = """
[[modbus.device]]
name = "ghost"
url = "{tcp}"
unit_id = 9
timeout = "200ms"

[[modbus.device.channel]]
name = "x"
register = "holding"
address = 0
type = "uint16"
"""


@pytest.fixture
def config(tmp_path, tcp_url):
    path = tmp_path / "vouch.toml"
    path.write_text(CONFIG.format(tmp=tmp_path, tcp=tcp_url))
    return path


def test_plan_json_shape(config):
    r = vouch("modbus", "plan", "--config", config, "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == ["devices"]
    m, other = doc["devices"]
    assert set(m) == {"name", "url", "unit", "channels", "requests"}
    assert (m["name"], m["unit"], m["channels"], len(m["requests"])) == ("m", 1, 6, 4)
    assert m["url"].startswith("tcp://127.0.0.1:")
    for req in m["requests"]:
        assert set(req) == {"function", "kind", "address", "count", "unused", "channels"}
    assert m["requests"][1] == {"function": 3, "kind": "holding", "address": 0, "count": 21, "unused": 17,
                                "channels": ["m.status", "m.energy", "m.pf"]}
    assert [r["function"] for r in m["requests"]] == [1, 3, 3, 4]
    assert other == {"name": "other", "url": m["url"], "unit": 3, "channels": 2,
                     "requests": [{"function": 3, "kind": "holding", "address": 0, "count": 3, "unused": 1, "channels": ["other.a", "other.c"]}]}


def test_plan_text(config):
    r = vouch("modbus", "plan", "--config", config)
    assert r.returncode == 0, r.stderr
    assert "m (6 channels, 4 requests)" in r.stdout
    assert "FC3 holding 0-20 (21, 17 unused): m.status m.energy m.pf" in r.stdout
    assert "6 channels: 4 requests per cycle instead of 6 (one per channel)" in r.stdout
    assert "bytes on the wire per cycle" in r.stdout


def test_config_errors_are_listed_like_config_check(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.format(tmp=tmp_path, tcp="tcp://127.0.0.1:70000").replace('type = "uint16"', 'type = "uint17"', 1))
    for cmd in (["plan"], ["read"]):
        r = vouch("modbus", *cmd, "--config", bad)
        assert r.returncode == 78
        assert f"{bad}:" in r.stderr and "out of range 1–65535" in r.stderr and "uint17" in r.stderr
        assert "error(s)" in r.stderr
        check = vouch("config", "check", bad)
        assert check.returncode == 78 and check.stderr.splitlines()[:-1] == r.stderr.splitlines()[:-1]


def test_read_config_polls_every_channel_once(config):
    r = vouch("modbus", "read", "--config", config, "--json")
    assert r.returncode == 0, r.stderr
    channels = {c["channel"]: c for c in json.loads(r.stdout)["channels"]}
    assert list(channels) == ["m.voltage", "m.status", "m.energy", "m.pf", "m.serial", "m.run", "other.a", "other.c"]
    assert channels["m.voltage"]["display"] == "230.1" and channels["m.voltage"]["value"] == 2301 and channels["m.voltage"]["unit"] == "V"
    assert channels["m.energy"]["value"] == U32_ENERGY and channels["m.energy"]["words"] == [U32_ENERGY & 0xFFFF, U32_ENERGY >> 16]
    assert channels["m.pf"]["display"] == "-0.005"
    assert channels["m.serial"]["display"] == "AB12"
    assert channels["m.run"]["value"] == 1 and channels["other.c"]["value"] == 9
    assert all(c["quality"] == "ok" for c in channels.values())
    # The layout has holes between 0, 10 and 20: the joined read is refused, and the poller splits it.
    assert "refused a joined read" in r.stderr
    r = vouch("modbus", "read", "--config", config)
    assert r.returncode == 0
    assert any(line.split()[:3] == ["m.voltage", "230.1", "V"] for line in r.stdout.splitlines())


def test_read_config_with_a_failing_device_is_69_with_rows(config, tcp_url):
    config.write_text(config.read_text() + GHOST.format(tcp=tcp_url))
    r = vouch("modbus", "read", "--config", config)
    assert r.returncode == 69
    ghost = next(line for line in r.stdout.splitlines() if line.startswith("ghost.x "))
    assert "E_MODBUS_ETIMEDOUT" in ghost
    assert "8 ok, 1 failed" in r.stdout
    doc = json.loads(vouch("modbus", "read", "--config", config, "--json").stdout)
    [failed] = [c for c in doc["channels"] if c["quality"] != "ok"]
    assert failed["channel"] == "ghost.x" and failed["code"] == "E_MODBUS_ETIMEDOUT" and "unit 9" in failed["message"]
    r = vouch("modbus", "read", "--config", config, "--device", "m", "--device", "other")
    assert r.returncode == 0 and "ghost" not in r.stdout
    r = vouch("modbus", "read", "--config", config, "--device", "meter")
    assert r.returncode == 64 and '--device "meter" is not a device' in r.stderr and "m, other, ghost" in r.stderr


# --- usage errors and help ---------------------------------------------------------------------------------------

URL = "tcp://127.0.0.1:502"


@pytest.mark.parametrize("args, message", [
    (["read", "--url", "http://10.0.0.5", "--register", "holding", "--address", "0"], '--url: "http://10.0.0.5" is not a Modbus url; expected "tcp://HOST:PORT"'),
    (["read", "--url", "tcp://10.0.0.5:99999", "--register", "holding", "--address", "0"], "port 99999"),
    (["read", "--url", "rtu://ttyUSB0", "--register", "holding", "--address", "0"], "needs an absolute device path"),
    (["read", "--url", URL, "--register", "holdings_reg", "--address", "0"], '--register "holdings_reg" is not a register kind; expected holding, input, coil or discrete'),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--type", "float"+"16"], '--type "float16" is not a data type; expected one of bool, uint16'),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--type", "f32", "--byte-order", "ACBD"], '--byte-order "ACBD" is not a byte order; expected ABCD, CDAB, BADC or DCBA'),
    (["read", "--url", URL, "--register", "holding"], "--address is missing"),
    (["read", "--url", URL, "--address", "0"], "--register is missing"),
    (["read", "--register", "holding", "--address", "0"], "give --url URL"),
    (["read", "--url", URL, "--register", "holding", "--address", "70000"], "--address 70000 is out of range; expected 0–65535"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--count", "2", "--type", "f32"], "--count 2 and --type exclude each other"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--count", "200"], "--count 200 is out of range"),
    (["read", "--url", URL, "--register", "coil", "--address", "0", "--type", "u16"], "cannot be read from a coil"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--type", "bool"], "needs --bit"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--type", "string"], "--type string needs --length"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--type", "u16", "--all-orders"], "--all-orders needs a 2- or 4-register number"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--scale", "2"], "--scale applies to a number"),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--timeout", "soon"], '--timeout "soon" is not a duration'),
    (["read", "--url", URL, "--register", "holding", "--address", "0", "--baud", "9600"], "--baud applies to serial urls"),
    (["read", "--url", "rtu:///dev/ttyUSB0", "--baud", "9601", "--register", "holding", "--address", "0"], "--baud 9601 is not a standard rate"),
    (["read", "--url", "rtu:///dev/ttyUSB0", "--parity", "mark", "--register", "holding", "--address", "0"], '--parity "mark" is not a parity; expected none, even or odd'),
    (["read", "--url", "rtu:///dev/ttyUSB0", "--unit", "0", "--register", "holding", "--address", "0"], "--unit 0 cannot be read on a serial line"),
    (["read", "--config", "x.toml", "--url", URL], "--url and --config exclude each other"),
    (["read", "--url", URL, "--device", "m", "--register", "holding", "--address", "0"], "--device picks devices of a config"),
    (["scan", "--url", URL, "--units", "1-300"], '--units "1-300": 1-300 is out of range'),
    (["scan", "--url", URL, "--units", "a-b"], "is not a unit id or a range"),
    (["scan", "--url", URL, "--unit", "3"], "--unit picks the device of a register scan"),
    (["scan", "--url", URL, "--register", "input", "--range", "0-x"], "--range \"0-x\" is not an address range"),
    (["scan", "--url", URL, "--range", "0-99", "--block", "126"], "--block 126 is out of range"),
    (["scan", "--url", URL, "--register", "register"], '--register "register" is not a register kind'),
])
def test_bad_input_names_what_is_wrong_and_exits_64(args, message):
    r = vouch("modbus", *args)
    assert r.returncode == 64, (r.returncode, r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert r.stdout == "" and "Traceback" not in r.stderr and "Fatal error" not in r.stderr


@pytest.mark.parametrize("sub", ["read", "scan", "plan"])
def test_help_has_examples(sub):
    r = vouch("modbus", sub, "--help")
    assert r.returncode == 0
    assert "Examples:" in r.stdout and f"vouch modbus {sub} " in r.stdout
    if sub != "plan":
        assert f"rtu://{SERIAL_EXAMPLE}" in r.stdout
    top = vouch("modbus", "--help")
    assert f"{sub} " in top.stdout and "Examples:" in top.stdout


def test_the_readme_modbus_example_is_a_valid_config(tmp_path):
    """README.md's Modbus and GPIO configuration, as printed, passes `vouch config check` (the GPIO lines
    checked against boards/sim) and plans as it says."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("[modbus]\ntemplates = ")
    end = readme.index("[[stoppage]]", start)
    modbus = readme[start:end].replace('templates = "/usr/share/vouch/modbus"', f'templates = "{ROOT / "boards" / "modbus"}"')\
        .replace('boards = "/usr/share/vouch/boards"', f'boards = "{ROOT / "boards"}"')
    config = tmp_path / "vouch.toml"
    config.write_text(f"""
[device]
id = "readme"
data_dir = "{tmp_path}"

[bank]
url = "http://127.0.0.1:9"

[shift]
start = "06:00"
end = "22:00"

{modbus}
""")
    check = vouch("config", "check", config)
    assert check.returncode == 0, check.stderr
    plan = json.loads(vouch("modbus", "plan", "--config", config, "--json").stdout)
    devices = {d["name"]: d for d in plan["devices"]}
    assert set(devices) == {"main_meter", "scale", "press"}
    assert devices["main_meter"]["channels"] == 30 and len(devices["main_meter"]["requests"]) <= 10
    assert all(r["count"] <= 60 for r in devices["main_meter"]["requests"])
