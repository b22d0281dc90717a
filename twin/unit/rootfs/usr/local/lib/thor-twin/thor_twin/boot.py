"""Once per twin boot (thor-twin-boot.service, before sysinit.target): fresh boot_id, fault bookkeeping,
L4T files, and the bind mounts over /proc that make the unit look like a Thor."""

import json
import os
import re
import subprocess
import sys
import uuid

from . import memd, state

NV_TEGRA_RELEASE = (
    "# R{release} (release), REVISION: {revision}, GCID: 42205042, BOARD: generic, EABI: aarch64, "
    "DATE: Thu Sep 25 15:38:37 UTC 2025\n"
    "# KERNEL_VARIANT: oot\n"
    "TARGET_USERSPACE_LIB_DIR=nvidia\n"
    "TARGET_USERSPACE_LIB_DIR_PATH=usr/lib/aarch64-linux-gnu/nvidia\n"
    "# THOR-TWIN: simulated (fault knobs l4t_release, l4t_revision)\n"
)
L4T_BUILD = "20250925153837"
# /proc files replaced by regular files, as systemd-nspawn and LXCFS do.
PROC_BINDS = (("gpu/meminfo", "/proc/meminfo"), ("drop_caches", "/proc/sys/vm/drop_caches"),
              ("boot_id", "/proc/sys/kernel/random/boot_id"))


def l4t_version(faults):
    return f"{faults['l4t_release']}.{faults['l4t_revision']}-{L4T_BUILD}"


def set_dpkg_version(status_text, package, version):
    """Rewrite the Version: of one package's stanza in a dpkg status file."""
    pattern = re.compile(rf"(^Package: {re.escape(package)}\n(?:[^\n]+\n)*?Version: )[^\n]*", re.M)
    new, count = pattern.subn(lambda m: m.group(1) + version, status_text)
    if not count:
        raise ValueError(f"{package} is not in the dpkg status file")
    return new


def render_l4t(paths, faults):
    text = NV_TEGRA_RELEASE.format(release=faults["l4t_release"], revision=faults["l4t_revision"])
    with open(os.path.join(paths.etc, "nv_tegra_release"), "w", encoding="ascii") as f:
        f.write(text)
    with open(paths.dpkg_status, encoding="utf-8") as f:
        status = f.read()
    new = set_dpkg_version(status, "nvidia-l4t-core", l4t_version(faults))
    if new != status:
        tmp = paths.dpkg_status + ".thor-twin"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(new)
        os.replace(tmp, paths.dpkg_status)


def pid1_faults(environ_path="/proc/1/environ"):
    """THOR_TWIN_FAULTS from the container's environment (systemd does not pass it to services)."""
    try:
        with open(environ_path, "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return None
    for entry in entries:
        if entry.startswith(b"THOR_TWIN_FAULTS="):
            return entry.split(b"=", 1)[1].decode()
    return None


def start_of_boot(faults, first_boot, env_faults):
    """The knobs after a (re)boot: a reboot heals what it heals; the first boot takes THOR_TWIN_FAULTS."""
    faults = dict(faults)
    if first_boot:
        if env_faults:
            try:
                faults.update(state.validate(json.loads(env_faults)))
            except ValueError as e:  # a bad THOR_TWIN_FAULTS must not stop the boot: defaults, and say so
                print(f"thor-twin: ignoring THOR_TWIN_FAULTS ({e})", file=sys.stderr)
    else:
        faults["nvml_broken_until_reboot"] = False
        if not faults["stuck_survives_reboot"]:
            faults["memory_stuck_gib"] = 0.0
    return faults


def mounted(target, mountinfo="/proc/self/mountinfo"):
    with open(mountinfo, encoding="utf-8") as f:
        return any(line.split()[4] == target for line in f)


def boot(paths):
    paths.makedirs()
    with state.locked(paths):
        if not os.path.exists(paths.runtime):  # once per boot: /run is a fresh tmpfs
            first_boot = not os.path.exists(paths.faults)
            faults = start_of_boot(state.load_faults(paths), first_boot, pid1_faults())
            state.save_faults(paths, faults)
            with open(paths.boot_id, "w", encoding="ascii") as f:
                f.write(f"{uuid.uuid4()}\n")
            with open(paths.drop_caches, "w", encoding="ascii") as f:
                f.write("0\n")
            runtime = memd.new_runtime()
            runtime["drop_caches_mtime_ns"] = os.stat(paths.drop_caches).st_mtime_ns
            state.write_json(paths.runtime, runtime)
        render_l4t(paths, state.load_faults(paths))
    memd.tick(paths)
    for source, target in PROC_BINDS:
        if not mounted(target):
            subprocess.run(["mount", "--bind", os.path.join(paths.run, source), target], check=True)
