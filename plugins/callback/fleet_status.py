# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
name: fleet_status
type: aggregate
short_description: State what happened to every unit in this run and write the fleet summary
version_added: 0.2.0
description:
  - Records, for every unit of the O(group) group that a play of this run targeted, what happened to it in this run,
    one of V(converged) (nothing changed), V(changed) (how many changes), V(failed) (in which play, role and task, and why),
    V(unreachable) (at which task, and why), V(skipped) (every task skipped) or V(not reached) (the run stopped before
    it got to the unit, for example because a rollout wave failed). A status never comes from a fact that is missing.
  - At the end of the run it prints the fleet table (unless the stdout callback writes JSON), writes it to
    C(fleet-summary.md) and C(fleet-summary.json) in O(report_dir), writes the units that are not ready to
    C(not-ready.limit), and prints the command that re-runs only those units (C(--limit @.../not-ready.limit)).
  - The workshop's summary play hands each unit's details (release, power mode, runtime, memory) to this callback with
    C(ansible.builtin.set_stats) under C(workshop_units); when the run stopped before that play, the table has the
    status columns only.
  - Units are listed in inventory order. Every unit of a twin fleet is marked simulated.
requirements:
  - Enable it in C(ansible.cfg) (C(callbacks_enabled = jetson_thor.workshop.fleet_status)) or with
    C(ANSIBLE_CALLBACKS_ENABLED=jetson_thor.workshop.fleet_status).
options:
  report_dir:
    description: Directory for C(fleet-summary.md), C(fleet-summary.json) and C(not-ready.limit).
    type: path
    default: build/reports
    env:
      - name: JETSON_THOR_REPORT_DIR
    ini:
      - section: jetson_thor_workshop
        key: report_dir
  group:
    description: The inventory group that holds the units.
    type: str
    default: thor
    env:
      - name: JETSON_THOR_UNIT_GROUP
    ini:
      - section: jetson_thor_workshop
        key: unit_group
