"""The nvidia-container-runtime shim of the twin unit: argv parsing and the OCI config edit."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "twin/unit/rootfs/usr/local/lib/thor-twin"))
from thor_twin import shim

DOCKER_CREATE = ["--root", "/var/run/docker/runtime-runc/moby", "--log", "/b/log.json", "--log-format", "json",
                 "--systemd-cgroup", "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "abc123"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (DOCKER_CREATE, "create"),
        (["--root=/r", "start", "abc"], "start"),
        (["--debug", "delete", "--force", "abc"], "delete"),
        (["--version"], None),
    ],
)
def test_find_subcommand_skips_global_options_and_their_values(args, expected):
    i = shim.find_subcommand(args)
    assert (args[i] if i is not None else None) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--bundle", "/x", "id"], "/x"),
        (["-b", "/y", "id"], "/y"),
        (["--bundle=/z", "id"], "/z"),
        (["--pid-file", "/p", "id"], "/cwd"),
    ],
)
def test_bundle_dir(args, expected):
    assert shim.bundle_dir(args, "/cwd") == expected


def test_patch_config_adds_env_and_mounts_once():
    config = {"process": {"env": ["PATH=/bin", "NVIDIA_TWIN_GPU=0"]},
              "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}]}
    shim.patch_config(config, gpu_dir="/g", smi="/s")
    once = json.loads(json.dumps(config))
    shim.patch_config(config, gpu_dir="/g", smi="/s")
    assert config == once
    assert config["process"]["env"] == ["PATH=/bin", "NVIDIA_TWIN_GPU=1"]
    by_dest = {m["destination"]: m for m in config["mounts"]}
    assert by_dest["/proc"]["type"] == "proc"
    assert by_dest["/run/nvidia-twin"]["source"] == "/g" and "rw" in by_dest["/run/nvidia-twin"]["options"]
    assert by_dest["/usr/bin/nvidia-smi"]["source"] == "/s" and "ro" in by_dest["/usr/bin/nvidia-smi"]["options"]


def test_patch_config_fills_an_empty_config():
    config = shim.patch_config({})
    assert config["process"]["env"] == ["NVIDIA_TWIN_GPU=1"]
    assert [m["destination"] for m in config["mounts"]] == ["/run/nvidia-twin", "/usr/bin/nvidia-smi"]


@pytest.fixture
def execv(monkeypatch):
    calls = []
    monkeypatch.setattr(shim.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(shim, "find_runc", lambda: "/usr/sbin/runc")
    return calls


def test_main_create_edits_bundle_then_execs_runc_with_original_argv(tmp_path, execv):
    (tmp_path / "config.json").write_text(json.dumps({"process": {"env": []}, "mounts": []}))
    args = ["--root", "/r", "create", "--bundle", str(tmp_path), "cid"]
    shim.main(args)
    assert execv == [("/usr/sbin/runc", ["/usr/sbin/runc", *args])]
    config = json.loads((tmp_path / "config.json").read_text())
    assert "NVIDIA_TWIN_GPU=1" in config["process"]["env"]
    assert {m["destination"] for m in config["mounts"]} == {"/run/nvidia-twin", "/usr/bin/nvidia-smi"}


def test_main_create_defaults_to_the_working_directory(tmp_path, execv, monkeypatch):
    (tmp_path / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    shim.main(["create", "cid"])
    assert "NVIDIA_TWIN_GPU=1" in json.loads((tmp_path / "config.json").read_text())["process"]["env"]


def test_main_other_subcommands_pass_through_untouched(tmp_path, execv):
    (tmp_path / "config.json").write_text("{}")
    shim.main(["start", "cid"])
    shim.main(["--root", str(tmp_path), "delete", "cid"])
    assert [argv[1:] for _, argv in execv] == [["start", "cid"], ["--root", str(tmp_path), "delete", "cid"]]
    assert (tmp_path / "config.json").read_text() == "{}"


def test_main_create_fails_loudly_without_a_bundle(tmp_path, execv, capsys):
    assert shim.main(["create", "--bundle", str(tmp_path / "missing"), "cid"]) == 1
    assert execv == []
    assert "cannot edit" in capsys.readouterr().err
