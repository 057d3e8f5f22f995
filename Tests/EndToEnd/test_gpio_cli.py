"""`vouch gpio` on this host, which has no GPIO chips: what a technician sees when a board file does not
fit the gateway, and when the board named does not exist. Lines and edges on a real kernel are checked
inside the VM (scripts/gpio-vm-test), where `vouch gpio list --board sim` must find every line.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VOUCH = Path(os.environ.get("VOUCH_BIN_DIR") or ROOT / ".build" / "debug") / "vouch"
BOARDS = ROOT / "boards"


def vouch(*args):
    assert VOUCH.exists(), f"{VOUCH} missing: run `swift build` first"
    return subprocess.run([str(VOUCH), *map(str, args)], capture_output=True, text=True, timeout=60)


@pytest.fixture(autouse=True)
def no_gpio_chips_here():
    if list(Path("/dev").glob("gpiochip*")):
        pytest.skip("this host has GPIO chips: these tests expect none (the VM test covers real chips)")


def test_a_board_that_does_not_fit_says_what_is_missing():
    r = vouch("gpio", "list", "--board", "sim", "--boards", BOARDS)
    assert r.returncode == 0, r.stderr
    assert 'board sim does not fit this gateway: no chip labelled "vouch-sim", "vouch-sim-b"' in r.stdout
    doc = json.loads(vouch("gpio", "list", "--board", "sim", "--boards", BOARDS, "--json").stdout)
    assert doc["chips"] == []
    assert doc["board"]["missing_chips"] == ["vouch-sim", "vouch-sim-b"]
    assert doc["board"]["file"] == f"{BOARDS}/sim/board.toml"
    missing = [(l["chip"], l["name"], l["offset"]) for l in doc["board"]["missing_lines"]]
    assert len(missing) == 20 and missing[0] == ("vouch-sim", "door", 0) and missing[-1] == ("vouch-sim-b", "b3", 3)
    # A chip asked for by label that is not here is an error naming the chips there are (none).
    r = vouch("gpio", "list", "--board", "sim", "--boards", BOARDS, "--chip", "vouch-sim-b")
    assert r.returncode == 69 and 'no GPIO chip labelled "vouch-sim-b"' in r.stderr, (r.returncode, r.stderr)


def test_an_unknown_board_is_a_config_error_naming_the_boards_there():
    r = vouch("gpio", "list", "--board", "rpi3", "--boards", BOARDS)
    assert r.returncode == 78, (r.returncode, r.stdout, r.stderr)
    assert 'board "rpi3" not found' in r.stderr and 'did you mean "rpi4"?' in r.stderr
    assert "(available: iot2050, rpi4, rpi5, sim)" in r.stderr
