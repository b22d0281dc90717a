from __future__ import annotations

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import CommandResult
from ansible_collections.jetson_thor.workshop.plugins.modules import thor_power_mode

MODES = {0: "MAXN", 1: "120W"}


class FakeUnit:
    """nvpmodel and jetson_clocks as a tiny state machine."""

    def __init__(self, mode=1, pinned=False, reboot_for=()):
        self.mode, self.pinned, self.reboot_for = mode, pinned, set(reboot_for)
        self.calls = []
        self.hang = None
        self.timeouts = set()
        self.data = []

    def bounded(self, module, argv, timeout, data=None):
        self.timeouts.add(timeout)
        if data is not None:
            self.data.append(data)
        if self.hang and argv[1:] == self.hang[1:] and argv[0].endswith("/" + self.hang[0]):
            self.calls.append([argv[0].rsplit("/", 1)[-1], *argv[1:]])
            return CommandResult(None, "", "", True, float(timeout), argv)
        return CommandResult(*self.run(argv, data), False, 0.1, argv)

    def run(self, argv, data=None):
        name = argv[0].rsplit("/", 1)[-1]
        args = argv[1:]
        self.calls.append([name, *args])
        if name == "nvpmodel" and args == ["-q"]:
            return 0, f"NV Power Mode: {MODES[self.mode]}\n{self.mode}\n", ""
        if name == "nvpmodel" and args[0] == "-m":
            new = int(args[1])
            if new in self.reboot_for:
                prompt = "NVPM WARN: Reboot required for changing to this power mode: 0\n"
                return 0, prompt + "DO YOU WANT TO REBOOT NOW? enter YES/yes to confirm:\n", ""
            self.mode, self.pinned = new, False
            return 0, "", ""
        if name == "jetson_clocks" and args == ["--show"]:
            gpu_min = 1575000000 if self.pinned else 0
            show = f"cpu0: Online=1 MinFreq={gpu_min} MaxFreq=1575000000 CurrentFreq=1\n"
            return 0, show + f"GPU MinFreq={gpu_min} MaxFreq=1575000000\n", ""
        if name == "jetson_clocks" and not args:
            self.pinned = True
            return 0, "", ""
        raise AssertionError(argv)


@pytest.fixture
def unit(monkeypatch):
    fake = FakeUnit()
    monkeypatch.setattr(thor_power_mode.AnsibleModule, "get_bin_path", lambda self, name, **kw: "/usr/sbin/" + name)
    monkeypatch.setattr(thor_power_mode, "run_bounded", fake.bounded)
    return fake


def _changes(unit):
    return [c for c in unit.calls if c not in (["nvpmodel", "-q"], ["jetson_clocks", "--show"])]


def test_sets_maxn_then_pins(run_module, unit):
    result = run_module(thor_power_mode.main, {"mode": 0, "pin_clocks": True})
    assert result["changed"] is True
    assert result["commands"] == [["nvpmodel", "-m", "0"], ["jetson_clocks"]]
    assert result["power_mode"]["after"] == {"name": "MAXN", "id": 0}
    assert result["clocks_pinned"] == {"before": False, "after": True}
    assert (unit.mode, unit.pinned) == (0, True)
    assert unit.timeouts == {60}
    # nvpmodel's reboot prompt gets an answer instead of waiting.
    assert unit.data == ["no\n"]


def test_already_there_runs_nothing(run_module, unit):
    unit.mode, unit.pinned = 0, True
    result = run_module(thor_power_mode.main, {"mode": 0, "pin_clocks": True})
    assert result["changed"] is False
    assert result["commands"] == []
    assert _changes(unit) == []


def test_mode_change_repins_clocks_it_reset(run_module, unit):
    unit.pinned = True
    result = run_module(thor_power_mode.main, {"mode": 0, "pin_clocks": True})
    assert result["commands"] == [["nvpmodel", "-m", "0"], ["jetson_clocks"]]
    assert unit.pinned is True


def test_clocks_alone(run_module, unit):
    result = run_module(thor_power_mode.main, {"pin_clocks": True})
    assert result["commands"] == [["jetson_clocks"]]
    assert unit.mode == 1


def test_nothing_asked_reads_only(run_module, unit):
    result = run_module(thor_power_mode.main, {})
    assert result["changed"] is False
    assert unit.calls == [["nvpmodel", "-q"]]


def test_check_mode_predicts_without_running(run_module, unit):
    result = run_module(thor_power_mode.main, {"mode": 0, "pin_clocks": True, "_ansible_check_mode": True, "_ansible_diff": True})
    assert result["changed"] is True
    assert result["commands"] == [["nvpmodel", "-m", "0"], ["jetson_clocks"]]
    assert _changes(unit) == []
    assert (unit.mode, unit.pinned) == (1, False)
    assert "120W (1)" in result["diff"]["before"]
    assert "(0)" in result["diff"]["after"]
    assert "clocks pinned: true" in result["diff"]["after"]


def test_reboot_required_is_reported_not_failed(run_module, unit):
    unit.reboot_for = {0}
    result = run_module(thor_power_mode.main, {"mode": 0})
    assert result.get("failed") is not True
    assert result["changed"] is True
    assert result["reboot_required"] is True
    assert result["power_mode"]["after"]["id"] == 1


def test_missing_tool_fails_clearly(run_module, unit, monkeypatch):
    def no_bin(self, name, required=False, **kw):
        self.fail_json(msg=f"Failed to find required executable {name}")

    monkeypatch.setattr(thor_power_mode.AnsibleModule, "get_bin_path", no_bin)
    result = run_module(thor_power_mode.main, {"mode": 0})
    assert result["failed"] is True
    assert "nvpmodel" in result["msg"]


@pytest.mark.parametrize(
    ("hang", "args"),
    [
        (["nvpmodel", "-q"], {}),
        (["nvpmodel", "-m", "0"], {"mode": 0}),
        (["jetson_clocks"], {"pin_clocks": True}),
    ],
)
def test_a_command_that_hangs_fails_naming_it_and_the_bound(run_module, unit, hang, args):
    unit.hang = hang
    result = run_module(thor_power_mode.main, {**args, "timeout": 5})
    assert result["failed"] is True
    assert f"`{' '.join(hang)}` did not finish within 5 s" in result["msg"]
    assert unit.timeouts == {5}


def test_real_runner_kills_a_hanging_nvpmodel(run_module, monkeypatch, tmp_path):
    slow = tmp_path / "nvpmodel"
    slow.write_text("#!/bin/sh\n/bin/sleep 60\n")
    slow.chmod(0o755)
    monkeypatch.setattr(thor_power_mode, "_OPT_DIRS", [str(tmp_path)])
    result = run_module(thor_power_mode.main, {"mode": 0, "timeout": 1})
    assert result["failed"] is True
    assert result["msg"].startswith("`nvpmodel -q` did not finish within 1 s")
