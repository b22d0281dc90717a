#!/usr/bin/env python3
"""Run the organizer's pre-warm (playbooks/prewarm.yml) detached through ansible-runner, and say where it is.

    scripts/prewarm.py start [-i thor_fleet] [-- more ansible-playbook arguments]
    scripts/prewarm.py status [--sample 2]

`start` daemonizes `ansible-runner start` (its own pid file, artifacts and event stream under build/prewarm/); it refuses
while a pre-warm runs. Starting again after a stop or a failure resumes: every step of the playbook skips finished work.
`status` reads the newest run's job_events: what is done, what is running (with bytes and rate, from the growth of the
HF cache's .incomplete files, the image or pack being saved and the file being hashed) and what failed (unit, task,
message). Docs: docs/content.md.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO / "build" / "prewarm"
PLAYBOOK = REPO / "playbooks" / "prewarm.yml"


# --- the runner -----------------------------------------------------------------------------------------------------
def running_pid(data_dir: Path) -> int | None:
    """The pid of the pre-warm that runs now (ansible-runner's pid file, process alive), else None."""
    try:
        pid = int((data_dir / "pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def start(args) -> int:
    data_dir = Path(args.data_dir)
    pid = running_pid(data_dir)
    if pid:
        print(f"a pre-warm is already running (pid {pid}, {data_dir}): `scripts/prewarm.py status` says where", file=sys.stderr)
        return 1
    data_dir.mkdir(parents=True, exist_ok=True)
    ident = time.strftime("%Y%m%dT%H%M%S")
    argv = [
        sys.executable, "-m", "ansible_runner", "start", str(data_dir),
        "--playbook", str(Path(args.playbook).resolve()),
        "--inventory", str(Path(args.inventory).resolve()),
        "--project-dir", str(REPO),
        "--ident", ident,
    ]  # fmt: skip
    if args.extra:
        argv += ["--cmdline", shlex.join(a for a in args.extra if a != "--")]
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    env.setdefault("ANSIBLE_CONFIG", str(REPO / "ansible.cfg"))
    result = subprocess.run(argv, env=env, cwd=REPO, check=False)
    if result.returncode != 0:
        print(f"ansible-runner start failed (rc {result.returncode}); see {data_dir / 'daemon.log'}", file=sys.stderr)
        return result.returncode
    for _ in range(50):
        pid = running_pid(data_dir)
        if pid:
            break
        time.sleep(0.1)
    print(f"pre-warm started: run {ident}, pid {pid}, artifacts {data_dir / 'artifacts' / ident}")
    print("follow it with: scripts/prewarm.py status")
    return 0


def stop(args) -> int:
    pid = running_pid(Path(args.data_dir))
    if not pid:
        print("no pre-warm is running")
        return 0
    # ansible-runner runs ansible-playbook in a session of its own (pexpect): stop it too, then the runner.
    for child in [*children(pid), pid]:
        try:
            os.kill(child, signal.SIGTERM)
        except ProcessLookupError:
            pass
    print(f"sent SIGTERM to the pre-warm (pid {pid}) and its ansible-playbook; `start` again resumes it")
    return 0


def children(pid: int) -> list[int]:
    """Direct children of pid, from /proc."""
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.split("/")[2]))
    return out


# --- status -------------------------------------------------------------------------------------------------------------
def latest_run(data_dir: Path) -> Path | None:
    runs = [p for p in (data_dir / "artifacts").glob("*") if p.is_dir()]
    return max(runs, key=lambda p: p.name) if runs else None


def read_events(run_dir: Path) -> list[dict]:
    events = []
    for path in (run_dir / "job_events").glob("*.json"):
        try:
            events.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue  # being written
    return sorted(events, key=lambda e: e.get("counter", 0))


def _message(res: dict) -> str:
    """The failure's message; for a loop, the messages of the items that failed."""
    items = res.get("results") if isinstance(res.get("results"), list) else []
    msg = " | ".join(str(r.get("msg", "")) for r in items if isinstance(r, dict) and r.get("failed"))
    msg = msg or res.get("msg") or res.get("stderr") or res.get("reason") or ""
    return " ".join(str(msg).split())


def summarize(events: list[dict]) -> dict:
    """What the event stream says: done tasks (with changed counts), running tasks, failures, the end, the paths."""
    done, running, failures, paths = {}, {}, [], {}
    finished = None
    for event in events:
        kind, data = event.get("event"), event.get("event_data", {})
        host, task, uuid = data.get("host"), data.get("task", ""), data.get("task_uuid")
        if kind == "runner_on_start":
            running[(host, uuid)] = {"host": host, "task": task, "since": event.get("created", "")}
        elif kind in ("runner_on_ok", "runner_on_skipped", "runner_on_failed", "runner_on_unreachable"):
            running.pop((host, uuid), None)
            res = data.get("res", {}) or {}
            if kind == "runner_on_ok":
                entry = done.setdefault(task, {"task": task, "hosts": 0, "changed": 0})
                entry["hosts"] += 1
                entry["changed"] += int(bool(res.get("changed")))
                paths.update((res.get("ansible_facts") or {}).get("content_prewarm_paths") or {})
            elif kind == "runner_on_failed" and not data.get("ignore_errors"):
                failures.append({"host": host, "task": task, "msg": _message(res)})
            elif kind == "runner_on_unreachable":
                failures.append({"host": host, "task": task, "msg": "unreachable: " + _message(res)})
        elif kind == "playbook_on_stats":
            finished = {k: data.get(k, {}) for k in ("ok", "changed", "failures", "dark", "skipped")}
    return {"done": list(done.values()), "running": list(running.values()), "failures": failures,
            "finished": finished, "paths": paths}  # fmt: skip


def _sizes(patterns: list[str]) -> dict[str, int]:
    out = {}
    for pattern in patterns:
        for path in glob.glob(pattern, recursive=True):
            try:
                out[path] = os.path.getsize(path)
            except OSError:
                pass
    return out


def measure(paths: dict, sample: float) -> list[str]:
    """Bytes and rate of what grows now: downloads (.incomplete), image/pack saves (.partial), hashing (progress.json)."""
    if not paths:
        return []
    patterns = []
    if paths.get("hub"):
        patterns.append(os.path.join(paths["hub"], "models--*", "blobs", "*.incomplete"))
    if paths.get("state_dir"):
        patterns.append(os.path.join(paths["state_dir"], "**", "*.partial"))

    def progress():
        try:
            return json.loads(Path(paths.get("progress", "")).read_text())
        except (OSError, ValueError):
            return {}

    before, p_before = _sizes(patterns), progress()
    time.sleep(sample)
    after, p_after = _sizes(patterns), progress()
    lines = []
    for path, size in sorted(after.items()):
        rate = (size - before.get(path, size)) / sample
        what = "downloading" if path.endswith(".incomplete") else "saving"
        lines.append(f"{what} {os.path.relpath(path, paths.get('root', '/'))}: {human(size)} so far, {human(rate)}/s")
    if p_after and time.time() - p_after.get("time", 0) < 600:
        rate = (p_after.get("done_bytes", 0) - p_before.get("done_bytes", 0)) / sample if p_before else 0
        lines.append(
            f"hashing ({p_after.get('phase')}) {p_after.get('file')} ({human(p_after.get('size', 0))}); "
            f"{human(p_after.get('done_bytes', 0))} hashed in this step, {human(rate)}/s"
        )
    return lines


def human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.1f} TB"


