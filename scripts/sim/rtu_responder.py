#!/usr/bin/env python3
"""A tiny hand-written Modbus RTU responder, for the bus faults pymodbus cannot produce.

Usage:
  rtu_responder.py --device /tmp/x/a [--units 1,3] [--silent 2] [--mode normal|garbage|bad-crc|wrong-unit]
                   [--delay-ms 0] [--baud 19200] [--seed N] [--ready-file PATH] [--verbose]

Units in --units answer:
  FC 3/4 (holding/input registers)    every register holds its own address (value = address & 0xFFFF);
  FC 1/2 (coils/discrete inputs)      every bit is address % 2 (0, 1, 0, 1, …);
  anything else                        exception 1 (illegal function);
  count out of range                   exception 3; a range past address 65535: exception 2.
Units in --silent never answer, like a dead device on an RS-485 line; so does any unit id that is in
neither list (nothing at that address) and the broadcast id 0. --silent only makes the intent explicit
and labels the requests in the --verbose log.

--mode changes every answer of the --units:
  normal      a correct frame;
  garbage     random bytes, as many as the correct frame would have (line noise, a wrong baud rate);
  bad-crc     the correct frame with its CRC corrupted;
  wrong-unit  a correct frame (valid CRC) carrying another unit id ((unit % 247) + 1).
--delay-ms waits that long before each answer (a slow device; pushes a master past its timeout).

Framing: a request is complete as soon as its function code's length has arrived (8 bytes for FC 1-6,
9 + byte count for FC 15/16), so answers are not held back by the silence timer; bytes that do not make a
valid frame are dropped after 5 ms of silence (the RTU inter-frame gap, as a real device resyncs). A request
with a bad CRC gets no answer, as on a real device. --baud sets the serial line speed; a pty ignores it.
Written without pymodbus so that nothing "helpful" smooths the faults over. Exits at once on SIGTERM/SIGINT.
"""
import argparse
import os
import random
import select
import signal
import struct
import sys
import termios
import time
import tty

GAP_S = 0.005  # silence that ends a frame
BAUD = {b: getattr(termios, f"B{b}") for b in (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400)}


def crc16_modbus(data):
    """CRC-16/MODBUS: poly 0xA001 (reflected 0x8005), init 0xFFFF; sent low byte first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body):
    return body + struct.pack("<H", crc16_modbus(body))


def request_length(buf):
    """Bytes the request at the start of buf needs, or None while that is still unknown."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if 1 <= fc <= 6:
        return 8
    if fc in (15, 16):
        return 9 + buf[6] if len(buf) >= 7 else None
    return None  # unknown function code: only the silence gap ends it


def exception(unit, fc, code):
    return bytes([unit, fc | 0x80, code])


