#!/usr/bin/env python3
"""Runs the detection scenario suite (issue 7) through `vouch detect replay` and scores it.

    python3 Tests/Scenarios/run.py [--only NAME]... [--keep] [--dir DIR]

Generates the scenarios (Tests/Scenarios/generate.py) into DIR (default .build/scenarios), replays each
with the `vouch` binary of $VOUCH_BIN_DIR (default .build/debug), matches the events to the labels and
prints a table per scenario and the totals against the goals:

  detection   100 % of the expected alarms raised (warning or alarm severity, as labelled)
  false       <= 0.01 false alarms per sensor-day over the normal scenarios (a false alarm: a start
              event of severity warning or alarm that no label expects or tolerates)
  delay       every alarm raised within its allowance after its condition starts holding
              (2 poll intervals, or the rule's minimum duration + 2 intervals)
  labelled    every expected non-alarm record (release, planned stop, stop outside the shift) present
              with severity record, and every alarm with its labelled severity

Matching: an expected alarm is met by a start event of its rule and channel whose `start` lies in
[condition start - 1 interval, condition start + allowed delay]; its delay is the event's `at` (when it
was raised) minus the condition start. Each event meets at most one label. `end` events are not scored.

Exit status: 0 every goal met; 1 a goal failed (the output says which); 2 the suite could not run
(no binary, or the replay refused: e.g. a detector kind not built into this vouch yet).
--keep leaves each replay's row CSV and events (replay.csv, events.jsonl) next to its scenario.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
import generate  # noqa: E402

FALSE_ALARM_GOAL = 0.01  # per sensor-day, normal scenarios
NOTIFYING = ("warning", "alarm")  # severities that call someone; `record` does not
NOT_BUILT = "not built into this vouch yet"


class CannotRun(Exception):
    """The suite could not be run at all (exit 2)."""


def binary() -> Path:
    return Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug") / "vouch"


def when(text: str) -> float:
    """An event or label time (ISO 8601, 'Z' or an offset, optional fraction) as epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def replay(vouch: Path, scenario: Path, out: Path) -> tuple[list[dict], float]:
    """Runs `vouch detect replay` on one scenario folder; returns its events and the seconds it took."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(vouch), "detect", "replay", "--config", str(scenario / "config.toml"), "--csv", str(scenario / "history.csv"),
           "--out", str(out / "replay.csv"), "--events", str(out / "events.jsonl")]
    started = time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True)
    took = time.monotonic() - started
    if p.returncode != 0:
        raise CannotRun(f"{scenario.name}: vouch detect replay exited {p.returncode}: {p.stderr.strip()}")
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines() if line.strip()]
    return events, took


# ------------------------------------------------------------------------------------------ matching


def score(labels: dict, events: list[dict]) -> dict:
    """Matches one scenario's events to its labels. Pure: the unit tests feed it synthetic events."""
    interval = labels["interval_s"]
    starts = [e for e in events if e.get("phase") == "start"]
    used: set[int] = set()

    def find(label: dict, severities) -> int | None:
        c = when(label["condition_start"])
        lo, hi = c - interval, c + label["allowed_delay_s"]
        candidates = [(when(e["start"]), i) for i, e in enumerate(starts)
                      if i not in used and e.get("rule") == label["rule"] and e.get("channel") == label["channel"]
                      and e.get("severity") in severities and lo <= when(e["start"]) <= hi]
        return min(candidates)[1] if candidates else None

    alarms = []
    for label in labels["expected_alarms"]:
        i = find(label, NOTIFYING)
        row = {"label": label, "detected": i is not None}
        if i is None:
            recorded = find(label, ("record",))
            row["note"] = "only recorded (severity record): nobody is called" if recorded is not None else "no event"
        else:
            used.add(i)
            e = starts[i]
            row |= {"event_id": e.get("event_id"), "delay_s": when(e["at"]) - when(label["condition_start"]), "severity": e["severity"]}
            row["late"] = row["delay_s"] > label["allowed_delay_s"]
            row["severity_ok"] = e["severity"] == label["severity"]
        alarms.append(row)

    records, alarmed_records = [], []
    for label in labels["expected_records"]:
        i = find(label, ("record",) + NOTIFYING)
        row = {"label": label, "present": i is not None}
        if i is not None:
            used.add(i)
            e = starts[i]
            row |= {"event_id": e.get("event_id"), "severity": e["severity"], "delay_s": when(e["at"]) - when(label["condition_start"])}
            if e["severity"] in NOTIFYING:
                alarmed_records.append(e)
        records.append(row)

    tolerated, false_alarms, other_records = [], list(alarmed_records), []
    for i, e in enumerate(starts):
        if i in used:
            continue
        window = next((t for t in labels.get("tolerated", []) if t["rule"] == e.get("rule") and (
            when(t["from"]) <= when(e["start"]) <= when(t["to"]) or when(t["from"]) <= when(e["at"]) <= when(t["to"]))), None)
        if window is not None:
            tolerated.append(e)
        elif e.get("severity") in NOTIFYING:
            false_alarms.append(e)
        else:
            other_records.append(e)
    sensor_days = labels["sensor_days"]
    return {"scenario": labels["scenario"], "class": labels["class"], "sensor_days": sensor_days, "alarms": alarms, "records": records,
            "false_alarms": false_alarms, "false_rate": len(false_alarms) / sensor_days if sensor_days else 0.0,
            "tolerated": tolerated, "other_records": other_records, "undetectable": labels.get("undetectable", [])}


