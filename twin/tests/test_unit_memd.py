"""thor-twin-memd: the meminfo arithmetic, GPU client locks, drop_caches, stuck memory, docker restarts."""

import fcntl
import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "twin/unit/rootfs/usr/local/lib/thor-twin"))
from thor_twin import memd, state

GIB = state.GIB


@pytest.fixture
def paths(tmp_path):
    p = state.Paths(run=str(tmp_path / "run"), lib=str(tmp_path / "lib"))
    p.docker_pid = str(tmp_path / "docker.pid")
    p.makedirs()
    Path(p.drop_caches).write_text("0\n")
    return p


def meminfo(paths):
    return memd.parse_meminfo(Path(paths.gpu, "meminfo").read_text())


def client(paths, name, gib, page_cache_gib=0.0):
    """A live GPU client: its alloc file, locked through an open file description we keep."""
    f = open(os.path.join(paths.alloc, name + ".json"), "w")  # held open on purpose: the lock lives as long as f
    fcntl.flock(f, fcntl.LOCK_EX)
    json.dump({"bytes": int(gib * GIB), "page_cache_bytes": int(page_cache_gib * GIB), "owner": "vllm"}, f)
    f.flush()
    return f


def set_faults(paths, **knobs):
    state.save_faults(paths, {**state.load_faults(paths), **knobs})


def test_memfree_is_total_minus_baseline_cache_stuck_and_allocations():
    model = memd.memory_model(baseline=4 * GIB, page_cache=10 * GIB, stuck=3 * GIB, allocated=20 * GIB)
    assert model["free"] == state.TOTAL_BYTES - 37 * GIB
    assert model["cached"] == memd.CACHE_FLOOR + 10 * GIB
    assert model["free"] < model["available"] <= model["free"] + 10 * GIB + GIB


def test_memfree_never_goes_negative():
    assert memd.memory_model(baseline=4 * GIB, page_cache=0, stuck=200 * GIB, allocated=0)["free"] == 0


def test_rendered_meminfo_is_the_thor_model_in_proc_format():
    text = memd.render_meminfo(memd.memory_model(baseline=4 * GIB, page_cache=GIB, stuck=0, allocated=0))
    assert text.splitlines()[0] == "MemTotal:       128790528 kB"
    info = memd.parse_meminfo(text)
    assert info["MemTotal"] == state.TOTAL_BYTES
    assert info["MemFree"] == state.TOTAL_BYTES - 5 * GIB
    assert info["SwapTotal"] == 0 and info["HugePages_Total"] == 0
    assert "NvMapMemUsed" not in info  # absent on Thor
    # free(1): used = total - free - buffers - cache == baseline minus its buffers/cache floor
    used = info["MemTotal"] - info["MemFree"] - info["Buffers"] - info["Cached"]
    assert used == 4 * GIB - memd.BUFFERS - memd.CACHE_FLOOR


def test_tick_renders_device_and_meminfo(paths):
    memd.tick(paths)
    device = json.loads(Path(paths.gpu, "device.json").read_text())
    assert device["name"] == "NVIDIA Thor" and device["total_bytes"] == state.TOTAL_BYTES
    assert device["nvml_ok"] is True and device["simulated"] is True
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 4 * GIB


def test_tick_rewrites_meminfo_in_place(paths):
    memd.tick(paths)
    inode = os.stat(os.path.join(paths.gpu, "meminfo")).st_ino
    set_faults(paths, memory_baseline_gib=6.0)
    memd.tick(paths)
    assert os.stat(os.path.join(paths.gpu, "meminfo")).st_ino == inode  # a bind mount keeps following it
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 6 * GIB


def test_locked_allocation_counts_and_release_moves_to_page_cache(paths):
    f = client(paths, "a", 20, page_cache_gib=8)
    memd.tick(paths, now=os.stat(f.name).st_mtime + 5)
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 24 * GIB
    f.close()  # the process exits: its lock goes with it
    memd.tick(paths, now=os.stat(f.name).st_mtime + 5)
    assert not os.path.exists(f.name)
    info = meminfo(paths)
    assert info["MemFree"] == state.TOTAL_BYTES - 12 * GIB
    assert info["Cached"] == memd.CACHE_FLOOR + 8 * GIB


