from __future__ import annotations

import hashlib
import json
import os
import stat
import sys

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


@pytest.fixture(autouse=True)
def fakebin(monkeypatch, tmp_path_factory):
    """A directory on PATH for fake dockerd scripts; without one in it, dockerd is not found.

    The unit running the tests may have a real dockerd in /usr/sbin, which get_bin_path always
    searches: the lookup of dockerd is limited to this directory.
    """
    bindir = tmp_path_factory.mktemp("bin")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(docker_daemon_json, "_DOCKERD_DIRS", [str(bindir)])
    real = docker_daemon_json.AnsibleModule.get_bin_path

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        if arg == "dockerd":
            return str(bindir / arg) if (bindir / arg).exists() else None
        return real(self, arg, required=required, opt_dirs=opt_dirs)

    monkeypatch.setattr(docker_daemon_json.AnsibleModule, "get_bin_path", get_bin_path)
    return bindir


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
    assert result["default_runtime"] == "nvidia"
    assert result["runtimes"] == ["nvidia"]
    assert result["managed"] == {"runtimes": NVIDIA, "default-runtime": "nvidia"}
    assert result["keys"] == ["runtimes", "default-runtime"]
    assert result["path"] == result["target"] == str(target)
    assert "config" not in result
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
    assert result["default_runtime"] == "nvidia"
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


# --- dockerd --validate --------------------------------------------------------------------------

FAKE_DOCKERD = """#!{python}
# A fake dockerd: --version, and --validate as Docker 23+ does it (unknown flag before).
import json, os, stat, sys, time

VERSION = {version!r}
LOG = {log!r}
HANG = {hang!r}
KNOWN = {{"runtimes", "default-runtime", "log-driver", "log-opts", "data-root", "live-restore", "features"}}

args = sys.argv[1:]
with open(LOG, "a") as log:
    entry = {{"args": args}}
    if "--config-file" in args:
        path = args[args.index("--config-file") + 1]
        entry["content"] = open(path).read()
        entry["dir_mode"] = oct(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode))
    log.write(json.dumps(entry) + "\\n")
if args == ["--version"]:
    print(f"Docker version {{VERSION}}, build e6534b4")
    sys.exit(0)
if "--validate" in args:
    if int(VERSION.split(".")[0]) < 23:
        print("unknown flag: --validate\\nSee 'dockerd --help'.", file=sys.stderr)
        sys.exit(125)
    if HANG:
        time.sleep(60)
    path = args[args.index("--config-file") + 1]
    unknown = sorted(set(json.load(open(path))) - KNOWN)
    if unknown:
        print(
            f"unable to configure the Docker daemon with file {{path}}: "
            f"the following directives don't match any configuration option: {{', '.join(unknown)}}",
            file=sys.stderr,
        )
        sys.exit(1)
    print("configuration OK")
    sys.exit(0)
sys.exit(2)
"""


@pytest.fixture
def dockerd(fakebin, tmp_path_factory):
    """Install a fake dockerd of a given version; returns a reader of its calls."""
    log = tmp_path_factory.mktemp("dockerd") / "calls.jsonl"
    log.write_text("")

    def install(version, hang=False):
        script = fakebin / "dockerd"
        script.write_text(FAKE_DOCKERD.format(python=sys.executable, version=version, log=str(log), hang=hang))
        script.chmod(0o755)

        def calls():
            return [json.loads(line) for line in log.read_text().splitlines()]

        return calls

    return install


def test_dockerd_28_validates_the_new_content_before_it_is_written(run_module, tmp_path, dockerd):
    calls = dockerd("28.2.2")
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["changed"] is True
    assert result["validation"] == {"by": "dockerd 28.2.2", "ok": True, "skipped_reason": None, "output": "configuration OK"}
    seen = calls()
    assert seen[0]["args"] == ["--version"]
    assert seen[1]["args"][:2] == ["--validate", "--config-file"]
    # dockerd saw exactly the new content, in a private directory that is gone afterwards, not the live file.
    assert seen[1]["content"] == WORKSHOP_FIXED == target.read_text()
    assert seen[1]["dir_mode"] == "0o700"
    candidate = seen[1]["args"][2]
    assert candidate != str(target)
    assert not os.path.exists(os.path.dirname(candidate))


def test_a_file_dockerd_rejects_is_not_written(run_module, tmp_path, dockerd):
    dockerd("28.2.2")
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    before = _sha(target)
    result = run_module(docker_daemon_json.main, _args(target, settings={"bogus-directive": True}))
    assert result["failed"] is True
    assert "dockerd rejects" in result["msg"]
    assert "don't match any configuration option: bogus-directive" in result["msg"]
    assert result["validation"]["ok"] is False
    assert result["validation"]["by"] == "dockerd 28.2.2"
    assert "bogus-directive" in result["validation"]["output"]
    assert _sha(target) == before
    assert sorted(os.listdir(tmp_path)) == ["daemon.json"]