def goals(results: list[dict]) -> list[tuple[str, bool, str]]:
    """The totals against issue 7's goals: (name, met, text)."""
    expected = [a for r in results for a in r["alarms"]]
    detected = [a for a in expected if a["detected"]]
    missed = [f"{r['scenario']}/{a['label']['rule']}" for r in results for a in r["alarms"] if not a["detected"]]
    normal = [r for r in results if r["class"] == "normal"]
    fa = sum(len(r["false_alarms"]) for r in normal)
    days = sum(r["sensor_days"] for r in normal)
    rate = fa / days if days else 0.0
    late = [f"{r['scenario']}/{a['label']['rule']} {a['delay_s']:.0f} s > {a['label']['allowed_delay_s']} s"
            for r in results for a in r["alarms"] if a["detected"] and a["late"]]
    wrong = [f"{r['scenario']}/{a['label']['rule']} severity {a['severity']}, labelled {a['label']['severity']}"
             for r in results for a in r["alarms"] if a["detected"] and not a["severity_ok"]]
    wrong += [f"{r['scenario']}/{x['label']['rule']} " + ("missing" if not x["present"] else f"raised as {x['severity']}")
              for r in results for x in r["records"] if not x["present"] or x["severity"] != "record"]
    pct = 100.0 * len(detected) / len(expected) if expected else 100.0
    return [
        ("detection", len(detected) == len(expected), f"{len(detected)}/{len(expected)} expected alarms raised ({pct:.0f} %, goal 100 %)"
         + (f"; missed: {', '.join(missed)}" if missed else "")),
        ("false alarms", rate <= FALSE_ALARM_GOAL, f"{fa} on {days:.1f} sensor-days of normal scenarios = {rate:.4f} per sensor-day (goal <= {FALSE_ALARM_GOAL})"),
        ("delay", not late, "every raised alarm within its allowance" if not late else "late: " + "; ".join(late)),
        ("labelled", not wrong, "every expected record present and not alarmed, severities as labelled" if not wrong else "; ".join(wrong)),
    ]


# ------------------------------------------------------------------------------------------ report


def short(t: str) -> str:
    return t.replace(":00Z", "Z")


