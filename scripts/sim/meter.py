#!/usr/bin/env python3
"""A simulated three-phase energy meter on Modbus TCP, for the demo and the integration tests.

It plays a production line: the total active power sits near --power watts, drops to zero at
--stop-after seconds for --stop-for seconds (a production stoppage), then comes back. The phase
changes are written, as they happen, as JSON lines to --events so a test can compare what the
agent detected with what the site really did.

Register map (all addresses 0-based, as on the wire):
  input registers (function 4), float32, word order ABCD (big-endian, as Eastron SDM meters):
    0  phase 1 voltage  V
    6  phase 1 current  A
    52 total active power  W
  holding registers (function 3):
    0  u16   meter status (always 1)
    10 u32   active energy import, Wh, word order CDAB (low word first, as many PLCs)
    20 i16   power factor x1000
Anything else is an illegal data address (exception 2), so tests can provoke one.
"""
import argparse
import asyncio
import json
import os
import math
import random
import signal
import struct
import sys
import time

from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice


def f32_abcd(value):
    hi, lo = struct.unpack(">HH", struct.pack(">f", value))
    return [hi, lo]


def u32_cdab(value):
    value &= 0xFFFFFFFF
    return [value & 0xFFFF, value >> 16]


class Meter:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        self.energy_wh = 1_234_000.0
        self.last_update = self.t0
        self.phase = "running"
        self.events = open(args.events, "a", buffering=1) if args.events else None
        self.note("started", power_w=args.power)

    def note(self, what, **fields):
        line = {"event": what, "wall_ns": time.time_ns(), **fields}
        if self.events:
            self.events.write(json.dumps(line) + "\n")
        print(f"[site] {what} {fields if fields else ''}".rstrip(), flush=True)

    def power_now(self):
        elapsed = time.monotonic() - self.t0
        stop_from = self.args.stop_after
        stop_to = stop_from + self.args.stop_for
        stopped = self.args.stop_for > 0 and stop_from <= elapsed < stop_to
        if stopped and self.phase == "running":
            self.phase = "stopped"
            self.note("stoppage begins")
        elif not stopped and self.phase == "stopped":
            self.phase = "running"
            self.note("production resumes")
        if stopped:
            return 0.0
        return self.args.power * (1.0 + random.uniform(-0.03, 0.03))

    def refresh(self, inputs, holdings):
        power = self.power_now()
        now = time.monotonic()
        self.energy_wh += power * (now - self.last_update) / 3600.0
        self.last_update = now
        voltage = 230.0 + random.uniform(-1.5, 1.5)
        current = power / (3 * voltage)
        inputs[0:2] = f32_abcd(voltage)
        inputs[6:8] = f32_abcd(current)
        inputs[52:54] = f32_abcd(power)
        holdings[0] = 1
        holdings[10:12] = u32_cdab(int(self.energy_wh))
        holdings[20] = 0 if power == 0 else 950


async def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5020)
    parser.add_argument("--unit", type=int, default=1)
    parser.add_argument("--power", type=float, default=12000.0, help="running power in W")
    parser.add_argument("--stop-after", type=float, default=20.0, help="seconds before the stoppage")
    parser.add_argument("--stop-for", type=float, default=40.0, help="stoppage length in s (0: none)")
    parser.add_argument("--events", help="append phase changes as JSON lines to this file")
    parser.add_argument("--ready-file", help="touch this file once the server listens")
    args = parser.parse_args()

    meter = Meter(args)
    inputs = [0] * 60
    holdings = [0] * 30
    meter.refresh(inputs, holdings)

    async def on_access(function_code, start_address, address, count, current_registers, set_values):
        # Recompute the live values, then copy the block this request addresses into the server's
        # registers. Input and holding registers are separate blocks (non-shared device).
        meter.refresh(inputs, holdings)
        source = inputs if function_code == 4 else holdings
        for i in range(len(current_registers)):
            if start_address + i < len(source):
                current_registers[i] = source[start_address + i]
        return None

    device = SimDevice(
        id=args.unit,
        simdata=(
            [SimData(0, count=1, values=False, datatype=DataType.BITS)],
            [SimData(0, count=1, values=False, datatype=DataType.BITS)],
            [SimData(0, count=len(holdings), values=0, datatype=DataType.REGISTERS)],
            [SimData(0, count=len(inputs), values=0, datatype=DataType.REGISTERS)],
        ),
        action=on_access,
    )
    server = ModbusTcpServer([device], address=(args.host, args.port))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def phase_clock():
        # Record phase changes on time even when nobody is polling.
        while not stop.is_set():
            meter.power_now()
            await asyncio.sleep(0.05)

    serve = asyncio.create_task(server.serve_forever())
    clock = asyncio.create_task(phase_clock())
    await asyncio.sleep(0.3)
    if args.ready_file:
        open(args.ready_file, "w").close()
    print(f"[site] meter listening on {args.host}:{args.port} unit {args.unit}", flush=True)
    await stop.wait()
    meter.note("stopping")
    clock.cancel()
    # pymodbus's server.shutdown() can hang with clients still connected; the simulator has no state
    # worth a graceful close (events are written line by line), so leave at once.
    os._exit(0)


if __name__ == "__main__":
    asyncio.run(main())