def test_a_fresh_unlocked_file_is_not_a_release_yet(paths):
    path = os.path.join(paths.alloc, "new.json")
    Path(path).write_text(json.dumps({"bytes": GIB}))
    now = os.stat(path).st_mtime
    assert memd.scan_allocs(paths.alloc, now=now) == (GIB, [])
    assert memd.scan_allocs(paths.alloc, now=now + 2) == (0, [{"bytes": GIB}])
    assert not os.path.exists(path)


def test_drop_caches_write_clears_the_page_cache_and_reads_back_zero(paths):
    f = client(paths, "a", 10, page_cache_gib=5)
    f.close()
    memd.tick(paths, now=os.stat(f.name).st_mtime + 5)
    assert meminfo(paths)["Cached"] == memd.CACHE_FLOOR + 5 * GIB
    with open(paths.drop_caches, "w") as d:  # echo 3 > /proc/sys/vm/drop_caches
        d.write("3\n")
    memd.tick(paths)
    assert meminfo(paths)["Cached"] == memd.CACHE_FLOOR
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 4 * GIB
    assert Path(paths.drop_caches).read_text() == "0\n"


def test_a_drop_right_after_a_client_exits_also_drops_its_page_cache(paths):
    """`docker rm -f vllm; sysctl -w vm.drop_caches=3` within one memd tick: the exit happened first."""
    f = client(paths, "a", 10, page_cache_gib=5)
    memd.tick(paths, now=os.stat(f.name).st_mtime + 5)
    f.close()
    with open(paths.drop_caches, "w") as d:
        d.write("3\n")
    memd.tick(paths, now=os.stat(f.name).st_mtime + 5)
    assert meminfo(paths)["Cached"] == memd.CACHE_FLOOR
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 4 * GIB


def test_drop_caches_2_only_frees_slab_objects(paths):
    memd.tick(paths)
    state.write_json(paths.runtime, {**state.read_json(paths.runtime), "page_cache_bytes": 2 * GIB})
    Path(paths.drop_caches).write_text("2\n")
    os.utime(paths.drop_caches, ns=(1, 1))
    memd.tick(paths)
    assert meminfo(paths)["Cached"] == memd.CACHE_FLOOR + 2 * GIB


def test_stuck_on_release_keeps_the_allocation_until_docker_restarts(paths):
    set_faults(paths, memory_stuck_on_release=True)
    Path(paths.docker_pid).write_text("100\n")
    f = client(paths, "a", 30)
    f.close()
    memd.tick(paths, now=os.stat(f.name).st_mtime + 5)
    assert state.load_faults(paths)["memory_stuck_gib"] == 30
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 34 * GIB
    Path(paths.drop_caches).write_text("3\n")
    memd.tick(paths)
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 34 * GIB  # drop_caches does not help
    Path(paths.docker_pid).write_text("200\n")  # systemctl restart docker
    memd.tick(paths)
    assert state.load_faults(paths)["memory_stuck_gib"] == 0
    assert meminfo(paths)["MemFree"] == state.TOTAL_BYTES - 4 * GIB


@pytest.mark.parametrize("knob", ["stuck_survives_docker_restart", "stuck_survives_reboot"])
def test_stuck_memory_can_survive_a_docker_restart(paths, knob):
    set_faults(paths, memory_stuck_gib=25.0, **{knob: True})
    Path(paths.docker_pid).write_text("100\n")
    memd.tick(paths)
    Path(paths.docker_pid).write_text("200\n")
    memd.tick(paths)
    assert state.load_faults(paths)["memory_stuck_gib"] == 25


def test_first_docker_start_of_a_boot_clears_nothing(paths):
    set_faults(paths, memory_stuck_gib=25.0)
    memd.tick(paths)
    Path(paths.docker_pid).write_text("100\n")
    memd.tick(paths)
    assert state.load_faults(paths)["memory_stuck_gib"] == 25


@pytest.mark.parametrize(("knobs", "ok"), [({}, True), ({"nvml_ok": False}, False), ({"nvml_broken_until_reboot": True}, False)])
def test_device_json_reports_nvml(paths, knobs, ok):
    set_faults(paths, **knobs)
    memd.tick(paths)
    assert json.loads(Path(paths.gpu, "device.json").read_text())["nvml_ok"] is ok
