#!/usr/bin/env python3
"""Print a modbus_peer.py layout (JSON) that serves a plausible image of a device template.

Usage:
  sdm630_layout.py [--template boards/modbus/eastron-sdm630.toml] [--unit 1] [--exact] > sdm630.json
  scripts/sim/modbus_peer.py sdm630.json --tcp 127.0.0.1:5020

Every channel of the template gets a plausible value, encoded as its type and byte order say (float32
ABCD for the Eastron meters): a balanced three-phase load of about 10.5 kW at 230 V / 50 Hz. Values are
chosen from the channel name (voltage, current, power, power_factor, frequency, energy, …), so the SDM120
template works too; a name it does not know gets 0.

By default the gaps between channels of one register table are filled with 0, as a real Eastron meter
answers reads across its unused addresses; the planner's max_gap merging relies on that. --exact serves
only the channels' own registers, so a request that strays into a gap gets exception 2.
"""
import argparse
import json
import math
import struct
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORDS = {"bool": 1, "uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2,
         "uint64": 4, "int64": 4, "float64": 4}
PACK = {"uint16": ">H", "int16": ">h", "uint32": ">I", "int32": ">i", "float32": ">f",
        "uint64": ">Q", "int64": ">q", "float64": ">d"}
TABLES = {"coil": "coils", "discrete": "discrete", "holding": "holding", "input": "input"}

# A balanced load: 16 A per phase at 230 V, power factor 0.95 (about 3.5 kW per phase).
V_LN, I_PHASE, PF, HZ = 230.0, 16.0, 0.95, 50.0
PHASE_SKEW = {"l1": 1.00, "l2": 1.02, "l3": 0.97}  # phases are never exactly equal


def plausible(name):
    """A value that a meter could show for a channel of this name."""
    skew = PHASE_SKEW.get(name[:2], 1.0)
    s = 3.0 if name.startswith("total_") else skew  # totals add three phases
    v, i = V_LN * (1 + (skew - 1) / 10), I_PHASE * skew
    apparent = V_LN * I_PHASE * s
    rules = [
        ("_l2_voltage", V_LN * math.sqrt(3)), ("_l3_voltage", V_LN * math.sqrt(3)),
        ("_l1_voltage", V_LN * math.sqrt(3)),
        ("power_factor", PF), ("phase_angle", math.degrees(math.acos(PF))),
        ("frequency", HZ), ("neutral_current", 0.4),
        ("reactive_energy", 1834.25), ("import_energy", 12345.67), ("export_energy", 21.5),
        ("total_energy", 12367.17), ("energy", 12345.67),
        ("apparent_power", apparent), ("reactive_power", apparent * math.sin(math.acos(PF))),
        ("power", apparent * PF), ("voltage", v), ("current", i),
        # Weighing indicators (laumas-tlb.toml): a loaded, settled scale with a tare.
        ("gross_weight", 1234.5), ("net_weight", 1034.5), ("peak_weight", 1301.2),
        ("stable", 1), ("net_mode", 1),
    ]
    for key, value in rules:
        if key in name:
            return value
    return 0.0


def encode(value, channel, default_order):
    """Registers (big-endian words) for one value, in the channel's type and byte order."""
    typ = channel["type"]
    if typ == "bool":
        return [int(bool(value)) << channel.get("bit", 0)]
    if typ not in PACK:
        sys.exit(f"{channel['name']}: type {typ!r} not supported by this generator")
    scale = channel.get("scale", 1.0)
    offset = channel.get("offset", 0.0)
    raw = (value - offset) / scale
    if not typ.startswith("float"):
        raw = int(round(raw))
    data = struct.pack(PACK[typ], raw)
    words = [int.from_bytes(data[k:k + 2], "big") for k in range(0, len(data), 2)]
    order = channel.get("byte_order", default_order)
    if order in ("CDAB", "DCBA"):
        words.reverse()  # low word first
    if order in ("BADC", "DCBA"):
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]  # bytes swapped inside each word
    return words


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--template", default=str(ROOT / "boards/modbus/eastron-sdm630.toml"))
    parser.add_argument("--unit", type=int, default=1, help="unit id to serve the image on (default 1)")
    parser.add_argument("--exact", action="store_true", help="serve only the channels' registers, no gap filling")
    args = parser.parse_args()

    with open(args.template, "rb") as f:
        template = tomllib.load(f)
    default_order = template.get("byte_order", "ABCD")
    tables = {}  # table → {address: word}
    for channel in template["channel"]:
        table = tables.setdefault(TABLES[channel["register"]], {})
        words = encode(plausible(channel["name"]), channel, default_order)
        for k, word in enumerate(words):
            # Several bool channels share one status register: OR their bits together.
            table[channel["address"] + k] = table.get(channel["address"] + k, 0) | word

    layout = {}
    for table, words in tables.items():
        if args.exact:
            runs, start = {}, None
            for address in sorted(words):
                if start is None or address != prev + 1:
                    start = address
                    runs[str(start)] = []
                runs[str(start)].append(words[address])
                prev = address
        else:
            lo, hi = min(words), max(words)
            runs = {str(lo): [words.get(a, 0) for a in range(lo, hi + 1)]}
        layout[table] = runs
    json.dump({"units": {str(args.unit): layout}}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
