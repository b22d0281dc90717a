"""The dockerd_hang fault knob: memd's stop/continue decisions, with os.kill, /proc and the ping faked."""

import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "twin/unit/rootfs/usr/local/lib/thor-twin"))
from thor_twin import cli, memd, state

STOP, CONT = signal.SIGSTOP, signal.SIGCONT


class Unit:
    """A fake process table (/proc/PID/comm under tmp), /run/docker.pid, the docker API ping and os.kill."""

    def __init__(self, tmp_path, monkeypatch):
        self.paths = state.Paths(run=str(tmp_path / "run"), lib=str(tmp_path / "lib"))
        self.paths.docker_pid = str(tmp_path / "docker.pid")
        self.paths.proc = str(tmp_path / "proc")
        self.paths.makedirs()
        Path(self.paths.drop_caches).write_text("0\n")
        Path(self.paths.images_done).touch()  # the boot's image loading has finished
        self.answers = True  # does dockerd answer /_ping?
        self.signals = []
        monkeypatch.setattr(memd.os, "kill", self.kill)
        monkeypatch.setattr(memd, "docker_ping", lambda sock, timeout=0.2: self.answers)

    def kill(self, pid, sig):
        if not Path(self.paths.proc, str(pid)).exists():
            raise ProcessLookupError(pid)
        self.signals.append((pid, sig))

    def process(self, pid, comm="dockerd", pidfile=True):
        Path(self.paths.proc, str(pid)).mkdir(parents=True)
        Path(self.paths.proc, str(pid), "comm").write_text(comm + "\n")
        if pidfile:
            Path(self.paths.docker_pid).write_text(f"{pid}\n")

    def exit(self, pid, remove_pidfile=True):
        Path(self.paths.proc, str(pid), "comm").unlink()
        Path(self.paths.proc, str(pid)).rmdir()
        if remove_pidfile:
            Path(self.paths.docker_pid).unlink()

    def knob(self, value):
        state.save_faults(self.paths, {**state.load_faults(self.paths), "dockerd_hang": value})

    def tick(self):
        memd.tick(self.paths)
        return self.take()

    def take(self):
        out, self.signals = self.signals, []
        return out

    @property
    def stopped(self):
        return state.read_json(self.paths.runtime)["dockerd_stopped_pid"]


@pytest.fixture
def unit(tmp_path, monkeypatch):
    return Unit(tmp_path, monkeypatch)


def test_default_is_off_and_memd_never_signals(unit):
    assert state.DEFAULT_FAULTS["dockerd_hang"] is False
    unit.process(100)
    assert unit.tick() == []
    assert unit.stopped is None


def test_set_stops_dockerd_once_and_clear_continues_it(unit):
    unit.process(100)
    unit.tick()
    unit.knob(True)
    assert unit.tick() == [(100, STOP)]
    assert unit.stopped == 100
    assert unit.tick() == []  # already stopped: no signal every 0.2 s
    unit.knob(False)
    assert unit.tick() == [(100, CONT)]
    assert unit.stopped is None
    assert unit.tick() == []


def test_a_restarted_dockerd_is_stopped_again_once_it_answers(unit):
    unit.process(100)
    unit.knob(True)
    assert unit.tick() == [(100, STOP)]
    # systemctl restart docker: SIGTERM + SIGCONT from systemd, the old daemon exits, a new one starts
    unit.exit(100)
    unit.answers = False
    unit.process(200)
    assert unit.tick() == []  # still starting up: its start job must complete first
    assert unit.stopped is None
    unit.answers = True
    assert unit.tick() == [(200, STOP)]
    assert unit.stopped == 200
    unit.knob(False)
    assert unit.tick() == [(200, CONT)]


def test_a_dockerd_killed_while_stopped_leaves_a_stale_pidfile(unit):
    unit.process(100)
    unit.knob(True)
    unit.tick()
    unit.exit(100, remove_pidfile=False)  # SIGKILL: dockerd cannot remove /run/docker.pid
    assert unit.tick() == []
    assert unit.stopped is None
    unit.knob(False)
    assert unit.tick() == []


def test_only_a_process_named_dockerd_is_ever_signalled(unit):
    unit.process(100, comm="sleep")  # a stale /run/docker.pid whose pid was reused
    unit.knob(True)
    assert unit.tick() == []
    Path(unit.paths.docker_pid).unlink()
    assert unit.tick() == []  # no pid file at all (docker.service stopped): no ping, no socket activation


def test_a_dockerd_continued_by_someone_else_is_not_stopped_again(unit):
    """systemd's stop sends SIGCONT after SIGTERM; memd must not race it (the daemon then exits normally)."""
    unit.process(100)
    unit.knob(True)
    unit.tick()
    assert unit.tick() == []
    assert unit.stopped == 100


def test_no_stop_before_the_boot_has_loaded_the_images(unit):
    Path(unit.paths.images_done).unlink()
    unit.process(100)
    unit.knob(True)
    assert unit.tick() == []
    Path(unit.paths.images_done).touch()
    assert unit.tick() == [(100, STOP)]


def test_a_reader_without_root_changes_nothing(unit, monkeypatch):
    unit.process(100)
    unit.knob(True)
    monkeypatch.setattr(memd.os, "kill", lambda pid, sig: (_ for _ in ()).throw(PermissionError(pid)))
    memd.tick(unit.paths)
    assert unit.stopped is None


@pytest.mark.parametrize(
    ("hang", "pid", "stopped", "alive", "may_stop", "answers", "signals", "after"),
    [
        (False, 100, None, {100}, True, True, [], None),
        (True, 100, None, {100}, True, True, [(100, STOP)], 100),
        (True, 100, None, {100}, True, False, [], None),  # not answering yet
        (True, 100, None, {100}, False, True, [], None),  # images still loading
        (True, 100, 100, {100}, True, True, [], 100),
        (True, None, 100, set(), True, True, [], None),
        (False, 100, 100, {100}, True, True, [(100, CONT)], None),
        (False, None, 100, set(), True, True, [], None),  # gone: nothing to continue
    ],
)
def test_control_dockerd(hang, pid, stopped, alive, may_stop, answers, signals, after):
    sent = []
    got = memd.control_dockerd(
        hang, pid, stopped, may_stop, comm=lambda p: "dockerd" if p in alive else None, ping=lambda: answers,
        kill=lambda p, s: sent.append((p, s)),
    )
    assert (sent, got) == (signals, after)


def test_cli_set_and_clear_apply_at_once(unit, monkeypatch, capsys):
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    unit.process(100)
    assert cli.main(["fault", "set", "dockerd_hang=true"], paths=unit.paths) == 0
    assert unit.take() == [(100, STOP)]
    assert cli.main(["fault", "clear", "dockerd_hang"], paths=unit.paths) == 0
    assert unit.take() == [(100, CONT)]
    capsys.readouterr()


def test_images_load_does_not_call_a_hung_docker(unit, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli.images, "load_all", lambda check_only=False, **kw: calls.append(check_only) or 0)
    monkeypatch.setattr(cli.os, "geteuid", lambda: 1000)
    unit.knob(True)
    assert cli.main(["images", "load"], paths=unit.paths) == 0
    assert calls == [] and "dockerd_hang" in capsys.readouterr().out
    # at boot (no images.done yet) the images are loaded first, and the mark lets memd stop dockerd
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0)
    Path(unit.paths.images_done).unlink()
    assert cli.main(["images", "load"], paths=unit.paths) == 0
    assert calls == [False] and Path(unit.paths.images_done).exists()