"""

import json
import os
import shlex
import sys

from ansible import constants as C
from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.jetson_thor.workshop.plugins.plugin_utils._fleet_report import (
    READY_STATUSES,
    render_console,
    render_markdown,
)

_MSG_LIMIT = 700


def _one_line(text, limit=_MSG_LIMIT):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _host_name(result):
    host = getattr(result, "host", None) or result._host
    return host.get_name()


def _task(result):
    return getattr(result, "task", None) or result._task


def _data(result):
    return getattr(result, "result", None) or result._result


def _reason(data):
    """The most telling text of a failed or unreachable result."""
    for key in ("msg", "stderr", "reason"):
        value = data.get(key)
        if value:
            return _one_line(value)
    results = data.get("results")
    if isinstance(results, list):
        for item in results:
            if isinstance(item, dict) and item.get("failed"):
                return _reason(item)
    if data.get("failed_when_result"):
        rc = data.get("rc")
        out = data.get("stdout") or ""
        return _one_line(f"its failed_when condition was met (rc {rc}{', stdout: ' + out if out else ''})")
    return "no message"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "jetson_thor.workshop.fleet_status"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._playbook = None
        self._plays = []  # [{"name", "hosts": [...], "units": [...]}] in the order they started
        self._units = []  # every unit some play targeted, in inventory order of first appearance
        self._hosts = {}  # host -> record
        self._play_names = []  # every play of the playbook, in order, to tell a run that stopped early
        self._current = None

    # --- events -------------------------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self._playbook = getattr(playbook, "_file_name", None)
        try:
            self._play_names = [play.get_name() for play in playbook.get_plays()]
        except Exception:  # the list only improves the wording; never fail the run for it
            self._play_names = []

    def v2_playbook_on_play_start(self, play):
        name = play.get_name()
        if self._current is not None and self._current["name"] == name and self._current["uuid"] == play._uuid:
            return  # the next serial batch of the same play
        hosts, units = [], []
        manager = play.get_variable_manager()
        if manager is not None:
            variables = manager.get_vars(play=play, include_hostvars=False)
            hosts = list(variables.get("ansible_play_hosts_all", []))
            group = set(variables.get("groups", {}).get(self.get_option("group"), []))
            units = [h for h in hosts if h in group]
        self._current = {"name": name, "uuid": play._uuid, "hosts": hosts, "units": units, "serial": bool(play.serial)}
        self._plays.append(self._current)
        for unit in units:
            if unit not in self._units:
                self._units.append(unit)

    def _record(self, host):
        return self._hosts.setdefault(
            host,
            {"ok": 0, "changed": 0, "skipped": 0, "failed": None, "unreachable": None, "rescued": 0, "plays": []},
        )

    def _seen(self, result):
        host = _host_name(result)
        record = self._record(host)
        if self._current is not None and (not record["plays"] or record["plays"][-1] != self._current["name"]):
            record["plays"].append(self._current["name"])
        if record["failed"] is not None:
            # A task ran on a host after its failure: a rescue section caught it.
            record["failed"] = None
            record["rescued"] += 1
        return record

    def v2_runner_on_ok(self, result):
        record = self._seen(result)
        if _data(result).get("changed"):
            record["changed"] += 1
        else:
            record["ok"] += 1

    def v2_runner_on_skipped(self, result):
        self._seen(result)["skipped"] += 1

    def v2_runner_on_failed(self, result, ignore_errors=False):
        record = self._seen(result)
        if ignore_errors:
            record["ok"] += 1
            return
        task = _task(result)
        role = task._role.get_name(include_role_fqcn=False) if getattr(task, "_role", None) else None
        record["failed"] = {
            "play": self._current["name"] if self._current else None,
            "role": role,
            "task": task.name or task.action,
            "msg": _reason(_data(result)),
        }

    def v2_runner_on_async_failed(self, result):
        self.v2_runner_on_failed(result)

    def v2_runner_on_unreachable(self, result):
        record = self._seen(result)
        task = _task(result)
        record["unreachable"] = {
            "play": self._current["name"] if self._current else None,
            "task": task.name or task.action,
            "msg": _reason(_data(result)),
        }

    # --- the verdict ----------------------------------------------------------------------------------------
    def _stopped_early(self):
        started = [p["name"] for p in self._plays]
        return bool(self._play_names) and len(set(started)) < len(set(self._play_names))

    def _status(self, unit):
        record = self._hosts.get(unit)
        check = bool(context.CLIARGS.get("check"))
        if record and record["unreachable"]:
            u = record["unreachable"]
            return "unreachable", f"unreachable at '{u['task']}' (play '{u['play']}'): {u['msg']}"
        if record and record["failed"]:
            f = record["failed"]
            where = f"role {f['role']}, task '{f['task']}'" if f["role"] else f"task '{f['task']}' (play '{f['play']}')"
            return "failed", f"failed in {where}: {f['msg']}"
        targeted = [p for p in self._plays if unit in p["units"]]
        missed = [p["name"] for p in targeted if not record or p["name"] not in record["plays"]]
        if record is None or missed:
            last = self._plays[-1]["name"] if self._plays else "?"
            why = (
                f"the run stopped in play '{last}' before it reached this unit"
                if self._stopped_early() or missed
                else "no task ran on it"
            )
            return "not reached", f"{why} (not run: {', '.join(missed) or 'every play'})"
        if record["ok"] == 0 and record["changed"] == 0 and record["skipped"] > 0:
            return "skipped", f"every task was skipped ({record['skipped']})"
        if record["changed"]:
            word = "would change" if check else "changed"
            return word, f"{record['changed']} task(s) {'would change' if check else 'changed'}, {record['ok']} ok"
        return "converged", f"{record['ok']} task(s) ok, nothing {'would change' if check else 'changed'}"

    def v2_playbook_on_stats(self, stats):
        custom = (getattr(stats, "custom", None) or {}).get("_run", {})
        details = custom.get("workshop_units") or {}
        rows = []
        for unit in self._units:
            status, what = self._status(unit)
            rows.append({"unit": unit, "status": status, "what_happened": what, "details": details.get(unit, {})})
        not_ready = [r["unit"] for r in rows if r["status"] not in READY_STATUSES]
        report_dir = self.get_option("report_dir")
        limit_file = os.path.join(report_dir, "not-ready.limit")
        rerun = self._rerun_command(limit_file, custom.get("workshop_organizers") or []) if not_ready else None
        summary = {
            "playbook": self._playbook,
            "check_mode": bool(context.CLIARGS.get("check")),
            "plays_run": [p["name"] for p in self._plays],
            "stopped_early": self._stopped_early(),
            "units": rows,
            "ready": len(rows) - len(not_ready),
            "total": len(rows),
            "not_ready": not_ready,
            "rerun": rerun,
            "details_recorded": bool(details),
        }
        if not rows:
            return
        try:
            os.makedirs(report_dir, exist_ok=True)
            with open(os.path.join(report_dir, "fleet-summary.json"), "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=2, sort_keys=False)
                handle.write("\n")
            with open(os.path.join(report_dir, "fleet-summary.md"), "w", encoding="utf-8") as handle:
                handle.write(render_markdown(summary))
            with open(limit_file, "w", encoding="utf-8") as handle:
                handle.write("".join(f"{u}\n" for u in not_ready))
        except OSError as exc:
            self._display.warning(f"fleet_status: could not write the fleet summary to {report_dir}: {exc}")
        if not self._machine_readable_stdout():
            self._display.display(render_console(summary), screen_only=True)

    @staticmethod
    def _machine_readable_stdout():
        """True when the stdout callback writes JSON (ansible.posix.json, .jsonl): text after it would break it."""
        stdout_callback = str(C.config.get_config_value("DEFAULT_STDOUT_CALLBACK") or "")
        return stdout_callback.rsplit(".", maxsplit=1)[-1] in ("json", "jsonl")

    def _rerun_command(self, limit_file, organizers):
        args = context.CLIARGS
        argv = ["ansible-playbook"]
        for source in args.get("inventory") or ():
            argv += ["-i", source]
        for extra in args.get("extra_vars") or ():
            argv += ["-e", extra]
        if args.get("check"):
            argv.append("--check")
        # The organizer comes along so that the summary play runs again.
        limit = "@" + limit_file
        if organizers:
            limit += "," + ",".join(organizers)
        argv += ["--limit", limit, self._playbook or sys.argv[-1]]
        return shlex.join(argv)