def test_dockerd_validates_in_check_mode_too(run_module, tmp_path, dockerd):
    calls = dockerd("28.2.2")
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target, settings={"bogus-directive": True}, _ansible_check_mode=True))
    assert result["failed"] is True
    assert result["validation"]["ok"] is False
    ok = run_module(docker_daemon_json.main, _args(target, _ansible_check_mode=True))
    assert ok["changed"] is True
    assert ok["validation"]["ok"] is True
    assert target.read_text() == WORKSHOP_BROKEN
    assert len([c for c in calls() if "--validate" in c["args"]]) == 2


def test_dockerd_20_cannot_validate_auto_skips_and_says_why(run_module, tmp_path, dockerd):
    calls = dockerd("20.10.24")
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["changed"] is True
    assert result["validation"] == {
        "by": None,
        "ok": None,
        "skipped_reason": "dockerd 20.10.24 has no --validate (Docker 23 and later)",
        "output": None,
    }
    assert [c["args"] for c in calls()] == [["--version"]]
    assert target.read_text() == WORKSHOP_FIXED


def test_always_fails_when_dockerd_cannot_validate(run_module, tmp_path, dockerd):
    dockerd("20.10.24")
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target, validate_with_dockerd="always"))
    assert result["failed"] is True
    assert "dockerd 20.10.24 has no --validate" in result["msg"]
    assert "Nothing was written" in result["msg"]
    assert target.read_text() == WORKSHOP_BROKEN


def test_dockerd_not_found(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["changed"] is True
    assert result["validation"]["skipped_reason"] == "dockerd not found"
    assert target.read_text() == WORKSHOP_FIXED
    target.write_text(WORKSHOP_BROKEN)
    always = run_module(docker_daemon_json.main, _args(target, validate_with_dockerd="always"))
    assert always["failed"] is True
    assert "dockerd not found" in always["msg"]
    assert target.read_text() == WORKSHOP_BROKEN


def test_never_does_not_run_dockerd(run_module, tmp_path, dockerd):
    calls = dockerd("28.2.2")
    target = tmp_path / "daemon.json"
    result = run_module(docker_daemon_json.main, _args(target, validate_with_dockerd="never"))
    assert result["changed"] is True
    assert result["validation"]["skipped_reason"] == "validate_with_dockerd is never"
    assert calls() == []


def test_no_change_runs_no_validation(run_module, tmp_path, dockerd):
    calls = dockerd("28.2.2")
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_FIXED)
    result = run_module(docker_daemon_json.main, _args(target, validate_with_dockerd="always"))
    assert result["changed"] is False
    assert result["validation"] == {"by": None, "ok": None, "skipped_reason": "no change to write", "output": None}
    assert calls() == []


def test_a_validation_that_hangs_is_bounded(run_module, tmp_path, dockerd):
    dockerd("28.2.2", hang=True)
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    result = run_module(docker_daemon_json.main, _args(target, timeout=1))
    assert result["changed"] is True
    assert result["validation"]["skipped_reason"] == "dockerd --validate did not answer within 1 s"
    target.write_text(WORKSHOP_BROKEN)
    always = run_module(docker_daemon_json.main, _args(target, timeout=1, validate_with_dockerd="always"))
    assert always["failed"] is True
    assert "did not answer within 1 s" in always["msg"]
    assert target.read_text() == WORKSHOP_BROKEN


# --- symbolic links, modes, failed writes, large files ---------------------------------------------


def test_a_symlink_is_followed_and_kept(run_module, tmp_path):
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    real = real_dir / "daemon.json"
    real.write_text(WORKSHOP_BROKEN)
    link_dir = tmp_path / "etc"
    link_dir.mkdir()
    link = link_dir / "daemon.json"
    link.symlink_to(real)
    result = run_module(docker_daemon_json.main, _args(link))
    assert result["changed"] is True
    assert result["path"] == str(link)
    assert result["target"] == str(real)
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_text() == WORKSHOP_FIXED
    # The backup is of the target, next to it; nothing new next to the link.
    assert [str(b) for b in _backups(real)] == [result["backup_file"]]
    assert _backups(real)[0].read_text() == WORKSHOP_BROKEN
    assert sorted(os.listdir(link_dir)) == ["daemon.json"]
    assert run_module(docker_daemon_json.main, _args(link))["changed"] is False


