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
requirements:
  - Python 3 standard library on the unit (no pip packages).
author:
  - jetson_thor.workshop maintainers
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
      description: Unified memory in bytes and GiB; RV(thor.memory.free_bytes) is C(MemFree), what vLLM checks at startup.
      type: dict
      sample: {total_bytes: 131881500672, free_bytes: 126000000000, available_bytes: 127000000000, cached_bytes: 900000000,
               swap_total_bytes: 0, swap_free_bytes: 0, total_gib: 122.82, free_gib: 117.35, available_gib: 118.28}
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
      description: C(jetson_clocks --show) summary; RV(thor.clocks.pinned) is true when jetson_clocks is in effect.
      type: dict
      sample: {pinned: false, online_cpus: 14, gpu: {min: 0, max: 1575000000, current: 0}, emc: null}
    docker:
      description: Docker engine state.
      type: dict
      sample: {installed: true, running: true, server_version: "28.2.2", default_runtime: runc, runtimes: [nvidia, runc],
               storage_driver: overlay2, containers_running: 0, error: null}
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
"""

import grp
import importlib.util
import json
import os
import platform
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._thor import (
    GIB,
    memory_summary,
    parse_docker_info,
    parse_jetson_clocks_show,
    parse_meminfo,
    parse_nv_tegra_release,
    parse_nvpmodel_query,
)

TWIN_MARKER = "/etc/thor-twin"


def _read(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except OSError:
        return None


def _run(module, argv):
    """Run a read-only probe; return stdout or None when the tool is missing or fails."""
    binary = module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/usr/bin", "/sbin"])
    if binary is None:
        return None
    rc, out, _err = module.run_command([binary, *argv[1:]])
    return out if rc == 0 else None


def _disk(path):
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    stats = os.statvfs(probe)
    free = stats.f_bavail * stats.f_frsize
    return {
        "path": path,
        "measured_path": probe,
        "total_bytes": stats.f_blocks * stats.f_frsize,
        "free_bytes": free,
        "free_gib": round(free / GIB, 2),
    }


def _docker(module):
    binary = module.get_bin_path("docker")
    state = {"installed": binary is not None, "running": False, "error": None}
    if binary is None:
        return state
    rc, out, err = module.run_command([binary, "info", "--format", "{{json .}}"])
    if rc != 0:
        state["error"] = (err or out).strip()
        return state
    try:
        info = json.loads(out)
    except ValueError:
        state["error"] = "docker info did not return JSON"
        return state
    if info.get("ServerErrors"):
        state["error"] = "; ".join(info["ServerErrors"])
        return state
    state["running"] = True
    state.update(parse_docker_info(info))
    return state


def _user(name):
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return {"name": name, "exists": False, "groups": []}
    groups = sorted({g.gr_name for g in grp.getgrall() if name in g.gr_mem} | {grp.getgrgid(entry.pw_gid).gr_name})
    return {"name": name, "exists": True, "groups": groups}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            data_path=dict(type="path", default="/"),
            user=dict(type="str"),
            probe_docker=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    model = _read("/proc/device-tree/model")
    thor = {
        "simulated": os.path.exists(TWIN_MARKER),
        "l4t": parse_nv_tegra_release(_read("/etc/nv_tegra_release")),
        "l4t_core_version": (_run(module, ["dpkg-query", "-W", "-f=${Version}", "nvidia-l4t-core"]) or "").strip() or None,
        "model": model.rstrip("\x00\n") if model else None,
        "architecture": platform.machine(),
        "memory": memory_summary(parse_meminfo(_read("/proc/meminfo"))),
        "disk": _disk(params["data_path"]),
        "power_mode": parse_nvpmodel_query(_run(module, ["nvpmodel", "-q"])),
        "clocks": parse_jetson_clocks_show(_run(module, ["jetson_clocks", "--show"])),
        "docker": _docker(module) if params["probe_docker"] else None,
        "python_requests": importlib.util.find_spec("requests") is not None,
        "user": _user(params["user"]) if params["user"] else None,
    }
    module.exit_json(changed=False, thor=thor)


if __name__ == "__main__":
    main()