def table(rows: list[list[str]], indent: str = "  ") -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(indent + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def describe(result: dict, took: float | None) -> str:
    r = result
    head = f"{r['scenario']}  ({r['class']}, {r['sensor_days']:.2f} sensor-days" + (f", replay {took:.1f} s)" if took is not None else ")")
    rows = [["expect", "rule", "kind", "channel", "severity", "condition start", "result", "delay s", "allowed s"]]
    for a in r["alarms"]:
        lab = a["label"]
        result = ("LATE" if a["late"] else "detected") + ("" if a["severity_ok"] else f" as {a['severity']}") if a["detected"] else f"MISSED ({a['note']})"
        rows.append(["alarm", lab["rule"], lab["kind"], lab["channel"], lab["severity"], short(lab["condition_start"]), result,
                     f"{a['delay_s']:.0f}" if a["detected"] else "-", str(lab["allowed_delay_s"])])
    for x in r["records"]:
        lab = x["label"]
        result = "MISSING" if not x["present"] else ("recorded" if x["severity"] == "record" else f"ALARMED ({x['severity']})")
        rows.append(["record", lab["rule"], lab["kind"], lab["channel"], lab["severity"], short(lab["condition_start"]), result,
                     f"{x['delay_s']:.0f}" if x["present"] else "-", str(lab["allowed_delay_s"])])
    out = [head]
    if len(rows) > 1:
        out.append(table(rows))
    out.append(f"  false alarms: {len(r['false_alarms'])} ({r['false_rate']:.4f} per sensor-day); other records: {len(r['other_records'])}; tolerated: {len(r['tolerated'])}")
    for e in r["false_alarms"][:10]:
        out.append(f"    FALSE {e.get('severity')} {e.get('rule')} {e.get('channel')} start {e.get('start')} at {e.get('at')}: {e.get('explanation', '')}")
    if len(r["false_alarms"]) > 10:
        out.append(f"    … {len(r['false_alarms']) - 10} more")
    for e in r["tolerated"]:
        out.append(f"    tolerated {e.get('severity')} {e.get('rule')} start {e.get('start')}: {e.get('explanation', '')}")
    for u in r["undetectable"]:
        out.append(f"  n/a: {u['what']} — {u['reason']}")
    return "\n".join(out)


def summary(results: list[dict]) -> str:
    rows = [["scenario", "class", "sensor-days", "alarms", "detected", "max delay s", "false alarms", "per sensor-day", "records ok"]]
    for r in results:
        delays = [a["delay_s"] for a in r["alarms"] if a["detected"]]
        ok = sum(1 for x in r["records"] if x["present"] and x["severity"] == "record")
        rows.append([r["scenario"], r["class"], f"{r['sensor_days']:.2f}", str(len(r["alarms"])), str(sum(a["detected"] for a in r["alarms"])),
                     f"{max(delays):.0f}" if delays else "-", str(len(r["false_alarms"])), f"{r['false_rate']:.4f}", f"{ok}/{len(r['records'])}"])
    return table(rows, indent="")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", action="append", default=[], metavar="NAME", help="only this scenario (repeatable)")
    p.add_argument("--keep", action="store_true", help="keep replay.csv and events.jsonl in each scenario folder")
    p.add_argument("--dir", type=Path, default=generate.DEFAULT_OUT, help="where the scenarios are generated (default .build/scenarios)")
    a = p.parse_args(argv)

    vouch = binary()
    if not vouch.exists():
        print(f"run.py: no vouch binary at {vouch} (swift build --product vouch, or set VOUCH_BIN_DIR)", file=sys.stderr)
        return 2
    started = time.monotonic()
    scenarios = generate.write(a.dir, a.only)
    generated = time.monotonic() - started
    print(f"generated {len(scenarios)} scenarios into {a.dir} in {generated:.2f} s; replaying with {vouch}\n")

    scratch = None if a.keep else Path(tempfile.mkdtemp(prefix="vouch-scenarios-"))
    results, replay_total = [], 0.0
    try:
        for s in scenarios:
            folder = a.dir / s.name
            labels = json.loads((folder / "labels.json").read_text())
            try:
                events, took = replay(vouch, folder, folder if a.keep else scratch / s.name)
            except CannotRun as e:
                print(f"run.py: the suite cannot run: {e}", file=sys.stderr)
                if NOT_BUILT in str(e):
                    print("run.py: the detectors are not merged into this build yet; nothing was scored", file=sys.stderr)
                return 2
            replay_total += took
            result = score(labels, events)
            results.append(result)
            print(describe(result, took) + "\n")
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    print(summary(results))
    rows = sum(json.loads((a.dir / s.name / "labels.json").read_text())["rows"] for s in scenarios)
    print(f"\nreplayed {rows} rows in {replay_total:.1f} s ({rows / replay_total:.0f} rows/s); generation {generated:.2f} s\n" if replay_total else "")
    failed = []
    for name, met, text in goals(results):
        print(f"{'ok  ' if met else 'FAIL'}  {name}: {text}")
        if not met:
            failed.append(name)
    if failed:
        print(f"\nrun.py: goals not met: {', '.join(failed)}")
        return 1
    print("\nrun.py: every goal met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
