"""Live checks of one running twin unit over SSH (skipped unless THOR_TWIN_LIVE=1).

Bring a fleet up first (playbooks/sim/fleet_up.yml). THOR_TWIN_HOST picks the unit (default thor-01's
address); the fleet key is build/sim/fleet_key. The tests change the unit's fault knobs and reboot it;
they clear the knobs at the end.
"""

import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = os.environ.get("THOR_TWIN_HOST", "172.30.38.11")
CUDA = "thor-twin/cuda:13.0.0-runtime-ubuntu24.04"
GIB_KB = 1 << 20

pytestmark = [
    pytest.mark.twin,
    pytest.mark.skipif(os.environ.get("THOR_TWIN_LIVE") != "1", reason="needs a running twin unit (THOR_TWIN_LIVE=1)"),
]


def ssh(command, check=True, timeout=60):
    res = subprocess.run(
        ["ssh", "-i", str(REPO / "build/sim/fleet_key"), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=3", "-o", "BatchMode=yes", f"workshop@{HOST}", command],
        capture_output=True, text=True, timeout=timeout, check=False,
    )
    if check and res.returncode:
        raise AssertionError(f"{command!r} exited {res.returncode}: {res.stdout}{res.stderr}")
    return res


def meminfo_kb():
    return {line.split(":")[0]: int(line.split()[1]) for line in ssh("cat /proc/meminfo").stdout.splitlines()}


def until(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        time.sleep(0.2)
    return True


@pytest.fixture(autouse=True)
def clean_faults():
    ssh("sudo thor-twin fault clear >/dev/null")
    yield
    ssh("sudo thor-twin fault clear >/dev/null")


def test_nvidia_smi_needs_the_nvidia_runtime():
    with_runtime = ssh(f"docker run --rm --runtime=nvidia {CUDA} nvidia-smi")
    assert "NVIDIA Thor" in with_runtime.stdout and "CUDA Version: 13.0" in with_runtime.stdout
    without = ssh(f"docker run --rm {CUDA} nvidia-smi", check=False)
    assert without.returncode != 0 and "nvidia-smi" in without.stderr
    # the workshop's broken start state: the nvidia runtime exists but is not the default
    assert ssh("docker info -f '{{.DefaultRuntime}} {{json .Runtimes}}'").stdout.startswith("runc ")


def test_nvml_fault_reaches_containers():
    ssh("sudo thor-twin fault set nvml_ok=false >/dev/null")
    res = ssh(f"docker run --rm --runtime=nvidia {CUDA} nvidia-smi", check=False)
    assert res.returncode == 255 and "Failed to initialize NVML: Unknown Error" in res.stdout


def test_meminfo_is_the_thor_model():
    info = meminfo_kb()
    assert info["MemTotal"] == 128790528
    assert info["SwapTotal"] == 0
    assert abs(info["MemTotal"] - info["MemFree"] - 4 * GIB_KB) < GIB_KB  # baseline 4 GiB, nothing else
    assert "125772" in ssh("free -m").stdout.splitlines()[1]


def test_drop_caches_frees_the_page_cache():
    ssh("sudo thor-twin memory cache 30 >/dev/null")
    assert meminfo_kb()["Cached"] > 30 * GIB_KB
    ssh("sudo sysctl -q -w vm.drop_caches=3")
    assert until(lambda: meminfo_kb()["Cached"] < GIB_KB)
    ssh("sudo thor-twin memory cache 10 >/dev/null")
    ssh("sync; echo 3 | sudo tee /proc/sys/vm/drop_caches >/dev/null")
    assert until(lambda: meminfo_kb()["Cached"] < GIB_KB)


def _gpu_client(gib):
    """A container that registers gib GiB of GPU memory through the runtime's device directory, then exits."""
    payload = f'{{"bytes": {gib << 30}, "page_cache_bytes": 0, "owner": "live-test"}}'
    script = f"exec 9>/run/nvidia-twin/alloc/live-$$.json; flock 9; echo '{payload}' >&9; sleep 2"
    return ssh(f"docker run --rm --runtime=nvidia {CUDA} sh -c {shlex.quote(script)}", timeout=30)


def test_stuck_memory_stays_until_docker_restarts():
    ssh("sudo thor-twin fault set memory_stuck_on_release=true >/dev/null")
    before = meminfo_kb()["MemFree"]
    _gpu_client(20)
    assert until(lambda: before - meminfo_kb()["MemFree"] >= 20 * GIB_KB)
    ssh("sudo sysctl -q -w vm.drop_caches=3")
    time.sleep(0.5)
    assert before - meminfo_kb()["MemFree"] >= 20 * GIB_KB  # drop_caches does not help
    ssh("sudo systemctl restart docker")
    assert until(lambda: abs(before - meminfo_kb()["MemFree"]) < GIB_KB)


def test_reboot_changes_boot_id_and_keeps_persistent_state():
    ssh("sudo nvpmodel -m 0 && sudo jetson_clocks && sudo thor-twin fault set memory_stuck_gib=25 >/dev/null")
    boot_id = ssh("cat /proc/sys/kernel/random/boot_id").stdout.strip()
    ssh('sudo shutdown -r 0 "live test"')
    assert until(lambda: ssh("cat /proc/sys/kernel/random/boot_id", check=False).stdout.strip() not in ("", boot_id), 60)
    assert ssh("systemctl is-system-running --wait", check=False).stdout.strip() in ("running", "degraded")
    assert ssh("nvpmodel -q").stdout == "NV Power Mode: MAXN\n0\n"  # persistent
    assert "FreqOverride=0" in ssh("jetson_clocks --show").stdout  # lost at reboot
    assert ssh("thor-twin fault get memory_stuck_gib").stdout.strip() == "0.0"  # a reboot clears stuck memory
    ssh("sudo nvpmodel -m 1")


def test_nvpmodel_fails_knob():
    ssh("sudo thor-twin fault set nvpmodel_fails=true >/dev/null")
    res = ssh("sudo nvpmodel -m 0", check=False)
    assert res.returncode == 1 and res.stderr.startswith("NVPM ERROR: ")
    assert ssh("nvpmodel -q").stdout == "NV Power Mode: 120W\n1\n"


def test_dockerd_hang_knob():
    ssh("sudo thor-twin fault set dockerd_hang=true >/dev/null")
    assert ssh("timeout 5 docker info", check=False).returncode == 124
    assert ssh("systemctl is-active docker").stdout.strip() == "active"
    ssh("sudo systemctl restart docker", timeout=30)  # completes; the new dockerd hangs once it is up
    assert until(lambda: ssh("timeout 2 docker ps", check=False).returncode == 124, 10)
    ssh("sudo thor-twin fault set dockerd_hang=false >/dev/null")
    assert until(lambda: ssh("timeout 2 docker info", check=False).returncode == 0, 5)
