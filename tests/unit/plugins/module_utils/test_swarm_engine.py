from __future__ import annotations

import json
import zipfile

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _swarm
from ansible_collections.jetson_thor.workshop.plugins.module_utils import _swarm_engine as eng

MIB = 1024 * 1024


@pytest.mark.parametrize(
    ("total", "piece"),
    [(1, 256 * 1024), (50 * MIB, 256 * 1024), (8192 * MIB, MIB), (134 * 10**9, 16 * MIB), (10**13, 16 * MIB)],
)
def test_piece_size_is_a_power_of_two_within_bounds(total, piece):
    assert eng.piece_size_for(total) == piece


def test_fleet_progress_tracks_bytes_rate_eta_and_done():
    progress = eng.FleetProgress([("thor-01", "10.0.0.11"), ("thor-02", "10.0.0.12")], 1000, deadline=10**10)
    progress.update({"10.0.0.11": (0.2, False)}, now=100.0)
    progress.update({"10.0.0.11": (0.5, False)}, now=101.0)
    snap = progress.snapshot(101.0, "running")
    one, two = snap["units"]
    assert (one["state"], one["bytes"], one["rate"], one["eta"]) == ("receiving", 500, 300.0, 1.7)
    assert two["state"] == "waiting" and not snap["all_done"]
    progress.update({"10.0.0.11": (1.0, True), "10.0.0.12": (0.0, True)}, now=102.0)
    assert progress.all_done()
    # done is sticky: a finished unit that disconnects stays done
    progress.update({}, now=103.0)
    assert progress.all_done()
    text = eng.FleetProgress.render(progress.snapshot(103.0, "running"))
    assert "thor-01" in text and "2 of 2 units done" in text


def test_a_unit_that_disconnects_mid_way_is_shown():
    progress = eng.FleetProgress([("thor-01", "10.0.0.11")], 1000, deadline=10**10)
    progress.update({"10.0.0.11": (0.3, False)}, now=1.0)
    progress.update({}, now=2.0)
    assert progress.units["thor-01"]["state"] == "disconnected"
    assert progress.units["thor-01"]["bytes"] == 300


def test_a_unit_the_seed_only_meets_as_a_complete_peer_is_done():
    """At 60 units a unit can complete from the others without the seed ever seeing it connected; the seed's next dial
    meets a complete peer and libtorrent closes that connection at once with 'upload to upload connection' (37) or
    'uninteresting upload-only peer' (38)."""
    progress = eng.FleetProgress([("thor-01", "10.0.0.11"), ("thor-02", "10.0.0.12"), ("thor-03", "10.0.0.13")], 1000,
                                 deadline=10**10)
    progress.started = 1.0
    progress.update({}, now=1.0)
    progress.peer_left("10.0.0.11", 37, now=5.0)
    progress.peer_left("10.0.0.12", 38, now=6.0)
    progress.peer_left("10.0.0.13", 0, now=6.0)  # timed out: says nothing about the unit
    progress.peer_left("10.0.0.99", 37, now=6.0)  # not an expected unit
    one, two, three = progress.snapshot(7.0, "running")["units"]
    assert (one["state"], one["bytes"], one["done_at"]) == ("done", 1000, 4.0)
    assert two["state"] == "done" and three["state"] == "waiting"
    assert not progress.all_done()
    progress.update({"10.0.0.13": (1.0, True)}, now=8.0)
    assert progress.all_done()


def test_human_units():
    assert eng.human_bytes(512) == "512 B"
    assert eng.human_bytes(3 * MIB) == "3.0 MiB"
    assert eng.human_eta(None) == "-"
    assert eng.human_eta(75) == "1m15s"
    assert eng.human_eta(3700) == "1h01m"


def test_unpack_wheel_once(tmp_path):
    wheel = tmp_path / "libtorrent-2.1.1-cp311-cp311-manylinux_2_17_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("libtorrent/__init__.py", "X = 1\n")
    target, changed = _swarm.unpack_wheel(str(wheel), str(tmp_path / "engine"))
    assert changed and (tmp_path / "engine" / wheel.stem / "libtorrent" / "__init__.py").is_file()
    assert _swarm.unpack_wheel(str(wheel), str(tmp_path / "engine")) == (target, False)


def test_unpack_wheel_rejects_unsafe_and_missing(tmp_path):
    wheel = tmp_path / "bad.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("../evil.py", "")
    with pytest.raises(_swarm.SwarmError, match="unsafe"):
        _swarm.unpack_wheel(str(wheel), str(tmp_path / "engine"))
    with pytest.raises(_swarm.SwarmError, match="missing"):
        _swarm.unpack_wheel(str(tmp_path / "none.whl"), str(tmp_path / "engine"))


def test_engine_source_is_the_program():
    source = _swarm.engine_source()
    assert "def main(" in source and "import libtorrent" in source


def test_import_libtorrent_names_the_fix(tmp_path):
    with pytest.raises(_swarm.SwarmError, match="content_distribution_engine_wheel_dir"):
        _swarm.import_libtorrent(str(tmp_path / "nothing-here-libtorrent"))


def test_pid_alive_checks_the_program(tmp_path):
    import os

    assert _swarm.pid_alive(os.getpid())
    assert not _swarm.pid_alive(os.getpid(), script=str(tmp_path / "other.py"))
    assert not _swarm.pid_alive(None)
    assert json.loads(json.dumps(_swarm.paths(str(tmp_path))))["status"].endswith("status.json")
