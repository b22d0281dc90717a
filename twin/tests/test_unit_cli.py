"""The thor-twin CLI and fault knobs: parsing, persistence, what a reboot heals."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "twin/unit/rootfs/usr/local/lib/thor-twin"))
from thor_twin import boot, cli, memd, state

ROOTFS = Path(__file__).resolve().parents[2] / "twin/unit/rootfs"


@pytest.fixture
def paths(tmp_path, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    (tmp_path / "etc").mkdir()
    status = tmp_path / "status"
    status.write_text("Package: bash\nVersion: 5.2\n\nPackage: nvidia-l4t-core\nStatus: install ok installed\n"
                      "Architecture: all\nVersion: 38.2.2-20250925153837\nDescription: x\n\nPackage: zlib\nVersion: 1\n")
    p = state.Paths(run=str(tmp_path / "run"), lib=str(tmp_path / "lib"), etc=str(tmp_path / "etc"),
                    dpkg_status=str(status))
    p.docker_pid = str(tmp_path / "docker.pid")
    p.makedirs()
    Path(p.drop_caches).write_text("0\n")
    return p


def run(paths, capsys, *argv):
    rc = cli.main(list(argv), paths=paths)
    out = capsys.readouterr()
    return rc, json.loads(out.out) if out.out.strip() else None, out.err


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("nvml_ok=false", ("nvml_ok", False)),
        ("nvml_ok=Yes", ("nvml_ok", True)),
        ("memory_stuck_gib=25.5", ("memory_stuck_gib", 25.5)),
        ("memory_baseline_gib=6", ("memory_baseline_gib", 6.0)),
        ("l4t_release=36", ("l4t_release", 36)),
        ("l4t_revision=4.4", ("l4t_revision", "4.4")),
        ("power_mode=0", ("power_mode", 0)),
        ("power_mode=default", ("power_mode", None)),
        (" stuck_survives_reboot = on", ("stuck_survives_reboot", True)),
        ("dockerd_hang=true", ("dockerd_hang", True)),
        ("dockerd_hang=off", ("dockerd_hang", False)),
        ("nvpmodel_fails=1", ("nvpmodel_fails", True)),
    ],
)
def test_parse_assignment(arg, expected):
    assert state.parse_assignment(arg) == expected


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("nvml_ok", "expected key=value"),
        ("gpu_count=2", "unknown fault knob"),
        ("nvml_ok=maybe", "true or false"),
        ("memory_stuck_gib=lots", "number of GiB"),
        ("memory_stuck_gib=500", "between 0 and 122.82"),
        ("power_mode=-1", "must not be negative"),
        ("l4t_revision=4 4", "word"),
        ("dockerd_hang=hung", "true or false"),
        ("nvpmodel_fails=", "true or false"),
    ],
)
def test_parse_assignment_rejects(arg, message):
    with pytest.raises(ValueError, match=message):
        state.parse_assignment(arg)


def test_validate_takes_json_values():
    assert state.validate({"nvml_ok": False, "memory_stuck_gib": 30, "power_mode": None}) == {
        "nvml_ok": False, "memory_stuck_gib": 30.0, "power_mode": None}
    assert state.validate({"dockerd_hang": True, "nvpmodel_fails": "yes"}) == {"dockerd_hang": True, "nvpmodel_fails": True}
    with pytest.raises(ValueError):
        state.validate(["nvml_ok"])


def test_fault_set_get_clear(paths, capsys):
    assert run(paths, capsys, "fault", "set", "nvml_ok=false", "memory_baseline_gib=5")[:2] == (
        0, {"nvml_ok": False, "memory_baseline_gib": 5.0})
    assert run(paths, capsys, "fault", "get", "nvml_ok")[1] is False
    assert json.loads(Path(paths.gpu, "device.json").read_text())["nvml_ok"] is False  # applied at once
    assert memd.parse_meminfo(Path(paths.gpu, "meminfo").read_text())["MemFree"] == state.TOTAL_BYTES - 5 * state.GIB
    assert run(paths, capsys, "fault", "clear", "nvml_ok")[1] == {"nvml_ok": True}
    assert run(paths, capsys, "fault", "list")[1] == {**state.DEFAULT_FAULTS, "memory_baseline_gib": 5.0}
    run(paths, capsys, "fault", "clear")
    assert run(paths, capsys, "fault", "list")[1] == state.DEFAULT_FAULTS


def test_fault_errors_exit_2_and_change_nothing(paths, capsys):
    rc, out, err = run(paths, capsys, "fault", "set", "nvml_ok=false", "bogus=1")
    assert rc == 2 and out is None and "unknown fault knob 'bogus'" in err
    assert rc == run(paths, capsys, "fault", "clear", "bogus")[0]
    assert state.load_faults(paths) == state.DEFAULT_FAULTS


def test_changing_needs_root_reading_does_not(paths, capsys, monkeypatch):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    rc, _, err = run(paths, capsys, "fault", "set", "nvml_ok=false")
    assert rc == 2 and "needs root" in err
    assert run(paths, capsys, "fault", "get", "nvml_ok")[1] is True


def test_l4t_knobs_rewrite_release_file_and_package_version(paths, capsys):
    run(paths, capsys, "fault", "set", "l4t_release=36", "l4t_revision=4.4")
    first = Path(paths.etc, "nv_tegra_release").read_text().splitlines()[0]
    assert first.startswith("# R36 (release), REVISION: 4.4, GCID: ")
    assert first.endswith("BOARD: generic, EABI: aarch64, DATE: Thu Sep 25 15:38:37 UTC 2025")
    status = Path(paths.dpkg_status).read_text()
    assert "Version: 36.4.4-20250925153837\n" in status
    assert status.count("Version: 5.2\n") == 1 and status.count("Version: 1\n") == 1


def test_set_dpkg_version_needs_the_package():
    with pytest.raises(ValueError):
        boot.set_dpkg_version("Package: bash\nVersion: 1\n", "nvidia-l4t-core", "38.2.2-1")


def test_memory_stick_and_cache(paths, capsys):
    assert run(paths, capsys, "memory", "stick", "10")[1]["stuck"] == 10 * state.GIB
    assert run(paths, capsys, "memory", "stick", "2.5")[1]["stuck"] == int(12.5 * state.GIB)
    model = run(paths, capsys, "memory", "cache", "3")[1]
    assert model["page_cache"] == 3 * state.GIB
    assert model["free"] == state.TOTAL_BYTES - int((4 + 12.5 + 3) * state.GIB)
    shown = run(paths, capsys, "memory", "show")[1]
    assert shown["free_gib"] == round(model["free"] / state.GIB, 2)


@pytest.mark.parametrize(
    ("knobs", "first_boot", "env", "after"),
    [
        # a reboot heals NVML and clears stuck memory...
        ({"nvml_broken_until_reboot": True, "memory_stuck_gib": 30.0}, False, None,
         {"nvml_broken_until_reboot": False, "memory_stuck_gib": 0.0}),
        # ...unless the stuck memory survives reboots ("cannot be remediated")
        ({"memory_stuck_gib": 30.0, "stuck_survives_reboot": True}, False, None, {"memory_stuck_gib": 30.0}),
        # a permanent NVML fault stays
        ({"nvml_ok": False}, False, None, {"nvml_ok": False}),
        # the first boot takes THOR_TWIN_FAULTS and heals nothing
        ({}, True, '{"nvml_broken_until_reboot": true, "memory_stuck_gib": 20}',
         {"nvml_broken_until_reboot": True, "memory_stuck_gib": 20.0}),
        ({}, True, '{"dockerd_hang": true, "nvpmodel_fails": true}', {"dockerd_hang": True, "nvpmodel_fails": True}),
        # a hung dockerd and a broken nvpmodel survive a reboot
        ({"dockerd_hang": True, "nvpmodel_fails": True}, False, None, {"dockerd_hang": True, "nvpmodel_fails": True}),
    ],
)
def test_start_of_boot(knobs, first_boot, env, after):
    faults = boot.start_of_boot({**state.DEFAULT_FAULTS, **knobs}, first_boot, env)
    assert {k: faults[k] for k in after} == after


@pytest.mark.parametrize("env", ['{"gpu_count": 2}', "not json", '["nvml_ok"]'])
def test_a_bad_thor_twin_faults_is_ignored_at_first_boot(env, capsys):
    assert boot.start_of_boot(state.DEFAULT_FAULTS, True, env) == state.DEFAULT_FAULTS
    assert "ignoring THOR_TWIN_FAULTS" in capsys.readouterr().err


def test_pid1_faults_reads_the_container_environment(tmp_path):
    environ = tmp_path / "environ"
    environ.write_bytes(b"container=docker\0THOR_TWIN_FAULTS={\"nvml_ok\": false}\0HOME=/\0")
    assert boot.pid1_faults(str(environ)) == '{"nvml_ok": false}'
    assert boot.pid1_faults(str(tmp_path / "missing")) is None


def test_shipped_daemon_json_is_the_workshops_broken_start_state():
    daemon = json.loads((ROOTFS / "etc/docker/daemon.json").read_text())
    assert daemon == {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}}
