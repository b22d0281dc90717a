"""scripts/prewarm.py: the status read from ansible-runner's job_events, the refusal of a second start, the rates."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("prewarm", REPO / "scripts" / "prewarm.py")
prewarm = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prewarm)

FAILED = "thor-02: compile-cache warm-up failed: fp8: vLLM exited before Application startup complete"
WAIT = "Warm-up | wait for Application startup complete: gpt-oss-120b"
PATHS = {"root": "/data", "hub": "/data/models/huggingface/hub", "state_dir": "/data/.prewarm", "progress": "/p.json"}


def event(counter, kind, host="organizer", task="t", uuid="u1", **data):
    return {"counter": counter, "event": kind, "created": f"2026-12-02T10:00:0{counter % 10}.000000",
            "event_data": {"host": host, "task": task, "task_uuid": uuid, **data}}


def stream():
    return [
        event(1, "playbook_on_start"),
        event(2, "runner_on_start", task="Record where the content and the pre-warm's state are", uuid="a"),
        event(3, "runner_on_ok", task="Record where the content and the pre-warm's state are", uuid="a",
              res={"changed": False, "ansible_facts": {"content_prewarm_paths": PATHS}}),
        event(4, "runner_on_start", task="Models | verify", uuid="b"),
        event(5, "runner_on_ok", task="Models | verify", uuid="b", res={"changed": True}),
        event(6, "runner_on_start", host="thor-02", task="Warm-up | start vLLM: fp8", uuid="c"),
        event(7, "runner_on_failed", host="thor-02", task="Warm-up | report the stages that failed on this unit", uuid="d",
              res={"msg": FAILED}),
        event(8, "runner_on_failed", host="thor-03", task="ignored", uuid="e", ignore_errors=True, res={"msg": "x"}),
        event(9, "runner_on_unreachable", host="thor-04", task="Warm-up | reach the unit", uuid="f", res={"msg": "ssh: timeout"}),
        event(10, "runner_on_start", host="thor-01", task=WAIT, uuid="g"),
    ]


def test_summarize_done_running_failed_and_paths():
    summary = prewarm.summarize(stream())
    assert summary["paths"] == PATHS
    assert {d["task"]: d["changed"] for d in summary["done"]} == {
        "Record where the content and the pre-warm's state are": 0,
        "Models | verify": 1,
    }
    assert [(r["host"], r["task"]) for r in summary["running"]] == [
        ("thor-02", "Warm-up | start vLLM: fp8"),
        ("thor-01", "Warm-up | wait for Application startup complete: gpt-oss-120b"),
    ]
    assert summary["failures"] == [
        {"host": "thor-02", "task": "Warm-up | report the stages that failed on this unit",
         "msg": FAILED},
        {"host": "thor-04", "task": "Warm-up | reach the unit", "msg": "unreachable: ssh: timeout"},
    ]
    assert summary["finished"] is None


def test_loop_failures_give_the_items_messages():
    events = [event(1, "runner_on_failed", res={"results": [{"failed": True, "msg": "org/a is not complete"}, {"msg": "ok"}]})]
    assert prewarm.summarize(events)["failures"][0]["msg"] == "org/a is not complete"


def test_render_a_stopped_run_says_how_to_resume(tmp_path):
    run = tmp_path / "20261202T100000"
    run.mkdir()
    (run / "status").write_text("failed")
    (run / "rc").write_text("2")
    text = prewarm.render(run, prewarm.summarize(stream()), None, [])
    assert "stopped before the end (failed, rc 2); `scripts/prewarm.py start` resumes it" in text
    assert "FAILED: thor-02: Warm-up | report the stages that failed on this unit: thor-02: compile-cache warm-up failed" in text
    assert "changed: Models | verify (1 of 1 hosts)" in text
    assert "running:" not in text


def test_render_a_running_run_shows_tasks_and_growth(tmp_path):
    text = prewarm.render(tmp_path, prewarm.summarize(stream()), 4242, ["downloading x: 1.0 GB so far, 20.0 MB/s"])
    assert "running, pid 4242" in text
    assert "running: thor-01: Warm-up | wait for Application startup complete: gpt-oss-120b (since 10:00:00)" in text
    assert "  downloading x: 1.0 GB so far, 20.0 MB/s" in text


def test_measure_rates_of_incomplete_files_and_hashing(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    blobs = hub / "models--org--m" / "blobs"
    blobs.mkdir(parents=True)
    part = blobs / "abc.incomplete"
    part.write_bytes(b"x" * 1000)
    progress = tmp_path / "progress.json"
    progress.write_text(json.dumps({"phase": "manifest", "file": "models/a", "size": 5000, "done_bytes": 0, "time": 9e9}))
    paths = {"root": str(tmp_path), "hub": str(hub), "state_dir": str(tmp_path / "state"), "progress": str(progress)}

    def grow(seconds):
        part.write_bytes(b"x" * 3000)
        progress.write_text(json.dumps({"phase": "manifest", "file": "models/b", "size": 5000, "done_bytes": 4000, "time": 9e9}))

    monkeypatch.setattr(prewarm.time, "sleep", grow)
    lines = prewarm.measure(paths, 2.0)
    assert lines[0] == "downloading hub/models--org--m/blobs/abc.incomplete: 3.0 KB so far, 1.0 KB/s"
    assert lines[1] == "hashing (manifest) models/b (5.0 KB); 4.0 KB hashed in this step, 2.0 KB/s"


def test_start_refuses_while_a_prewarm_runs(tmp_path, capsys):
    (tmp_path / "pid").write_text(f"{os.getpid()}\n")
    assert prewarm.main(["--data-dir", str(tmp_path), "start"]) == 1
    assert f"a pre-warm is already running (pid {os.getpid()}" in capsys.readouterr().err


def test_stale_pid_file_is_not_a_running_prewarm(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    (tmp_path / "pid").write_text(proc.stdout)
    assert prewarm.running_pid(tmp_path) is None


def test_status_without_a_run(tmp_path, capsys):
    assert prewarm.main(["--data-dir", str(tmp_path), "status"]) == 1
    assert "no pre-warm has run yet" in capsys.readouterr().out


def test_status_of_an_ended_run_from_real_event_files(tmp_path, capsys):
    run = tmp_path / "artifacts" / "20261202T100000"
    (run / "job_events").mkdir(parents=True)
    for e in [*stream()[:5], event(11, "playbook_on_stats", changed={"organizer": 1}, ok={"organizer": 2})]:
        (run / "job_events" / f"{e['counter']}-x.json").write_text(json.dumps(e))
    (run / "status").write_text("successful")
    (run / "rc").write_text("0")
    out = tmp_path / "status.json"
    assert prewarm.main(["--data-dir", str(tmp_path), "status", "--json", str(out)]) == 0
    assert "pre-warm run 20261202T100000: ended: successful (rc 0)" in capsys.readouterr().out
    assert json.loads(out.read_text())["finished"]["changed"] == {"organizer": 1}


@pytest.mark.parametrize("n,text", [(999, "999 B"), (1500, "1.5 KB"), (2.5e9, "2.5 GB")])
def test_human(n, text):
    assert prewarm.human(n) == text