def answer(unit, pdu):
    """Response body (without CRC) for a request PDU from one of the answering units."""
    fc = pdu[0]
    if fc not in (1, 2, 3, 4):
        return exception(unit, fc, 1)
    address, count = struct.unpack(">HH", pdu[1:5])
    if fc in (3, 4):
        if not 1 <= count <= 125:
            return exception(unit, fc, 3)
        if address + count > 65536:
            return exception(unit, fc, 2)
        words = [(address + i) & 0xFFFF for i in range(count)]
        return bytes([unit, fc, 2 * count]) + struct.pack(f">{count}H", *words)
    if not 1 <= count <= 2000:
        return exception(unit, fc, 3)
    if address + count > 65536:
        return exception(unit, fc, 2)
    packed = bytearray((count + 7) // 8)
    for i in range(count):
        if (address + i) % 2:
            packed[i // 8] |= 1 << (i % 8)  # first bit in the least significant position, as on the wire
    return bytes([unit, fc, len(packed)]) + bytes(packed)


class Responder:
    def __init__(self, args):
        self.args = args
        self.units = args.units
        self.silent = args.silent
        self.rng = random.Random(args.seed)

    def log(self, text):
        if self.args.verbose:
            print(f"[rtu_responder] {time.monotonic():.3f} {text}", file=sys.stderr, flush=True)

    def reply_frame(self, unit, pdu):
        body = answer(unit, pdu)
        mode = self.args.mode
        if mode == "wrong-unit":
            body = bytes([unit % 247 + 1]) + body[1:]
        frame = with_crc(body)
        if mode == "bad-crc":
            frame = frame[:-2] + bytes([frame[-2] ^ 0xFF, frame[-1]])
        elif mode == "garbage":
            frame = bytes(self.rng.randrange(256) for _ in frame)
        return frame

    def handle(self, frame):
        """Returns the bytes to send for one complete frame, or b"" for silence."""
        if len(frame) < 4 or crc16_modbus(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]:
            self.log(f"bad request CRC or runt frame, ignored: {frame.hex(' ')}")
            return b""
        unit, pdu = frame[0], frame[1:-2]
        desc = f"unit {unit} fc {pdu[0]}"
        if len(pdu) >= 5:
            desc += " address %d count %d" % struct.unpack(">HH", pdu[1:5])
        if unit not in self.units:
            why = "silent unit" if unit in self.silent else "broadcast" if unit == 0 else "no such unit"
            self.log(f"{desc}: {why}, no answer")
            return b""
        reply = self.reply_frame(unit, pdu)
        self.log(f"{desc}: {self.args.mode} answer {reply.hex(' ')}")
        return reply


def open_serial(path, baud):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    if baud in BAUD:
        attrs[4] = attrs[5] = BAUD[baud]
    attrs[2] = (attrs[2] | termios.CLOCAL | termios.CREAD) & ~(termios.PARENB | termios.CSTOPB)
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    termios.tcflush(fd, termios.TCIOFLUSH)  # bytes a master wrote before we started are not requests
    return fd


def unit_list(text):
    return {int(u) for u in text.split(",") if u.strip()} if text else set()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", required=True, help="serial device or pty to answer on")
    parser.add_argument("--units", type=unit_list, default={1}, help="answering unit ids, e.g. 1,3 (default 1)")
    parser.add_argument("--silent", type=unit_list, default=set(), help="unit ids that never answer, e.g. 2")
    parser.add_argument("--mode", choices=("normal", "garbage", "bad-crc", "wrong-unit"), default="normal")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="wait before each answer")
    parser.add_argument("--baud", type=int, default=19200, help="line speed (ignored by a pty)")
    parser.add_argument("--seed", type=int, help="random seed for --mode garbage")
    parser.add_argument("--ready-file", help="touch this file once the device is open")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    if args.units & args.silent:
        parser.error(f"unit(s) {sorted(args.units & args.silent)} both answering and silent")

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: os._exit(0))
    fd = open_serial(args.device, args.baud)
    responder = Responder(args)
    if args.ready_file:
        open(args.ready_file, "w").close()
    print(f"[rtu_responder] on {args.device}: answering {sorted(args.units)} ({args.mode}), "
          f"silent {sorted(args.silent)}", file=sys.stderr, flush=True)

    def send(reply):
        if reply:
            if args.delay_ms:
                time.sleep(args.delay_ms / 1000)
            os.write(fd, reply)

    buf = b""
    while True:
        # Block until the first byte of a frame; then a 5 ms silence ends what is left of it.
        ready, _, _ = select.select([fd], [], [], GAP_S if buf else None)
        if not ready:
            if buf:
                responder.log(f"dropped {len(buf)} byte(s) that make no frame: {buf.hex(' ')}")
            buf = b""
            continue
        try:
            chunk = os.read(fd, 512)
        except OSError as exc:  # EIO: the other end of the pty (socat) is gone
            sys.exit(f"[rtu_responder] {args.device}: {exc}")
        if not chunk:
            sys.exit(f"[rtu_responder] {args.device}: end of file")
        buf += chunk
        while (need := request_length(buf)) is not None and len(buf) >= need:
            frame, rest = buf[:need], buf[need:]
            if crc16_modbus(frame[:-2]) != struct.unpack("<H", frame[-2:])[0]:
                break  # not a frame boundary after all: leave it to the silence gap
            buf = rest
            send(responder.handle(frame))
        if buf and request_length(buf) is None and len(buf) >= 4 and \
                crc16_modbus(buf[:-2]) == struct.unpack("<H", buf[-2:])[0] and \
                not select.select([fd], [], [], GAP_S)[0]:
            # An unknown function code with a valid CRC, followed by silence: a whole request.
            send(responder.handle(buf))
            buf = b""


if __name__ == "__main__":
    main()
