from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from ansible_collections.jetson_thor.workshop.plugins.modules import docker_daemon_json

NVIDIA = {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}

# The workshop's broken file: the runtime is declared but is not the default (workshop-procedure.md, NVML errors).
WORKSHOP_BROKEN = """{
    "runtimes": {
        "nvidia": {
            "args": [],
            "path": "nvidia-container-runtime"
        }
    }
}
"""

WORKSHOP_FIXED = """{
    "runtimes": {
        "nvidia": {
            "args": [],
            "path": "nvidia-container-runtime"
        }
    },
    "default-runtime": "nvidia"
}
"""


def _args(path, **extra):
    args = {"path": str(path), "runtimes": NVIDIA, "default_runtime": "nvidia"}
    args.update(extra)
    return args


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _backups(path):
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + ".") and p.name.endswith("~"))


def test_fixes_the_workshop_file(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["_rc"] == 0
    assert result["changed"] is True
    assert result["created"] is False
    assert target.read_text() == WORKSHOP_FIXED
    assert result["config"] == json.loads(WORKSHOP_FIXED)
    backups = _backups(target)
    assert [str(b) for b in backups] == [result["backup_file"]]
    assert backups[0].read_text() == WORKSHOP_BROKEN


def test_keeps_every_other_key_and_their_order(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    original = {
        "log-driver": "json-file",
        "log-opts": {"max-size": "50m", "max-file": "3"},
        "data-root": "/mnt/nvme/docker",
        "runtimes": {"crun": {"path": "/usr/bin/crun"}},
        "registry-mirrors": ["http://127.0.0.1:5000"],
        "features": {"buildkit": True},
    }
    target.write_text(json.dumps(original))
    result = run_module(docker_daemon_json.main, _args(target))
    written = json.loads(target.read_text())
    assert result["changed"] is True
    for key in ("log-driver", "log-opts", "data-root", "registry-mirrors", "features"):
        assert written[key] == original[key]
    assert written["runtimes"] == {"crun": {"path": "/usr/bin/crun"}, **NVIDIA}
    assert written["default-runtime"] == "nvidia"
    assert list(written) == [*original, "default-runtime"]


def test_replaces_a_wrong_nvidia_definition(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text('{"runtimes": {"nvidia": {"path": "/opt/old/nvidia-container-runtime", "runtimeArgs": ["x"]}}}')
    run_module(docker_daemon_json.main, _args(target))
    assert json.loads(target.read_text())["runtimes"] == NVIDIA


def test_already_right_is_left_alone_whatever_its_formatting(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text('{"default-runtime":"nvidia","runtimes":{"nvidia":{"path":"nvidia-container-runtime","args":[]}}}')
    before = _sha(target)
    mtime = target.stat().st_mtime_ns
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["changed"] is False
    assert "backup_file" not in result
    assert _sha(target) == before
    assert target.stat().st_mtime_ns == mtime
    assert _backups(target) == []


def test_second_run_changes_nothing(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    assert run_module(docker_daemon_json.main, _args(target))["changed"] is True
    again = run_module(docker_daemon_json.main, _args(target))
    assert again["changed"] is False
    assert len(_backups(target)) == 1


def test_missing_file_and_directory_are_created(run_module, tmp_path):
    target = tmp_path / "etc" / "docker" / "daemon.json"
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["changed"] is True
    assert result["created"] is True
    assert "backup_file" not in result
    assert json.loads(target.read_text()) == {"runtimes": NVIDIA, "default-runtime": "nvidia"}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_existing_mode_is_kept(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text("{}")
    os.chmod(target, 0o600)
    run_module(docker_daemon_json.main, _args(target))
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_empty_file_counts_as_empty_object(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text("\n")
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["changed"] is True
    assert json.loads(target.read_text()) == {"runtimes": NVIDIA, "default-runtime": "nvidia"}


@pytest.mark.parametrize(
    ("content", "expect"),
    [
        ('{\n    "runtimes": {\n        "nvidia": {}\n    }\n    "default-runtime": "nvidia"\n}\n', "line 5, column 5"),
        ('{"log-driver": "json-file",}\n', "line 1, column 28"),
        ("// comment\n{}\n", "line 1, column 1"),
    ],
)
def test_invalid_json_fails_and_leaves_the_file_byte_for_byte(run_module, tmp_path, content, expect):
    target = tmp_path / "daemon.json"
    target.write_bytes(content.encode())
    before = _sha(target)
    entries = sorted(os.listdir(tmp_path))
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["_rc"] == 1
    assert result["failed"] is True
    assert str(target) in result["msg"]
    assert expect in result["msg"]
    assert "left untouched" in result["msg"]
    assert "json.tool" in result["msg"]
    assert result["error"]["line"] is not None
    assert _sha(target) == before
    assert sorted(os.listdir(tmp_path)) == entries


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('["runtimes"]', "top level is a JSON list"),
        ('{"runtimes": ["nvidia"]}', '"runtimes" is a JSON list'),
        (b'{"x": "\xff"}', "not UTF-8"),
        ("\ufeff{}".encode(), "byte order mark"),
    ],
)
def test_unusable_structure_fails_untouched(run_module, tmp_path, content, reason):
    target = tmp_path / "daemon.json"
    target.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _sha(target)
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["failed"] is True
    assert reason in result["msg"]
    assert _sha(target) == before
    assert _backups(target) == []


def test_undeclared_default_runtime_is_refused(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text("{}")
    result = run_module(docker_daemon_json.main, {"path": str(target), "default_runtime": "nvidia"})
    assert result["failed"] is True
    assert "does not declare it" in result["msg"]
    assert target.read_text() == "{}"


def test_builtin_default_runtime_needs_no_declaration(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_FIXED)
    result = run_module(docker_daemon_json.main, {"path": str(target), "default_runtime": "runc"})
    assert result["changed"] is True
    assert json.loads(target.read_text())["runtimes"] == NVIDIA


def test_check_mode_predicts_and_writes_nothing(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    before = _sha(target)
    result = run_module(docker_daemon_json.main, _args(target, _ansible_check_mode=True, _ansible_diff=True))
    assert result["changed"] is True
    assert result["config"]["default-runtime"] == "nvidia"
    assert result["diff"]["before"] == WORKSHOP_BROKEN
    assert result["diff"]["after"] == WORKSHOP_FIXED
    assert "backup_file" not in result
    assert _sha(target) == before
    assert sorted(os.listdir(tmp_path)) == ["daemon.json"]


def test_check_mode_on_a_missing_file_creates_nothing(run_module, tmp_path):
    target = tmp_path / "docker" / "daemon.json"
    result = run_module(docker_daemon_json.main, _args(target, _ansible_check_mode=True))
    assert result["changed"] is True
    assert result["created"] is True
    assert not target.parent.exists()


def test_diff_mode_shows_before_and_after(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    result = run_module(docker_daemon_json.main, _args(target, _ansible_diff=True))
    assert result["diff"]["before"] == ""
    assert result["diff"]["before_header"].endswith("(absent)")
    assert json.loads(result["diff"]["after"]) == {"runtimes": NVIDIA, "default-runtime": "nvidia"}


def test_settings_are_merged_and_runtime_options_win(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text('{"log-opts": {"max-size": "10m"}, "live-restore": true}')
    args = _args(target, settings={"log-opts": {"max-size": "50m"}, "default-runtime": "runc"})
    result = run_module(docker_daemon_json.main, args)
    written = json.loads(target.read_text())
    assert result["changed"] is True
    assert written["log-opts"] == {"max-size": "50m"}
    assert written["live-restore"] is True
    assert written["default-runtime"] == "nvidia"


def test_indent_is_honoured(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    run_module(docker_daemon_json.main, _args(target, indent=2))
    assert target.read_text().splitlines()[1].startswith('  "runtimes"')


def test_a_directory_is_refused(run_module, tmp_path):
    result = run_module(docker_daemon_json.main, _args(tmp_path))
    assert result["failed"] is True
    assert "is a directory" in result["msg"]
