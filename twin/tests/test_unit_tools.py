"""The simulated NVIDIA tools of the twin unit: nvpmodel, jetson_clocks, tegrastats, nvidia-smi, image loading."""

import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOTFS = Path(__file__).resolve().parents[2] / "twin/unit/rootfs"
sys.path.insert(0, str(ROOTFS / "usr/local/lib/thor-twin"))
from thor_twin import images, memd, power, state, tegrastats

CONF = str(ROOTFS / "etc/nvpmodel.conf")


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.setattr(power.os, "geteuid", lambda: 0)
    p = state.Paths(run=str(tmp_path / "run"), lib=str(tmp_path / "lib"))
    p.docker_pid = str(tmp_path / "docker.pid")
    p.makedirs()
    return p


def test_nvpmodel_conf_defaults_to_120w():
    modes, default = power.read_conf(CONF)
    assert modes[0] == "MAXN" and modes[1] == "120W" and default == 1


def test_nvpmodel_query_set_and_persist(paths, capsys):
    assert power.nvpmodel(["-q"], paths, CONF) == 0
    assert capsys.readouterr().out == "NV Power Mode: 120W\n1\n"
    assert power.nvpmodel(["-m", "0"], paths, CONF) == 0
    power.nvpmodel(["-q"], paths, CONF)
    assert capsys.readouterr().out == "NV Power Mode: MAXN\n0\n"
    assert state.load_faults(paths)["power_mode"] == 0  # persistent (/var/lib/thor-twin)


def test_nvpmodel_refuses_unknown_modes_and_non_root(paths, capsys, monkeypatch):
    assert power.nvpmodel(["-m", "9"], paths, CONF) == 1
    assert "Invalid mode" in capsys.readouterr().err
    monkeypatch.setattr(power.os, "geteuid", lambda: 1000)
    assert power.nvpmodel(["-m", "0"], paths, CONF) == 1
    assert state.load_faults(paths)["power_mode"] is None


def test_nvpmodel_fails_knob_breaks_only_mode_changes(paths, capsys):
    power.nvpmodel(["-m", "3"], paths, CONF)
    state.save_faults(paths, {**state.load_faults(paths), "nvpmodel_fails": True})
    capsys.readouterr()
    assert power.nvpmodel(["-m", "0"], paths, CONF) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err.startswith("NVPM ERROR: Error parsing ") and "failed to set power mode 0" in out.err
    assert state.load_faults(paths)["power_mode"] == 3  # unchanged
    assert power.nvpmodel(["-q"], paths, CONF) == 0
    assert capsys.readouterr().out == "NV Power Mode: 70W\n3\n"
    assert power.nvpmodel(["-m", "3"], paths, CONF) == 1  # even to the current mode
    assert power.nvpmodel(["-p"], paths, CONF) == 0
    state.save_faults(paths, {**state.load_faults(paths), "nvpmodel_fails": False})
    assert power.nvpmodel(["-m", "0"], paths, CONF) == 0
    assert state.load_faults(paths)["power_mode"] == 0


def _freqs(text, prefix):
    line = next(x for x in text.splitlines() if x.startswith(prefix))
    return dict(re.findall(r"(MinFreq|MaxFreq|CurrentFreq)=(\d+)", line))


def test_jetson_clocks_pins_store_restore(paths, tmp_path, capsys):
    store = str(tmp_path / "l4t_dfs.conf")
    power.jetson_clocks(["--store", store], paths, CONF)
    unpinned = power.show(paths, CONF)
    assert _freqs(unpinned, "GPU")["MinFreq"] != _freqs(unpinned, "GPU")["MaxFreq"]
    assert power.jetson_clocks([], paths, CONF) == 0
    pinned = power.show(paths, CONF)
    for prefix in ("cpu0:", "cpu13:", "GPU"):
        assert _freqs(pinned, prefix)["MinFreq"] == _freqs(pinned, prefix)["MaxFreq"]
    assert "NV Power Mode: 120W" in pinned
    assert power.jetson_clocks(["--restore", store], paths, CONF) == 0
    assert power.clocks_read(paths) == {"pinned": False}
    assert power.jetson_clocks(["--restore", str(tmp_path / "none")], paths, CONF) == 1


def test_a_mode_change_unpins_the_clocks(paths):
    power.jetson_clocks([], paths, CONF)
    power.nvpmodel(["-m", "0"], paths, CONF)
    assert power.clocks_read(paths) == {"pinned": False}


TEGRASTATS_JP7 = re.compile(
    r"^\d\d-\d\d-\d{4} \d\d:\d\d:\d\d RAM (\d+)/125772MB \(lfb \d+x4MB\) SWAP 0/0MB \(cached 0MB\) "
    r"CPU \[(\d+%@\d+,){13}\d+%@\d+\] cpu@[\d.]+C tj@[\d.]+C soc012@[\d.]+C gpu@[\d.]+C soc345@[\d.]+C "
    r"VDD_GPU \d+mW/\d+mW/\d+mW VDD_CPU_SOC_MSS \d+mW/\d+mW/\d+mW VIN_SYS_5V0 \d+mW/\d+mW/\d+mW VIN \d+mW/\d+mW/\d+mW$"
)