def render(run_dir: Path, summary: dict, pid: int | None, growth: list[str]) -> str:
    lines = [f"pre-warm run {run_dir.name}: " + ("running, pid " + str(pid) if pid else _ended(run_dir, summary))]
    done = summary["done"]
    changed = [d for d in done if d["changed"]]
    lines.append(f"done: {len(done)} tasks, {len(changed)} of them changed something")
    for entry in changed[-10:]:
        lines.append(f"  changed: {entry['task']} ({entry['changed']} of {entry['hosts']} hosts)")
    if pid:
        for entry in summary["running"]:
            lines.append(f"running: {entry['host']}: {entry['task']} (since {entry['since'][11:19]})")
        lines += [f"  {line}" for line in growth]
    for failure in summary["failures"]:
        lines.append(f"FAILED: {failure['host']}: {failure['task']}: {failure['msg']}")
    if summary["failures"] and not pid:
        lines.append("fix the causes above, then `scripts/prewarm.py start` again: finished work is skipped")
    return "\n".join(lines)


def _ended(run_dir: Path, summary: dict) -> str:
    try:
        status = (run_dir / "status").read_text().strip()
        rc = (run_dir / "rc").read_text().strip()
    except OSError:
        status, rc = "stopped", "?"
    if summary["finished"] is None and status != "successful":
        return f"stopped before the end ({status}, rc {rc}); `scripts/prewarm.py start` resumes it"
    return f"ended: {status} (rc {rc})"


def status(args) -> int:
    data_dir = Path(args.data_dir)
    run_dir = latest_run(data_dir)
    if run_dir is None:
        print(f"no pre-warm has run yet ({data_dir}): scripts/prewarm.py start")
        return 1
    pid = running_pid(data_dir)
    summary = summarize(read_events(run_dir))
    growth = measure(summary["paths"], args.sample) if pid else []
    print(render(run_dir, summary, pid, growth))
    if args.json:
        Path(args.json).write_text(json.dumps({"run": run_dir.name, "pid": pid, **summary, "growth": growth}, indent=1))
    return 0 if pid or not summary["failures"] else 2


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(DATA_DIR), help="ansible-runner's private data dir (default %(default)s)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start the pre-warm in the background (or resume it)")
    p_start.add_argument("-i", "--inventory", default=str(REPO / "thor_fleet"))
    p_start.add_argument("--playbook", default=str(PLAYBOOK))
    p_start.add_argument("extra", nargs=argparse.REMAINDER, help="more ansible-playbook arguments, after --")
    p_status = sub.add_parser("status", help="what is done, running and failed")
    p_status.add_argument("--sample", type=float, default=2.0, help="seconds between two size readings for the rates")
    p_status.add_argument("--json", help="also write the status as JSON here")
    sub.add_parser("stop", help="stop the running pre-warm (start resumes it)")
    args = parser.parse_args(argv)
    return {"start": start, "status": status, "stop": stop}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
