#!/usr/bin/env python3
"""A Modbus peer (pymodbus server) serving fixed register contents from a JSON layout file.

Usage:
  modbus_peer.py LAYOUT.json --tcp 127.0.0.1:5020 [--ready-file PATH]
  modbus_peer.py LAYOUT.json --rtu /tmp/x/a [--baud 115200] [--ready-file PATH]

Layout (addresses 0-based, as on the wire; several unit ids per server):
  {"units": {"1": {"coils":    {"0": [1, 0, 1]},
                   "discrete": {"5": [1]},
                   "holding":  {"0": [65535, 1, 2]},
                   "input":    {"100": [16712, 0]}},
             "3": {...}}}
Each key is the start address of a run of bits (coils, discrete) or 16-bit words (holding, input).

Exactly the addresses given exist. A request that touches any other address, even one in a hole
between two runs, gets exception 2 (illegal data address), for all four tables and every function
code. pymodbus's simulator would make holes invalid for registers on its own, but it pads bit tables
to whole 16-bit words and serves the padding as 0, so a guard in front of its datastore checks
every request against the layout.

A unit id that is not in the layout: --unknown-unit silent (default; like an empty address on an
RS-485 bus, the master times out), gateway (exception 0x0B, what a TCP gateway answers when the
device behind it is missing) or failure (exception 4, pymodbus's own behaviour).

Writes (FC 5, 6, 15, 16) are accepted inside the layout and change what later reads return.
--baud is passed to the serial port; a pty ignores it.
Exits at once on SIGTERM/SIGINT.
"""
import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

TABLES = ("coils", "discrete", "holding", "input")
# Function code → table it reads or writes (FC 23 read/write multiple uses holding registers).
FC_TABLE = {1: "coils", 5: "coils", 15: "coils", 2: "discrete", 3: "holding", 6: "holding",
            16: "holding", 22: "holding", 23: "holding", 4: "input"}
UNKNOWN_UNIT_EXCEPTION = {"gateway": ExcCodes.GATEWAY_NO_RESPONSE, "failure": ExcCodes.DEVICE_FAILURE}


def load_layout(path):
    """Returns {unit: {table: {start: [values]}}} with integer keys, after checking every value."""
    with open(path) as f:
        raw = json.load(f)
    if not isinstance(raw, dict) or not isinstance(raw.get("units"), dict) or not raw["units"]:
        sys.exit(f"{path}: expected {{\"units\": {{\"1\": {{...}}}}}} with at least one unit")
    layout = {}
    for unit_key, tables in raw["units"].items():
        unit = int(unit_key)
        if not 1 <= unit <= 255:
            # Unit 0 is the broadcast address on RTU and pymodbus's "any other unit" device.
            sys.exit(f"{path}: unit {unit_key} out of range 1…255")
        unknown = set(tables) - set(TABLES)
        if unknown:
            sys.exit(f"{path}: unit {unit}: unknown table(s) {sorted(unknown)}; expected {TABLES}")
        layout[unit] = {}
        for table in TABLES:
            runs = {}
            for start_key, values in tables.get(table, {}).items():
                start = int(start_key)
                if not isinstance(values, list) or not values:
                    sys.exit(f"{path}: unit {unit} {table} {start}: expected a non-empty list")
                limit = 1 if table in ("coils", "discrete") else 0xFFFF
                for v in values:
                    if not isinstance(v, int) or not 0 <= v <= limit:
                        sys.exit(f"{path}: unit {unit} {table} {start}: {v!r} is not in 0…{limit}")
                if not 0 <= start or start + len(values) > 65536:
                    sys.exit(f"{path}: unit {unit} {table} {start}: run leaves the 0…65535 address range")
                runs[start] = values
            # Overlapping runs would make one address hold two values.
            end = -1
            for start in sorted(runs):
                if start <= end:
                    sys.exit(f"{path}: unit {unit} {table}: run at {start} overlaps the one before it")
                end = start + len(runs[start]) - 1
            layout[unit][table] = runs
    return layout


