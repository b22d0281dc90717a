from __future__ import annotations

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _thor

THOR_RELEASE = (
    "# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, "
    "DATE: Fri Aug 22 00:55:42 UTC 2025\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
)


def test_nv_tegra_release_thor():
    got = _thor.parse_nv_tegra_release(THOR_RELEASE)
    assert got["version"] == "38.2.0"
    assert (got["major"], got["minor"], got["patch"]) == (38, 2, 0)
    assert got["jetpack_major"] == 7
    assert got["gcid"] == "41844464"
    assert got["eabi"] == "aarch64"
    assert got["date"] == "Fri Aug 22 00:55:42 UTC 2025"
    assert got["kernel_variant"] == "oot"


@pytest.mark.parametrize(
    ("line", "version", "jetpack"),
    [
        ("# R38 (release), REVISION: 2.2, GCID: 1, BOARD: generic, EABI: aarch64, DATE: x", "38.2.2", 7),
        ("# R39 (release), REVISION: 2, GCID: 1, BOARD: generic, EABI: aarch64, DATE: x", "39.2.0", 7),
        ("# R36 (release), REVISION: 4.4, GCID: 1, BOARD: generic, EABI: aarch64, DATE: x", "36.4.4", 6),
        ("# R35 (release), REVISION: 5.0, GCID: 1, BOARD: t186ref, EABI: aarch64, DATE: x", "35.5.0", None),
    ],
)
def test_nv_tegra_release_versions(line, version, jetpack):
    got = _thor.parse_nv_tegra_release(line + "\n")
    assert got["version"] == version
    assert got["jetpack_major"] == jetpack


@pytest.mark.parametrize("text", [None, "", "Ubuntu 24.04\n", "R38 release\n"])
def test_nv_tegra_release_not_l4t(text):
    assert _thor.parse_nv_tegra_release(text) is None


def test_meminfo_and_summary_use_memfree():
    text = (
        "MemTotal:       128790528 kB\nMemFree:        15152128 kB\nMemAvailable:   120000000 kB\n"
        "Buffers:          100 kB\nCached:         100000000 kB\nSwapTotal:  0 kB\nSwapFree: 0 kB\nHugePages_Total: 0\n"
    )
    info = _thor.parse_meminfo(text)
    assert info["MemTotal"] == 128790528 * 1024
    assert info["HugePages_Total"] == 0
    summary = _thor.memory_summary(info)
    assert summary["total_gib"] == 122.82
    assert summary["free_gib"] == 14.45
    assert summary["available_bytes"] == 120000000 * 1024
    assert summary["cached_bytes"] == (100000000 + 100) * 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("NV Power Mode: 120W\n1\n", {"name": "120W", "id": 1}),
        ("NV Power Mode: MAXN\n0\n", {"name": "MAXN", "id": 0}),
        ("NV Power Mode[1]: 120W\n", {"name": "120W", "id": 1}),
        ("NVPM WARN: something\nNV Power Mode: 90W\n2\n", {"name": "90W", "id": 2}),
        ("nvpmodel: command failed\n", None),
        (None, None),
    ],
)
def test_nvpmodel_query(text, expected):
    assert _thor.parse_nvpmodel_query(text) == expected


CLOCKS_DEFAULT = """SOC family:tegra264  Machine:NVIDIA Jetson AGX Thor Developer Kit
Online CPUs: 0-1
cpu0: Online=1 Governor=schedutil MinFreq=972000 MaxFreq=2601000 CurrentFreq=1190400 IdleStates: C1=1
cpu1: Online=1 Governor=schedutil MinFreq=972000 MaxFreq=2601000 CurrentFreq=972000 IdleStates: C1=1
cpu2: Online=0 Governor=schedutil MinFreq=972000 MaxFreq=972000 CurrentFreq=972000
GPU MinFreq=0 MaxFreq=1575000000 CurrentFreq=0
EMC MinFreq=665600000 MaxFreq=4266000000 CurrentFreq=4266000000 FreqOverride=0
NV Power Mode: 120W
"""


def test_jetson_clocks_show_not_pinned():
    got = _thor.parse_jetson_clocks_show(CLOCKS_DEFAULT)
    assert got["pinned"] is False
    assert got["online_cpus"] == 2
    assert got["gpu"] == {"min": 0, "max": 1575000000, "current": 0}
    assert got["emc"]["max"] == 4266000000


def test_jetson_clocks_show_pinned():
    pinned = CLOCKS_DEFAULT.replace("MinFreq=972000 MaxFreq=2601000", "MinFreq=2601000 MaxFreq=2601000").replace(
        "GPU MinFreq=0", "GPU MinFreq=1575000000"
    )
    assert _thor.parse_jetson_clocks_show(pinned)["pinned"] is True


def test_jetson_clocks_show_unparseable():
    assert _thor.parse_jetson_clocks_show("jetson_clocks: must be run as root\n") is None


def test_docker_info():
    info = {
        "ServerVersion": "28.2.2",
        "DefaultRuntime": "runc",
        "Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}},
        "Driver": "overlay2",
        "ContainersRunning": 2,
    }
    assert _thor.parse_docker_info(info) == {
        "server_version": "28.2.2",
        "default_runtime": "runc",
        "runtimes": ["nvidia", "runc"],
        "storage_driver": "overlay2",
        "containers_running": 2,
    }