def test_a_dangling_symlink_creates_its_target(run_module, tmp_path):
    real = tmp_path / "real" / "daemon.json"
    link = tmp_path / "daemon.json"
    link.symlink_to(real)
    result = run_module(docker_daemon_json.main, _args(link))
    assert result["created"] is True
    assert result["target"] == str(real)
    assert link.is_symlink()
    assert json.loads(link.read_text())["default-runtime"] == "nvidia"


@pytest.mark.parametrize("mode", ["0999", "rw-r--r--", "u=rwz", "", "644a", 99999, -1, True, [420]])
def test_an_invalid_mode_fails_before_anything_is_written(run_module, tmp_path, mode):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    before = _sha(target)
    result = run_module(docker_daemon_json.main, _args(target, mode=mode))
    assert result["failed"] is True
    assert repr(mode) in result["msg"]
    assert '"0644"' in result["msg"]
    assert "u=rw,g=r,o=r" in result["msg"]
    assert _sha(target) == before
    assert sorted(os.listdir(tmp_path)) == ["daemon.json"]


@pytest.mark.parametrize(("mode", "expect"), [("u=rw,g=r,o=r", 0o644), ("0600", 0o600), ("640", 0o640), (0o640, 0o640)])
def test_valid_modes_for_a_new_file(run_module, tmp_path, mode, expect):
    target = tmp_path / "daemon.json"
    result = run_module(docker_daemon_json.main, _args(target, mode=mode))
    assert result["changed"] is True
    assert stat.S_IMODE(target.stat().st_mode) == expect


def _raising_move(self, src, dest, **kwargs):
    try:
        raise PermissionError(13, "Permission denied")
    except PermissionError as exc:
        raise Exception(f"Could not replace {dest!r} with {src!r}.") from exc


def _failing_move(self, src, dest, **kwargs):
    # ansible-core before 2.19: atomic_move reports through fail_json itself.
    self.fail_json(msg=f"Could not replace file: {src} to {dest}: [Errno 28] No space left on device")


@pytest.mark.parametrize("move", [_raising_move, _failing_move])
def test_a_failed_write_leaves_the_file_and_no_backup(run_module, tmp_path, monkeypatch, move):
    target = tmp_path / "daemon.json"
    target.write_text(WORKSHOP_BROKEN)
    before = _sha(target)
    monkeypatch.setattr(docker_daemon_json.AnsibleModule, "atomic_move", move)
    result = run_module(docker_daemon_json.main, _args(target))
    assert result["failed"] is True
    assert str(target) in result["msg"]
    assert "Permission denied" in result["msg"] or "No space left" in result["msg"]
    assert _sha(target) == before
    assert sorted(os.listdir(tmp_path)) == ["daemon.json"]


def test_a_10_mb_file_gives_a_bounded_result(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    big = {"log-driver": "json-file", "labels": [f"workshop.seat={i:07d}" for i in range(400_000)]}
    target.write_text(json.dumps(big, indent=4))
    assert target.stat().st_size > 10 * 1024 * 1024
    result = run_module(docker_daemon_json.main, _args(target, _ansible_diff=True))
    assert result["changed"] is True
    assert len(json.dumps(result)) < 4096
    assert result["keys"] == ["log-driver", "labels", "runtimes", "default-runtime"]
    assert result["managed"] == {"runtimes": NVIDIA, "default-runtime": "nvidia"}
    before_sha = hashlib.sha256(json.dumps(big, indent=4).encode()).hexdigest()
    assert before_sha in result["diff"]["before"]
    assert f"({len(json.dumps(big, indent=4).encode())} bytes, sha256 " in result["diff"]["before"]
    assert _sha(target) in result["diff"]["after"]
    assert "not shown" in result["diff"]["after"]
    assert json.loads(target.read_text())["labels"] == big["labels"]


def test_the_diff_shows_text_up_to_64_kib(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text(json.dumps({"labels": ["x" * 1000] * 50}))
    result = run_module(docker_daemon_json.main, _args(target, _ansible_diff=True, _ansible_check_mode=True))
    assert result["diff"]["before"] == target.read_text()
    assert json.loads(result["diff"]["after"])["default-runtime"] == "nvidia"


def test_managed_reports_only_what_the_call_set(run_module, tmp_path):
    target = tmp_path / "daemon.json"
    target.write_text('{"runtimes": {"crun": {"path": "crun"}}, "debug": true, "log-opts": {"max-size": "1m"}}')
    result = run_module(docker_daemon_json.main, _args(target, settings={"log-opts": {"max-size": "50m"}}))
    assert result["managed"] == {"log-opts": {"max-size": "50m"}, "runtimes": NVIDIA, "default-runtime": "nvidia"}
    assert result["runtimes"] == ["crun", "nvidia"]
    assert result["keys"] == ["runtimes", "debug", "log-opts", "default-runtime"]
