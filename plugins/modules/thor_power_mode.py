#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: thor_power_mode
short_description: Set a Jetson's nvpmodel power mode and pin its clocks with jetson_clocks, only when needed
version_added: 0.1.0
description:
  - Queries the current power mode with C(nvpmodel -q) and runs C(nvpmodel -m <mode>) only when it differs from O(mode).
  - Reads C(jetson_clocks --show) and runs C(jetson_clocks) only when O(pin_clocks=true) and the clocks are not pinned
    already. A mode change resets the clocks, so the module re-reads them after changing the mode.
  - Never unpins clocks and never reboots. When C(nvpmodel) says the new mode needs a reboot, the module answers its
    prompt with "no", reports RV(reboot_required) and leaves the reboot to the caller.
  - Every command runs with a time bound (O(timeout)). A command that does not finish in time is killed with its whole
    process group and the module fails, naming the command and the bound.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module only queries and predicts what it would run (RV(commands)).
  diff_mode:
    support: full
    details: The diff shows the power mode and whether the clocks are pinned, before and after.
  idempotent:
    support: full
options:
  mode:
    description:
      - The C(nvpmodel) mode id to be in. On the Jetson AGX Thor developer kit V(0) is C(MAXN) and V(1) (the default
        at first boot) is C(120W). Omit to leave the mode alone.
    type: int
  pin_clocks:
    description:
      - Run C(jetson_clocks) when the clocks are not pinned at the mode's maximum. The pinning does not survive a reboot.
      - V(false) leaves the clocks as they are; the module never unpins them.
    type: bool
    default: false
  timeout:
    description:
      - Seconds each command (C(nvpmodel), C(jetson_clocks)) may take before it is killed and the module fails.
    type: int
    default: 60
    version_added: 0.2.0
requirements:
  - C(nvpmodel) and (for O(pin_clocks)) C(jetson_clocks) on the unit, as JetPack installs them. Run as root.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.thor_info
"""

EXAMPLES = r"""
- name: MAXN with pinned clocks, for benchmark runs
  jetson_thor.workshop.thor_power_mode:
    mode: 0
    pin_clocks: true
  register: __power
"""

RETURN = r"""
power_mode:
  description: The power mode before and after (in check mode, as it would be after).
  returned: always
  type: dict
  sample: {before: {name: 120W, id: 1}, after: {name: MAXN, id: 0}}
clocks_pinned:
  description: Whether the clocks were pinned before and are pinned after.
  returned: always
  type: dict
  sample: {before: false, after: true}
commands:
  description: The commands the module ran (in check mode, would run).
  returned: always
  type: list
  elements: list
  sample: [[nvpmodel, -m, "0"], [jetson_clocks]]
reboot_required:
  description: Whether C(nvpmodel) said the new mode takes effect only after a reboot.
  returned: always
  type: bool
  sample: false
"""

import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import format_seconds, run_bounded
from ansible_collections.jetson_thor.workshop.plugins.module_utils._thor import (
    parse_jetson_clocks_show,
    parse_nvpmodel_query,
)

_REBOOT_RE = re.compile(r"reboot", re.IGNORECASE)
_OPT_DIRS = ["/usr/sbin", "/usr/bin", "/sbin"]


class PowerMode:
    def __init__(self, module, timeout):
        self.module = module
        self.timeout = timeout

    def _bin(self, name):
        return self.module.get_bin_path(name, required=True, opt_dirs=_OPT_DIRS)

    def _run(self, argv, data=None):
        result = run_bounded(self.module, [self._bin(argv[0]), *argv[1:]], self.timeout, data=data)
        command = " ".join(argv)
        if result.timed_out:
            self.module.fail_json(
                msg=(
                    f"`{command}` did not finish within {format_seconds(self.timeout)} s (the timeout option); "
                    "it was killed. The unit may be busy or the tool may wait for input."
                ),
                stdout=result.stdout,
                stderr=result.stderr,
            )
        if result.rc != 0:
            reason = result.output
            self.module.fail_json(
                msg=f"`{command}` failed (rc {result.rc}): {reason}", rc=result.rc, stdout=result.stdout, stderr=result.stderr
            )
        return result.stdout + result.stderr

    def query_mode(self):
        mode = parse_nvpmodel_query(self._run(["nvpmodel", "-q"]))
        if mode is None or mode.get("id") is None:
            self.module.fail_json(msg="Could not read the power mode id from `nvpmodel -q`.")
        return mode

    def clocks_pinned(self):
        clocks = parse_jetson_clocks_show(self._run(["jetson_clocks", "--show"]))
        if clocks is None:
            self.module.fail_json(msg="Could not read CPU or GPU frequencies from `jetson_clocks --show`.")
        return clocks["pinned"]


def _describe(mode, pinned):
    lines = [f"power mode: {mode['name'] or 'mode'} ({mode['id']})"]
    if pinned is not None:
        lines.append(f"clocks pinned: {str(pinned).lower()}")
    return "\n".join(lines) + "\n"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="int"),
            pin_clocks=dict(type="bool", default=False),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    want_mode, pin = module.params["mode"], module.params["pin_clocks"]
    if module.params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1 second, got {module.params['timeout']}.")
    power = PowerMode(module, module.params["timeout"])
    commands, reboot_required = [], False

    mode_before = power.query_mode()
    mode_after = mode_before
    pinned_before = power.clocks_pinned() if pin else None
    pinned_after = pinned_before

    if want_mode is not None and mode_before["id"] != want_mode:
        argv = ["nvpmodel", "-m", str(want_mode)]
        commands.append(argv)
        if module.check_mode:
            mode_after = {"name": None, "id": want_mode}
            # nvpmodel resets the clock limits to the new mode's defaults.
            pinned_after = False if pin else None
        else:
            # nvpmodel asks whether to reboot now when the mode needs one: answer no, the caller decides.
            output = power._run(argv, data="no\n")
            reboot_required = bool(_REBOOT_RE.search(output))
            mode_after = power.query_mode()
            if mode_after["id"] != want_mode and not reboot_required:
                module.fail_json(
                    msg=(
                        f"`nvpmodel -m {want_mode}` ran but the unit still reports "
                        f"mode {mode_after['id']} ({mode_after['name']})."
                    ),
                    stdout=output,
                )
            pinned_after = power.clocks_pinned() if pin else None

    if pin and not pinned_after:
        commands.append(["jetson_clocks"])
        if module.check_mode:
            pinned_after = True
        else:
            power._run(["jetson_clocks"])
            pinned_after = power.clocks_pinned()
            if not pinned_after:
                module.fail_json(msg="`jetson_clocks` ran but `jetson_clocks --show` still reports unpinned clocks.")

    result = {
        "changed": bool(commands),
        "power_mode": {"before": mode_before, "after": mode_after},
        "clocks_pinned": {"before": pinned_before, "after": pinned_after},
        "commands": commands,
        "reboot_required": reboot_required,
    }
    if module._diff:
        result["diff"] = {"before": _describe(mode_before, pinned_before), "after": _describe(mode_after, pinned_after)}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
