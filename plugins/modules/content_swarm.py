#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: content_swarm
short_description: Start, watch and stop the peer-to-peer engine that spreads the workshop content
version_added: 0.3.0
description:
  - Runs the content swarm's engine (libtorrent, from a wheel shipped by the organizer and unpacked next to the engine;
    no pip, no internet) on a unit or on the organizer, detached from Ansible, and reports on it.
  - V(started) writes the engine program and its configuration into O(state_dir) and starts it. With systemd (the units)
    it is a transient unit (C(systemd-run --unit <name> --collect -p RuntimeMaxSec=<timeout>)); it outlives the SSH
    session, systemd kills it at the time bound even if the controller is gone, and C(systemctl stop) ends it. Without
    systemd (the organizer, a container) it is a process in a session of its own, with a pid file. Either way the engine
    also stops itself at its deadline.
  - The engine listens on O(listen_address) only and admits only O(peers) (an IP filter); it has no tracker, DHT, local
    peer discovery, UPnP, NAT-PMP or uTP. A V(seed) trusts its files and never writes to them (seed mode and upload
    mode); a V(leech) checks what is already on disk (no resume data, so every piece is hashed) and fetches only the
    pieces that are missing or bad, then keeps seeding to the others until it is stopped.
  - A seed writes every expected unit's progress (bytes, rate, ETA), from the pieces the unit announced, to
    C(content-progress.json) and C(content-progress.txt) in O(progress_dir) once a second
    (C(watch cat build/reports/content-progress.txt)).
  - V(waited) (on the seed's host) returns when every expected unit has all the content, when none has made progress
    for O(stall_timeout) seconds, when the seed has stopped, or after O(timeout) seconds; it never fails by itself.
  - V(status) reads a unit's engine; V(stopped) stops it (SIGTERM, then SIGKILL after 30 seconds).
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details:
      - V(started) and V(stopped) only report whether they would change something; V(status) and V(waited) read only.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: V(started) (re)starts the engine on every run; V(stopped) changes nothing when no engine runs.
options:
  state:
    description: What to do with the engine.
    type: str
    choices: [started, status, waited, stopped]
    default: status
  name:
    description: Name of the engine instance (the transient systemd unit's name, without C(.service)).
    type: str
    default: thor-content-swarm
  state_dir:
    description: Directory of the engine's program, configuration, status file and unpacked libtorrent (created).
    type: path
    required: true
  role:
    description: V(seed) serves complete, read-only content; V(leech) fetches what is missing and then seeds too.
    type: str
    choices: [seed, leech]
    default: leech
  torrent:
    description: The .torrent file on this host (made by M(jetson_thor.workshop.content_torrent)). Required to start.
    type: path
  save_path:
    description: The content root the torrent's files are relative to. Required to start.
    type: path
  listen_address:
    description: The IP address (on the fleet network) the engine listens on and connects from. Required to start.
    type: str
  port:
    description: The TCP port the engine listens on (the same on every host).
    type: int
    default: 6881
  peers:
    description:
      - The other engines, from the inventory. Each is connected to explicitly, again every 3 seconds while not
        connected, and only these addresses may connect.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The peer's inventory name (for progress reports).
        type: str
        required: true
      address:
        description: The peer's IP address on the fleet network.
        type: str
        required: true
      port:
        description: The peer's port (default O(port)).
        type: int
  expected:
    description: For a seed, the names of the O(peers) whose progress it reports and waits for.
    type: list
    elements: str
    default: []
  engine_wheel:
    description:
      - The libtorrent wheel on this host; it is unpacked once into O(state_dir)C(/engine/<wheel name>), which goes on
        the engine's C(PYTHONPATH). Required to start.
    type: path
  python:
    description: The Python that runs the engine (default the one running this module).
    type: path
  timeout:
    description:
      - V(started) the seconds the engine may run in all (its own deadline and systemd's C(RuntimeMaxSec)).
      - V(waited) the seconds to wait at most.
    type: int
    default: 7200
  stall_timeout:
    description: V(waited) returns when no unit that still needs content has progressed for this many seconds.
    type: int
    default: 300
  progress_dir:
    description: Where a seed writes C(content-progress.json) and C(content-progress.txt) (created).
    type: path
  launcher:
    description:
      - How the engine is started. V(systemd) a transient unit, V(process) a detached process, V(auto) systemd when it
        runs this host (and C(systemd-run) exists), else a process.
    type: str
    choices: [auto, systemd, process]
    default: auto
  user:
    description:
      - The account the engine runs as (so the files it writes belong to it). With V(process) only the account running
        the module can be used; empty means that account.
    type: str
    default: ""
  super_seed:
    description: A seed hands out each piece about once and lets the units trade the rest (libtorrent super seeding).
    type: bool
    default: false
  settings:
    description: More libtorrent C(settings_pack) values, over the closed-LAN settings (docs/content.md).
    type: dict
    default: {}
requirements:
  - Python 3 standard library on the host, and the libtorrent wheel for its Python and architecture.
  - systemd (C(systemd-run), C(systemctl)) for O(launcher=systemd).
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.content_torrent
  - module: jetson_thor.workshop.content_verify
  - name: libtorrent settings
    description: The settings_pack reference.
    link: https://www.libtorrent.org/reference-Settings.html
"""

EXAMPLES = r"""
- name: Seed the content from the organizer, read-only
  jetson_thor.workshop.content_swarm:
    state: started
    role: seed
    state_dir: /home/organizer/.cache/jetson_thor_workshop/content/seed
    torrent: /home/organizer/.cache/jetson_thor_workshop/content/torrents/0123abcd-256k.torrent
    save_path: /srv/workshop-data
    listen_address: 10.0.0.1
    engine_wheel: /srv/wheels/libtorrent-2.1.1-cp311-cp311-manylinux_2_17_x86_64.whl
    peers: [{name: thor-01, address: 10.0.0.11}, {name: thor-02, address: 10.0.0.12}]
    expected: [thor-01, thor-02]
    progress_dir: build/reports
    timeout: 7200

- name: Fetch the content on a unit and keep seeding
  jetson_thor.workshop.content_swarm:
    state: started
    state_dir: /var/lib/thor-content
    torrent: /var/lib/thor-content/content.torrent
    save_path: /home/nvidia/data
    listen_address: 10.0.0.11
    engine_wheel: /var/lib/thor-content/libtorrent-2.1.1-cp312-cp312-manylinux_2_17_aarch64.manylinux2014_aarch64.whl
    peers: [{name: organizer, address: 10.0.0.1}, {name: thor-02, address: 10.0.0.12}]
    user: nvidia
  become: true

- name: Wait on the organizer until every unit has the content
  jetson_thor.workshop.content_swarm:
    state: waited
    state_dir: /home/organizer/.cache/jetson_thor_workshop/content/seed
    progress_dir: build/reports
    timeout: 7200
  register: __swarm_wait

- name: Stop the engine
  jetson_thor.workshop.content_swarm:
    state: stopped
    state_dir: /var/lib/thor-content
  become: true
"""

RETURN = r"""
running:
  description: Whether the engine runs at the end.
  returned: always
  type: bool
  sample: true
launcher:
  description: How the engine was (or would be) started, V(systemd) or V(process).
  returned: always
  type: str
  sample: systemd
engine:
  description:
    - The engine's last status (its status file), or V({}) when it never wrote one. Byte counts are of this engine run.
  returned: always
  type: dict
  contains:
    complete:
      description: Every piece is on disk and hash-checked.
      type: bool
    state:
      description: libtorrent's state (V(checking_files), V(downloading), V(seeding)...).
      type: str
    total_bytes:
      description: Bytes the torrent holds.
      type: int
    have_bytes:
      description: Bytes on disk that passed the piece hash check.
      type: int
    have_at_start:
      description: Bytes that passed the check of the files already on disk, before anything was fetched.
      type: int
    payload_download:
      description: Content bytes received in this run (what was re-sent to this host).
      type: int
    payload_upload:
      description: Content bytes sent to other hosts in this run.
      type: int
    failed_bytes:
      description: Received bytes that failed the piece hash check (fetched again).
      type: int
    redundant_bytes:
      description: Received bytes that were not needed (duplicates).
      type: int
    errors:
      description: The engine's last errors (file, torrent, listen).
      type: list
      elements: str
    stopped:
      description: Why the engine stopped (V(signal SIGTERM), V(deadline reached)...), V(null) while it runs.
      type: str
  sample: {complete: true, state: seeding, total_bytes: 52428800, have_bytes: 52428800, have_at_start: 0}
summary:
  description: One line on the engine's state, for messages.
  returned: always
  type: str
  sample: "complete: 50.0 MiB of 50.0 MiB, received 50.0 MiB in this run, 3 peers"
units:
  description: V(waited) each expected unit's progress as the seed saw it (name, state, bytes, progress, rate, eta).
  returned: when O(state=waited)
  type: list
  elements: dict
  sample: [{name: thor-01, state: done, bytes: 52428800, progress: 1.0, rate: 0.0, eta: 0}]
all_done:
  description: V(waited) whether every expected unit has all the content.
  returned: when O(state=waited)
  type: bool
  sample: true
reason:
  description: V(waited) why the wait ended.
  returned: when O(state=waited)
  type: str
  sample: every unit has the content
"""

import json
import os
import pwd
import subprocess
import sys
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _swarm
from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import run_bounded
from ansible_collections.jetson_thor.workshop.plugins.module_utils._swarm_engine import PROGRESS_JSON, PROGRESS_TXT, human_bytes

STOP_GRACE = 30


def summarize(engine, running):
    if not engine:
        return "the engine never reported (it did not start, or could not write its status file)"
    total, have = engine.get("total_bytes") or 0, engine.get("have_bytes") or 0
    pct = 100.0 * have / total if total else 100.0
    line = (
        f"{'complete' if engine.get('complete') else 'incomplete'}: {human_bytes(have)} of {human_bytes(total)} ({pct:.1f} %), "
        f"received {human_bytes(engine.get('payload_download'))} in this run, {engine.get('peers', 0)} peers"
    )
    if engine.get("checking"):
        line += ", still checking the files on disk"
    if not running:
        line += f"; the engine is not running ({engine.get('stopped') or 'it ended without stopping cleanly: killed or crashed'})"
    if engine.get("errors"):
        line += "; errors: " + " | ".join(engine["errors"])
    return line


class Swarm:
    def __init__(self, module):
        self.module = module
        p = module.params
        self.p = p
        self.files = _swarm.paths(p["state_dir"])
        self.unit = p["name"] + ".service"
        launcher = p["launcher"]
        if launcher == "auto":
            launcher = "systemd" if _swarm.has_systemd() else "process"
        self.launcher = launcher

    def systemctl(self, *args):
        return run_bounded(self.module, ["systemctl", *args], 30)

    def unit_active(self):
        result = self.systemctl("is-active", self.unit)
        return result.stdout.strip() in ("active", "activating", "deactivating", "reloading")

    def engine(self):
        return _swarm.read_json(self.files["status"]) or {}

    def running(self):
        if self.launcher == "systemd":
            return self.unit_active()
        pid = (_swarm.read_json(self.files["pid"]) or {}).get("pid")
        return _swarm.pid_alive(pid, self.files["script"])

    def stop(self):
        was = self.running()
        if self.launcher == "systemd":
            if was:
                result = self.systemctl("stop", self.unit)
                if not result.ok:
                    self.module.fail_json(msg=f"cannot stop {self.unit}: {result.describe(30)}")
            self.systemctl("reset-failed", self.unit)
        else:
            pid = (_swarm.read_json(self.files["pid"]) or {}).get("pid")
            _swarm.kill(pid, self.files["script"], STOP_GRACE)
        return was

    def start(self):
        p = self.p
        for key in ("torrent", "save_path", "listen_address", "engine_wheel"):
            if not p[key]:
                self.module.fail_json(msg=f"state=started needs {key}")
        if not os.path.isfile(p["torrent"]):
            self.module.fail_json(msg=f"the torrent {p['torrent']} is missing: the role copies it from the organizer first")
        owner = None
        if p["user"]:
            try:
                entry = pwd.getpwnam(p["user"])
            except KeyError:
                self.module.fail_json(msg=f"user {p['user']!r} does not exist on this host")
            owner = (entry.pw_uid, entry.pw_gid)
            if self.launcher == "process" and entry.pw_uid != os.getuid():
                self.module.fail_json(msg=f"launcher=process runs the engine as the module's own account, not {p['user']}")
        self.stop()
        os.makedirs(p["state_dir"], exist_ok=True)
        try:
            engine_dir = _swarm.unpack_wheel(p["engine_wheel"], os.path.join(p["state_dir"], "engine"), owner)[0]
        except _swarm.SwarmError as exc:
            self.module.fail_json(msg=str(exc))
        os.makedirs(p["save_path"], exist_ok=True)
        if p["role"] == "seed":
            if not p["progress_dir"]:
                self.module.fail_json(msg="a seed needs progress_dir")
            os.makedirs(p["progress_dir"], exist_ok=True)
            for name in (PROGRESS_JSON, PROGRESS_TXT):  # a previous run's: the wait must not read them
                if os.path.exists(os.path.join(p["progress_dir"], name)):
                    os.unlink(os.path.join(p["progress_dir"], name))
        for stale in (self.files["status"], self.files["stop"]):
            if os.path.exists(stale):
                os.unlink(stale)
        config = {
            "role": p["role"],
            "name": p["name"],
            "torrent": os.path.abspath(p["torrent"]),
            "save_path": os.path.abspath(p["save_path"]),
            "listen": f"{p['listen_address']}:{p['port']}",
            "peers": [
                {"name": peer["name"], "ip": peer["address"], "port": peer.get("port") or p["port"]} for peer in p["peers"]
            ],
            "expected": p["expected"],
            "deadline": time.time() + p["timeout"],
            "status_file": self.files["status"],
            "stop_file": self.files["stop"],
            "progress_dir": os.path.abspath(p["progress_dir"]) if p["progress_dir"] else None,
            "super_seed": p["super_seed"],
            "settings": p["settings"],
        }
        with open(self.files["script"], "w", encoding="utf-8") as out:
            out.write(_swarm.engine_source())
        with open(self.files["config"], "w", encoding="utf-8") as out:
            json.dump(config, out, indent=1)
        if owner is not None:
            for path in (p["state_dir"], self.files["script"], self.files["config"]):
                os.chown(path, *owner)
        python = p["python"] or sys.executable
        argv = [python, self.files["script"], self.files["config"]]
        if self.launcher == "systemd":
            command = [
                "systemd-run", "--unit", p["name"], "--collect", "--quiet",
                "-p", f"RuntimeMaxSec={p['timeout'] + 60}", "-p", "KillSignal=SIGTERM", "-p", f"TimeoutStopSec={STOP_GRACE}",
                f"--setenv=PYTHONPATH={engine_dir}", "-p", f"WorkingDirectory={p['state_dir']}",
            ]
            if p["user"]:
                command += ["-p", f"User={p['user']}"]
            result = run_bounded(self.module, command + argv, 30)
            if not result.ok:
                self.module.fail_json(msg=f"cannot start the engine: {result.describe(30)}")
        else:
            env = dict(os.environ, PYTHONPATH=engine_dir)
            with open(self.files["log"], "ab") as log:
                proc = subprocess.Popen(
                    argv, cwd=p["state_dir"], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, close_fds=True,
                )
            with open(self.files["pid"], "w", encoding="utf-8") as out:
                json.dump({"pid": proc.pid}, out)
        # The engine writes its first status within about a second; a wrong wheel or address fails at once.
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if os.path.exists(self.files["status"]):
                break
            if not self.running():
                break
            time.sleep(0.25)
        engine = self.engine()
        if not engine or not self.running():
            time.sleep(0.5)
            engine = self.engine()
            if not self.running() or not engine:
                self.module.fail_json(msg=f"the engine did not start: {self.why_not_started()}", engine=engine)
        if engine.get("stopped"):
            self.module.fail_json(msg=f"the engine stopped at once: {engine['stopped']}", engine=engine)

    def why_not_started(self):
        if self.launcher == "systemd":
            result = run_bounded(self.module, ["journalctl", "-u", self.unit, "-n", "8", "-o", "cat", "--no-pager"], 10)
            text = " | ".join(line for line in result.stdout.splitlines() if line.strip())
        else:
            try:
                with open(self.files["log"], encoding="utf-8", errors="replace") as f:
                    text = " | ".join(f.read().splitlines()[-8:])
            except OSError:
                text = ""
        return text or "no output"

    def wait(self):
        p = self.p
        progress_file = os.path.join(p["progress_dir"], PROGRESS_JSON)
        start = time.monotonic()
        reason = None
        snap = {}
        while True:
            snap = _swarm.read_json(progress_file) or snap
            if snap.get("all_done"):
                reason = "every unit has the content"
                break
            if not self.running():
                reason = f"the seed is not running ({self.engine().get('stopped') or 'it ended without stopping cleanly'})"
                break
            if snap and snap.get("last_change_ago", 0) > p["stall_timeout"]:
                reason = f"no unit made progress for {p['stall_timeout']} s"
                break
            if time.monotonic() - start > p["timeout"]:
                reason = f"the wait reached its time bound ({p['timeout']} s)"
                break
            time.sleep(1)
        snap = _swarm.read_json(progress_file) or snap
        return {"units": snap.get("units", []), "all_done": bool(snap.get("all_done")), "reason": reason,
                "waited": round(time.monotonic() - start, 1)}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["started", "status", "waited", "stopped"], default="status"),
            name=dict(type="str", default="thor-content-swarm"),
            state_dir=dict(type="path", required=True),
            role=dict(type="str", choices=["seed", "leech"], default="leech"),
            torrent=dict(type="path"),
            save_path=dict(type="path"),
            listen_address=dict(type="str"),
            port=dict(type="int", default=6881),
            peers=dict(
                type="list", elements="dict", default=[],
                options=dict(name=dict(type="str", required=True), address=dict(type="str", required=True),
                             port=dict(type="int")),
            ),
            expected=dict(type="list", elements="str", default=[]),
            engine_wheel=dict(type="path"),
            python=dict(type="path"),
            timeout=dict(type="int", default=7200),
            stall_timeout=dict(type="int", default=300),
            progress_dir=dict(type="path"),
            launcher=dict(type="str", choices=["auto", "systemd", "process"], default="auto"),
            user=dict(type="str", default=""),
            super_seed=dict(type="bool", default=False),
            settings=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p["timeout"] < 1 or p["stall_timeout"] < 1:
        module.fail_json(msg="timeout and stall_timeout must be at least 1 second")
    swarm = Swarm(module)
    result = {"changed": False, "launcher": swarm.launcher}
    state = p["state"]
    if state == "started":
        result["changed"] = True
        if not module.check_mode:
            swarm.start()
    elif state == "stopped":
        if module.check_mode:
            result["changed"] = swarm.running()
        else:
            result["changed"] = swarm.stop()
    elif state == "waited":
        if not p["progress_dir"]:
            module.fail_json(msg="state=waited needs progress_dir (where the seed writes its progress)")
        if not module.check_mode:
            result.update(swarm.wait())
        else:
            result.update(units=[], all_done=False, reason="check mode: nothing was started", waited=0.0)
    result["running"] = swarm.running()
    result["engine"] = swarm.engine()
    result["summary"] = summarize(result["engine"], result["running"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