def test_tegrastats_line_has_the_jetpack7_format():
    model = memd.memory_model(baseline=4 * state.GIB, page_cache=0, stuck=0, allocated=20 * state.GIB)
    text = tegrastats.line(model, pinned=False, mode_name="120W", now=0)
    match = TEGRASTATS_JP7.match(text)
    assert match, text
    assert int(match.group(1)) == (4 * state.GIB - memd.BUFFERS - memd.CACHE_FLOOR + 20 * state.GIB) // (1 << 20)
    assert "GR3D_FREQ" not in text


@pytest.fixture
def smi(tmp_path):
    """The stub nvidia-smi pointed at a temporary device directory."""
    if not shutil.which("sh"):
        pytest.skip("needs /bin/sh")
    device = tmp_path / "gpu"
    (device / "alloc").mkdir(parents=True)
    script = tmp_path / "nvidia-smi"
    script.write_text((ROOTFS / "usr/bin/nvidia-smi").read_text().replace("dir=/run/nvidia-twin", f"dir={device}", 1))

    def _run(*args, nvml_ok=True):
        (device / "device.json").write_text(json.dumps(memd.device_json({**state.DEFAULT_FAULTS, "nvml_ok": nvml_ok}), indent=1))
        return subprocess.run(["sh", str(script), *args], capture_output=True, text=True, check=False)

    _run.device = device
    return _run


def test_nvidia_smi_table_is_thor_shaped(smi):
    res = smi()
    lines = res.stdout.splitlines()
    assert res.returncode == 0
    assert "simulated" in lines[0]
    assert all(len(x) == 91 for x in lines[1:] if x)
    assert "| NVIDIA-SMI 580.00                 Driver Version: 580.00         CUDA Version: 13.0     |" in lines
    assert any(x.startswith("|   0  NVIDIA Thor  ") and "Off" in x for x in lines)
    assert any("Not Supported" in x for x in lines)
    assert any("No running processes found" in x for x in lines)


def test_nvidia_smi_queries(smi):
    assert smi("--query-gpu=name,driver_version,memory.used", "--format=csv").stdout == (
        "name, driver_version, memory.used [MiB]\nNVIDIA Thor, 580.00, [N/A]\n")
    assert smi("--query-gpu=compute_cap", "--format=csv,noheader").stdout == "11.0\n"
    assert smi("-L").stdout.startswith("GPU 0: NVIDIA Thor (UUID: GPU-")
    assert smi("--query-gpu=bogus", "--format=csv").returncode == 2
    (smi.device / "alloc" / "a.json").write_text(json.dumps({"bytes": 25 * 2**30, "owner": "vllm", "pid": 42}))
    assert smi("--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader,nounits").stdout == "42, vllm, 25600\n"
    assert any(x.startswith("|    0   N/A  N/A") and "vllm" in x and x.endswith("25600MiB |") for x in smi().stdout.splitlines())


def test_nvidia_smi_nvml_failure(smi):
    res = smi(nvml_ok=False)
    assert (res.returncode, res.stdout) == (255, "Failed to initialize NVML: Unknown Error\n")


def _docker_save_tar(path, config_name, tags):
    with tarfile.open(path, "w") as tar:
        data = json.dumps([{"Config": config_name, "RepoTags": tags, "Layers": []}]).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_tar_images_reads_legacy_and_oci_manifests(tmp_path):
    _docker_save_tar(tmp_path / "a.tar", "abc123.json", ["thor-twin/cuda:13.0.0-runtime-ubuntu24.04"])
    _docker_save_tar(tmp_path / "b.tar", "blobs/sha256/def456", None)
    assert images.tar_images(tmp_path / "a.tar") == [("sha256:abc123", ["thor-twin/cuda:13.0.0-runtime-ubuntu24.04"])]
    assert images.tar_images(tmp_path / "b.tar") == [("sha256:def456", [])]


def test_load_all_loads_only_missing_images(tmp_path, capsys):
    _docker_save_tar(tmp_path / "a.tar", "aaa.json", ["x:1"])
    _docker_save_tar(tmp_path / "b.tar", "bbb.json", ["y:1"])
    (tmp_path / "junk.tar").write_bytes(b"not a tar")
    log = tmp_path / "docker.log"
    fake = tmp_path / "docker"
    # a fake docker CLI: x:1 is present with the right id, y:1 is not
    fake.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$*" in
  "image inspect -f {{{{.Id}}}} x:1") echo sha256:aaa ;;
  "image inspect"*) exit 1 ;;
  load*) echo "Loaded image: y:1" ;;
esac
""")
    fake.chmod(0o755)
    assert images.load_all(str(tmp_path), docker=str(fake)) == 1  # junk.tar
    calls = log.read_text().splitlines()
    assert [c for c in calls if c.startswith("load")] == [f"load -q -i {tmp_path}/b.tar"]
    out = capsys.readouterr().out
    assert "a.tar: present" in out and "b.tar: Loaded image: y:1" in out and "junk.tar: not a docker image" in out
    assert images.load_all(str(tmp_path), docker=str(fake), check_only=True) == 2