def sim_device(unit, tables):
    """One pymodbus SimDevice with four separate tables (coils and discrete inputs addressed by bit)."""
    def bits(runs):
        if not runs:
            # pymodbus needs at least one entry per table; the guard rejects every address here.
            return [SimData(0, values=[False], datatype=DataType.BITS)]
        return [SimData(start, values=[bool(v) for v in vals], datatype=DataType.BITS)
                for start, vals in sorted(runs.items())]

    def words(runs):
        if not runs:
            return [SimData(0, datatype=DataType.INVALID)]
        return [SimData(start, values=list(vals), datatype=DataType.REGISTERS)
                for start, vals in sorted(runs.items())]

    return SimDevice(id=unit, simdata=(bits(tables["coils"]), bits(tables["discrete"]),
                                       words(tables["holding"]), words(tables["input"])))


class LayoutGuard:
    """Sits between pymodbus's request handler and its simulator datastore (SimCore).

    Rejects any address outside the layout with exception 2 and handles unknown unit ids, then
    lets pymodbus serve the request.
    """

    def __init__(self, core, layout, unknown_unit):
        self.core = core
        self.unknown_unit = unknown_unit
        self.units = set(layout)
        self.exists = {
            (unit, table): {start + i for start, vals in runs.items() for i in range(len(vals))}
            for unit, tables in layout.items() for table, runs in tables.items()
        }

    def check(self, unit, func_code, address, count):
        if unit not in self.units:
            if self.unknown_unit == "silent":
                raise NoSuchIdException(f"unit {unit}")  # with ignore_missing_devices: no reply at all
            return UNKNOWN_UNIT_EXCEPTION[self.unknown_unit]
        exists = self.exists.get((unit, FC_TABLE.get(func_code)))
        if exists is None:
            return ExcCodes.ILLEGAL_FUNCTION
        if any(a not in exists for a in range(address, address + count)):
            return ExcCodes.ILLEGAL_ADDRESS
        return None

    async def async_getValues(self, device_id, func_code, address, count=1):
        return self.check(device_id, func_code, address, count) or \
            await self.core.async_getValues(device_id, func_code, address, count)

    async def async_setValues(self, device_id, func_code, address, values):
        return self.check(device_id, func_code, address, len(values)) or \
            await self.core.async_setValues(device_id, func_code, address, values)

    def device_ids(self):
        return self.core.device_ids()


def parse_host_port(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("layout", help="layout JSON file")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", type=parse_host_port, metavar="HOST:PORT", help="serve Modbus TCP")
    where.add_argument("--rtu", metavar="DEVICE", help="serve Modbus RTU on this serial device or pty")
    parser.add_argument("--baud", type=int, default=19200, help="serial baud rate (ignored by a pty)")
    parser.add_argument("--unknown-unit", choices=("silent", "gateway", "failure"), default="silent",
                        help="answer to a unit id not in the layout (default: silent)")
    parser.add_argument("--ready-file", help="touch this file once the server listens")
    parser.add_argument("--verbose", action="store_true", help="pymodbus debug log to stderr")
    args = parser.parse_args()

    layout = load_layout(args.layout)
    devices = [sim_device(unit, tables) for unit, tables in sorted(layout.items())]
    # pymodbus logs every unknown-unit request at error level; only show its log when asked.
    logging.basicConfig(stream=sys.stderr, level=logging.DEBUG if args.verbose else logging.CRITICAL)
    silent = args.unknown_unit == "silent"
    if args.tcp:
        server = ModbusTcpServer(devices, address=args.tcp, ignore_missing_devices=silent)
        where_text = f"tcp {args.tcp[0]}:{args.tcp[1]}"
    else:
        server = ModbusSerialServer(devices, port=args.rtu, baudrate=args.baud,
                                    ignore_missing_devices=silent)
        where_text = f"rtu {args.rtu}"
    server.context = LayoutGuard(server.context, layout, args.unknown_unit)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # background=True returns once listening (or raises if the port/device cannot be opened).
    try:
        await server.serve_forever(background=True)
    except RuntimeError as exc:
        sys.exit(f"[modbus_peer] cannot serve on {args.tcp or args.rtu}: {exc}")
    if args.ready_file:
        open(args.ready_file, "w").close()
    units = ",".join(str(u) for u in sorted(layout))
    print(f"[modbus_peer] serving units {units} on {where_text}", file=sys.stderr, flush=True)
    await stop.wait()
    # pymodbus's shutdown() can hang with clients still connected, and there is no state to save.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
