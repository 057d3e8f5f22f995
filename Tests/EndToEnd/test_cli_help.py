"""`--help` of every command of `vouch` and `vouch-bank`, held to a snapshot (Tests/EndToEnd/golden/help),
and each with an example: a technician reads these on a serial console, so a change to them is
reviewed like code. Regenerate after a deliberate change with VOUCH_UPDATE_GOLDEN=1."""
import difflib
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug")
GOLDEN = ROOT / "Tests" / "EndToEnd" / "golden" / "help"
UPDATE = os.environ.get("VOUCH_UPDATE_GOLDEN") == "1"


def help_text(command):
    # A fixed width: ArgumentParser wraps to $COLUMNS.
    run = subprocess.run([str(BIN / command[0]), *command[1:], "--help"], capture_output=True, text=True,
                         env=dict(os.environ, COLUMNS="100"))
    assert run.returncode == 0, (command, run.stderr)
    return run.stdout


def commands():
    """Every command, found by walking the SUBCOMMANDS sections of the help itself."""
    found = []
    todo = [["vouch"], ["vouch-bank"]]
    while todo:
        command = todo.pop(0)
        found.append(command)
        text = help_text(command)
        if "SUBCOMMANDS:" not in text:
            continue
        section = text.split("SUBCOMMANDS:", 1)[1]
        for line in section.splitlines():
            m = re.match(r"^  ([a-z][a-z0-9-]*)( \(default\))?\s", line + " ")
            if m and m.group(1) != "help":
                todo.append(command + [m.group(1)])
    return found


def test_every_help_matches_its_snapshot_and_shows_an_example():
    seen = set()
    problems = []
    for command in commands():
        name = "_".join(command) + ".txt"
        seen.add(name)
        text = help_text(command)
        if "Example" not in text:
            problems.append(f"{' '.join(command)} --help shows no example")
        path = GOLDEN / name
        if UPDATE:
            path.write_text(text)
            continue
        if not path.exists():
            problems.append(f"{' '.join(command)}: no snapshot {path.relative_to(ROOT)} (VOUCH_UPDATE_GOLDEN=1 makes it)")
            continue
        if path.read_text() != text:
            diff = "".join(difflib.unified_diff(path.read_text().splitlines(True), text.splitlines(True), str(path.name), "now"))
            problems.append(f"{' '.join(command)} --help changed:\n{diff}")
    stale = sorted(p.name for p in GOLDEN.glob("*.txt") if p.name not in seen)
    if UPDATE:
        for name in stale:
            (GOLDEN / name).unlink()
    else:
        assert not stale, f"snapshots of commands that no longer exist: {stale}"
    assert len(seen) >= 30, sorted(seen)
    assert not problems, "\n".join(problems)


def test_shell_completions_know_every_command():
    # ArgumentParser writes them; the package installs them (/usr/share/bash-completion/completions/…).
    for tool in ("vouch", "vouch-bank"):
        for shell in ("bash", "zsh", "fish"):
            run = subprocess.run([str(BIN / tool), "--generate-completion-script", shell], capture_output=True, text=True)
            assert run.returncode == 0 and run.stdout, (tool, shell, run.stderr)
    script = subprocess.run([str(BIN / "vouch"), "--generate-completion-script", "bash"], capture_output=True, text=True).stdout
    for command in ("status", "sensors", "events", "outbox", "doctor", "apply", "release"):
        assert command in script, command
