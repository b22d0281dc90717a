#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: thor_info
short_description: Read what a Jetson AGX Thor unit reports about itself
version_added: 0.1.0
description:
  - Reads the L4T release from C(/etc/nv_tegra_release), the C(nvidia-l4t-core) package version, the board model,
    the CPU architecture, unified memory as vLLM sees it (C(MemFree)), swap, free disk at the workshop's content path,
    the power mode (C(nvpmodel -q)), whether C(jetson_clocks) pins the clocks, the Docker engine and its runtimes,
    and the workshop user's groups.
  - Every probe is read-only. A probe whose tool is missing reports V(null) instead of failing, so preflight
    asserts can name what is missing.
  - Every external command runs with a time bound (O(timeout)); a command that does not answer in time is killed with
    its whole process group. A probe that times out or fails reports V(null) and says why in RV(thor.probe_errors);
    a C(docker info) that does not answer reports RV(thor.docker.timed_out=true).
  - Checks Docker's C(daemon.json) (O(daemon_json_path)) the way dockerd would read it, so that preflight can report an
    invalid file before anything changes (RV(thor.docker.daemon_json)).
  - On a twin unit (the project's simulated Thor) the result says so in RV(thor.simulated).
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
  - jetson_thor.workshop._attributes.INFO_MODULE
options:
  data_path:
    description:
      - Path whose file system must hold the workshop content. The nearest existing parent is measured.
    type: path
    default: /
  user:
    description:
      - Account whose groups are reported (the workshop user). Omit to skip.
    type: str
  probe_docker:
    description:
      - Query the Docker engine with C(docker info). Needs root or membership of the C(docker) group.
    type: bool
    default: true
  daemon_json_path:
    description:
      - Docker's daemon configuration file, checked for RV(thor.docker.daemon_json). Read only with O(probe_docker=true).
    type: path
    default: /etc/docker/daemon.json
    version_added: 0.2.0
  timeout:
    description:
      - Seconds each external command (C(docker info), C(nvpmodel -q), C(jetson_clocks --show), C(dpkg-query)) may take
        before it is killed and reported as timed out.
    type: int
    default: 30
    version_added: 0.2.0
requirements:
  - Python 3 standard library on the unit (no pip packages).
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - name: Jetson AGX Thor facts used by the collection
    description: The formats this module parses and where they come from.
    link: https://docs.nvidia.com/jetson/agx-thor-devkit/user-guide/latest/quick_start.html
"""

EXAMPLES = r"""
- name: Read the unit's release, memory, power mode and Docker state
  jetson_thor.workshop.thor_info:
    data_path: /home/nvidia/data
    user: nvidia
  register: __thor_info

- name: Show the L4T version
  ansible.builtin.debug:
    msg: "L4T {{ __thor_info.thor.l4t.version }}, {{ __thor_info.thor.memory.free_gib }} GiB free"
"""

RETURN = r"""
thor:
  description: Everything the unit reports. Probes that could not run are V(null).
  returned: always
  type: dict
  contains:
    simulated:
      description: V(true) on a twin unit (its numbers are simulated), V(false) on real hardware.
      type: bool
      sample: false
    l4t:
      description: Parsed C(/etc/nv_tegra_release), or V(null) when absent or not an L4T release line.
      type: dict
      sample: {release: "38", revision: "2.2", version: "38.2.2", major: 38, minor: 2, patch: 2, jetpack_major: 7,
               gcid: "41844464", board: generic, eabi: aarch64, date: "Fri Aug 22 00:55:42 UTC 2025", kernel_variant: oot}
    l4t_core_version:
      description: Version of the C(nvidia-l4t-core) package.
      type: str
      sample: 38.2.2-20250925153837
    model:
      description: Board model from the device tree.
      type: str
      sample: NVIDIA Jetson AGX Thor Developer Kit
    architecture:
      description: Machine architecture (C(uname -m)).
      type: str
      sample: aarch64
    memory:
      description: Unified memory in bytes and GiB.
      type: dict
      sample: {total_bytes: 131881500672, free_bytes: 126000000000, available_bytes: 127000000000, cached_bytes: 900000000,
               swap_total_bytes: 0, swap_free_bytes: 0, total_gib: 122.82, free_gib: 117.35, available_gib: 118.28}
      contains:
        free_bytes:
          description: C(MemFree), what vLLM checks at startup on unified memory.
          type: int
          sample: 126000000000
        available_bytes:
          description: C(MemAvailable); more than RV(thor.memory.free_bytes) when dropping caches would help.
          type: int
          sample: 127000000000
    disk:
      description: File system holding O(data_path).
      type: dict
      sample: {path: /home/nvidia/data, measured_path: /home/nvidia, total_bytes: 1000000000000, free_bytes: 800000000000,
               free_gib: 745.06}
    power_mode:
      description: Current C(nvpmodel) mode.
      type: dict
      sample: {name: 120W, id: 1}
    clocks:
      description: C(jetson_clocks --show) summary.
      type: dict
      sample: {pinned: false, online_cpus: 14, gpu: {min: 0, max: 1575000000, current: 0}, emc: null}
      contains:
        pinned:
          description: V(true) when jetson_clocks is in effect (every online CPU and the GPU at minimum = maximum).
          type: bool
          sample: false
    docker:
      description: Docker engine state, or V(null) with O(probe_docker=false).
      type: dict
      sample: {installed: true, running: true, timed_out: false, server_version: "28.2.2", default_runtime: runc,
               runtimes: [nvidia, runc], storage_driver: overlay2, containers_running: 0, error: null,
               daemon_json: {path: /etc/docker/daemon.json, exists: true, valid: true, error: null}}
      contains:
        installed:
          description: Whether the C(docker) client is installed.
          type: bool
          sample: true
        running:
          description: Whether C(docker info) reached the engine.
          type: bool
          sample: true
        timed_out:
          description: V(true) when C(docker info) did not answer within O(timeout) seconds (then RV(thor.docker.running=false)).
          type: bool
          sample: false
          version_added: 0.2.0
        error:
          description:
            - Why the engine could not be queried, or V(null).
            - After a time-out, for example C(docker info did not answer within 30 s).
          type: str
          sample: Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?
        server_version:
          description: The engine's version, when running.
          type: str
          sample: "28.2.2"
        default_runtime:
          description: The engine's default runtime, when running.
          type: str
          sample: nvidia
        runtimes:
          description: The runtimes the engine knows, sorted, when running.
          type: list
          elements: str
          sample: [nvidia, runc]
        storage_driver:
          description: The engine's storage driver, when running.
          type: str
          sample: overlay2
        containers_running:
          description: How many containers run, when running.
          type: int
          sample: 0
        daemon_json:
          description:
            - The daemon configuration file O(daemon_json_path) checked as dockerd reads it at start; needs no running engine.
          type: dict
          version_added: 0.2.0
          contains:
            path:
              description: The file (O(daemon_json_path)).
              type: str
              sample: /etc/docker/daemon.json
            exists:
              description: Whether the file exists. dockerd starts with its defaults without one.
              type: bool
              sample: true
            valid:
              description:
                - V(true) when the file is a JSON object whose C(default-runtime) (if any) is declared or built in.
                - V(false) when dockerd would refuse it (then RV(thor.docker.daemon_json.error) says why).
                - V(null) when the file does not exist or cannot be read.
              type: bool
              sample: false
            error:
              description: Why the file is not valid or could not be read, with line and column for a syntax error; else V(null).
              type: str
              sample: "Expecting ',' delimiter at line 7, column 5"
    python_requests:
      description:
        - Whether the unit's Python can import C(requests), which the community.docker modules the runtime roles
          run on the unit need (Debian/Ubuntu package C(python3-requests)).
      type: bool
      sample: true
    user:
      description: The O(user) account and its groups, or V(null) when O(user) is not set.
      type: dict
      sample: {name: nvidia, exists: true, groups: [nvidia, sudo, docker]}
      contains:
        groups:
          description:
            - The account's groups, sorted. A primary group without an C(/etc/group) entry appears as its numeric id
              (as C(id) shows it).
          type: list
          elements: str
          sample: [nvidia, sudo, docker]
    probe_errors:
      description:
        - One line per probe whose tool exists but which timed out or failed, naming the command and what happened.
          The probe's value is V(null). Empty when every probe answered.
        - A missing tool is not an error here; its probe is simply V(null).
      type: list
      elements: str
      sample: ["`nvpmodel -q` did not answer within 30 s (killed)"]
      version_added: 0.2.0
"""

import grp
import importlib.util
import json
import os
import platform
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import format_seconds, run_bounded
from ansible_collections.jetson_thor.workshop.plugins.module_utils._daemon_json import (
    DaemonJsonError,
    check_default_runtime,
    parse_daemon_json,
)
from ansible_collections.jetson_thor.workshop.plugins.module_utils._thor import (
    GIB,
    memory_summary,
    nearest_statvfs,
    parse_docker_info,
    parse_jetson_clocks_show,
    parse_meminfo,
    parse_nv_tegra_release,
    parse_nvpmodel_query,
)

TWIN_MARKER = "/etc/thor-twin"
_OPT_DIRS = ["/usr/sbin", "/usr/bin", "/sbin"]


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


class Prober:
    """Runs the read-only probes, each bounded by ``timeout`` seconds, and collects what went wrong."""

    def __init__(self, module, timeout):
        self.module = module
        self.timeout = timeout
        self.errors = []

    def run(self, argv):
        """stdout of a probe, or None when the tool is missing (silently) or times out or fails (noted)."""
        binary = self.module.get_bin_path(argv[0], opt_dirs=_OPT_DIRS)
        if binary is None:
            return None
        result = run_bounded(self.module, [binary, *argv[1:]], self.timeout)
        if result.ok:
            return result.stdout
        self.errors.append(result.describe(self.timeout).replace(binary, argv[0], 1))
        return None

    def docker(self, daemon_json_path):
        binary = self.module.get_bin_path("docker")
        state = {"installed": binary is not None, "running": False, "timed_out": False, "error": None}
        state["daemon_json"] = _daemon_json(daemon_json_path)
        if binary is None:
            return state
        result = run_bounded(self.module, [binary, "info", "--format", "{{json .}}"], self.timeout)
        if result.timed_out:
            state["timed_out"] = True
            state["error"] = f"docker info did not answer within {format_seconds(self.timeout)} s"
            return state
        if result.rc != 0:
            state["error"] = result.output or f"docker info failed (rc {result.rc})"
            return state
        try:
            info = json.loads(result.stdout)
        except ValueError:
            state["error"] = "docker info did not return JSON"
            return state
        if info.get("ServerErrors"):
            state["error"] = "; ".join(info["ServerErrors"])
            return state
        state["running"] = True
        state.update(parse_docker_info(info))
        return state


def _daemon_json(path):
    """{path, exists, valid, error}: daemon.json as dockerd would take it at start."""
    state = {"path": path, "exists": os.path.lexists(path), "valid": None, "error": None}
    if not state["exists"]:
        return state
    if os.path.isdir(path):
        state.update(valid=False, error="is a directory, dockerd expects a JSON file")
        return state
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        if not os.path.exists(path):
            # A dangling symbolic link: dockerd sees no file.
            state.update(exists=False)
            return state
        state["error"] = f"cannot read it: {exc.strerror}"
        return state
    try:
        config = parse_daemon_json(raw)
    except DaemonJsonError as exc:
        where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
        state.update(valid=False, error=f"{exc.message}{where}")
        return state
    problem = check_default_runtime(config)
    runtimes = config.get("runtimes")
    if runtimes is not None and not isinstance(runtimes, dict):
        problem = f'"runtimes" is a JSON {type(runtimes).__name__}, dockerd needs an object'
    state.update(valid=problem is None, error=problem)
    return state


def _disk(path):
    stats, probe = nearest_statvfs(path)
    free = stats.f_bavail * stats.f_frsize
    return {
        "path": path,
        "measured_path": probe,
        "total_bytes": stats.f_blocks * stats.f_frsize,
        "free_bytes": free,
        "free_gib": round(free / GIB, 2),
    }


def _group_name(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        # No /etc/group entry for the primary group: `id` shows the number.
        return str(gid)


def _user(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"name": name, "exists": False, "groups": []}
    groups = sorted({g.gr_name for g in grp.getgrall() if name in g.gr_mem} | {_group_name(entry.pw_gid)})
    return {"name": name, "exists": True, "groups": groups}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_path=dict(type="path", default="/"),
            user=dict(type="str"),
            probe_docker=dict(type="bool", default=True),
            daemon_json_path=dict(type="path", default="/etc/docker/daemon.json"),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1 second, got {params['timeout']}.")
    probe = Prober(module, params["timeout"])
    model = _read("/proc/device-tree/model")
    thor = {
        "simulated": os.path.exists(TWIN_MARKER),
        "l4t": parse_nv_tegra_release(_read("/etc/nv_tegra_release")),
        "l4t_core_version": (probe.run(["dpkg-query", "-W", "-f=${Version}", "nvidia-l4t-core"]) or "").strip() or None,
        "model": model.rstrip("\x00\n") if model else None,
        "architecture": platform.machine(),
        "memory": memory_summary(parse_meminfo(_read("/proc/meminfo"))),
        "disk": _disk(params["data_path"]),
        "power_mode": parse_nvpmodel_query(probe.run(["nvpmodel", "-q"])),
        "clocks": parse_jetson_clocks_show(probe.run(["jetson_clocks", "--show"])),
        "docker": probe.docker(params["daemon_json_path"]) if params["probe_docker"] else None,
        "python_requests": importlib.util.find_spec("requests") is not None,
        "user": _user(params["user"]) if params["user"] else None,
    }
    thor["probe_errors"] = probe.errors
    module.exit_json(changed=False, thor=thor)


if __name__ == "__main__":
    main()
