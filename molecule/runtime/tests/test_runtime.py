"""What playbooks/runtime.yml leaves on each twin unit, seen from the workshop user's SSH session."""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[1] / "files"
NVIDIA = {"args": [], "path": "nvidia-container-runtime"}
# The daemon.json a twin unit boots with: the workshop's broken state.
TWIN_DEFAULT = Path(__file__).resolve().parents[3] / "twin" / "unit" / "rootfs" / "etc" / "docker" / "daemon.json"
GIB = 1 << 30
EXPECTED_RUNGS = {
    "workshop_broken": None,
    "other_keys": None,
    "stuck_memory": ["drop_caches", "stop_containers", "restart_docker"],
    "missing_file": ["drop_caches"],
}


def read_json(host, path):
    with host.sudo():
        return json.loads(host.file(path).content_string)


def test_daemon_json_makes_nvidia_the_default(host):
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert config["default-runtime"] == "nvidia"
    assert config["runtimes"]["nvidia"] == NVIDIA


def test_docker_reports_the_nvidia_default_runtime(host):
    assert host.check_output("docker info --format '{{.DefaultRuntime}}'") == "nvidia"


def test_cuda_container_sees_the_gpu_without_asking_for_a_runtime(host, hostvars):
    result = host.run("docker run --rm %s nvidia-smi", hostvars["workshop_cuda_test_image"])
    assert result.rc == 0, result.stdout + result.stderr
    assert "NVIDIA Thor" in result.stdout
    assert "NVML" not in result.stdout + result.stderr


def test_every_other_key_is_kept(host, case):
    if case != "other_keys":
        pytest.skip("only thor-m2 starts with other keys")
    original = json.loads((FILES / "daemon-other-keys.json").read_text())
    config = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert {k: v for k, v in config.items() if k != "default-runtime"} == original
    assert list(config) == [*original, "default-runtime"]


def test_backup_only_where_the_file_was_rewritten(host, case):
    with host.sudo():
        names = host.check_output("ls -1 /etc/docker").split()
        backups = [n for n in names if n.startswith("daemon.json.") and n.endswith("~")]
        if case in ("workshop_broken", "other_keys"):
            original = (TWIN_DEFAULT if case == "workshop_broken" else FILES / "daemon-other-keys.json").read_bytes()
            assert len(backups) == 1
            content = host.file(f"/etc/docker/{backups[0]}").content
            assert hashlib.sha256(content).hexdigest() == hashlib.sha256(original).hexdigest()
        else:
            # thor-m3 was right already and thor-m4 had no file: nothing to back up.
            assert backups == []


def test_runtime_fact(host):
    fact = read_json(host, "/etc/ansible/facts.d/thor_runtime.fact")
    assert fact["verified"] is True
    assert fact["default_runtime"] == "nvidia"
    assert "nvidia" in fact["runtimes"]


def test_memory_fact_records_the_ladder(host, case):
    fact = read_json(host, "/etc/ansible/facts.d/thor_memory.fact")
    assert fact["fits"] is True
    assert (fact["total_gib"], fact["need_gib"], fact["utilization"]) == (122.82, 110.54, 0.9)
    expected = EXPECTED_RUNGS[case]
    if expected is None:
        assert fact["last_remediation"] is None
    else:
        assert fact["last_remediation"]["rungs"] == expected
        assert fact["last_remediation"]["free_gib_before"] < 110.54 <= fact["last_remediation"]["free_gib_after"]
        assert fact["last_remediation"]["stopped_containers"] == (["vllm"] if case == "stuck_memory" else [])


def test_memory_fits_vllm_now(host):
    meminfo = dict(line.split(":", 1) for line in host.file("/proc/meminfo").content_string.splitlines())
    free, total = (int(meminfo[k].split()[0]) * 1024 for k in ("MemFree", "MemTotal"))
    assert free >= 0.9 * total, f"free {free / GIB:.2f}/{total / GIB:.2f} GiB"


def test_ladder_kept_open_webui_and_stopped_the_leftover_vllm(host, case):
    if case != "stuck_memory":
        pytest.skip("only thor-m3 runs containers")
    assert host.docker("open-webui").is_running
    assert not host.docker("vllm").is_running


def test_maxn_and_pinned_clocks(host):
    assert host.check_output("nvpmodel -q").splitlines()[0] == "NV Power Mode: MAXN"
    gpu = next(line for line in host.check_output("jetson_clocks --show").splitlines() if line.startswith("GPU "))
    fields = dict(part.split("=") for part in gpu.split()[1:])
    assert fields["MinFreq"] == fields["MaxFreq"]


def test_swap_file(host):
    swapfile = host.file("/swapfile")
    with host.sudo():
        assert swapfile.is_file
        assert (swapfile.user, swapfile.mode, swapfile.size) == ("root", 0o600, GIB)
        assert host.check_output("blkid -o value -s TYPE /swapfile") == "swap"
        # swapon is simulated in this scenario (files/swap-twin.sh); fstab is real.
        assert "/swapfile" in host.check_output("swapon --show=NAME --noheadings --raw").split()
    assert "/swapfile none swap sw 0 0" in host.file("/etc/fstab").content_string


def test_vllm_twin_serves_with_the_default_runtime(host, case, hostvars):
    """The symptom is gone: the same `vllm serve` that found no GPU in prepare (no NVIDIA runtime) now serves."""
    if case != "workshop_broken":
        pytest.skip("thor-m1 is the unit prepare showed failing")
    env = " ".join(f"-e {k}={shlex.quote(v)}" for k, v in hostvars["molecule_vllm_env"].items())
    volumes = " ".join(f"-v {shlex.quote(v)}" for v in hostvars["molecule_vllm_volumes"])
    host.run("docker rm -f vllm-after")
    started = host.run(
        f"docker run -d --name vllm-after --network host {env} {volumes} "
        f"{shlex.quote(hostvars['workshop_vllm_image'])} vllm serve openai/gpt-oss-120b"
    )
    assert started.rc == 0, started.stderr
    try:
        for _ in range(90):
            if host.run("curl -sf http://127.0.0.1:8000/health").rc == 0:
                break
            if not host.docker("vllm-after").is_running:
                break
            time.sleep(1)
        logs = host.run("docker logs vllm-after 2>&1").stdout
        assert host.run("curl -sf http://127.0.0.1:8000/health").rc == 0, logs[-2000:]
        models = json.loads(host.check_output("curl -sf http://127.0.0.1:8000/v1/models"))
        assert [m["id"] for m in models["data"]] == ["openai/gpt-oss-120b"]
        assert "NVML" not in logs
        assert "Resolved architecture: GptOssForCausalLM" in logs
    finally:
        host.run("docker rm -f vllm-after")
        with host.sudo():
            host.run("sysctl -w vm.drop_caches=3")
