"""nvpmodel and jetson_clocks (SIMULATED): power modes and pinned clocks of a Thor unit.

The mode is the `power_mode` fault knob (persistent: survives a reboot); unset means the
`< PM_CONFIG DEFAULT=N >` of /etc/nvpmodel.conf; the `nvpmodel_fails` knob makes `nvpmodel -m` fail.
jetson_clocks state lives in /run (lost at reboot).
"""

import json
import os
import re
import sys

from . import memd, state

CONF = "/etc/nvpmodel.conf"
STORE_DEFAULT = "/root/l4t_dfs.conf"
NOTE = "(thor-twin: simulated)"
# Per mode: CPU max kHz, GPU max Hz, EMC max Hz. [U] plausible values, not measured on a Thor.
CLOCKS = {"MAXN": (2601000, 1575000000, 4266000000), "120W": (2601000, 1386000000, 4266000000),
          "90W": (2200000, 1200000000, 3200000000), "70W": (1800000, 1000000000, 3200000000),
          "40W": (1400000, 700000000, 2133000000)}
CPUS = 14


def read_conf(path=CONF):
    """({id: name}, default id) from an nvpmodel.conf."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    modes = {int(i): n for i, n in re.findall(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=(\S+?)\s*>", text)}
    default = re.search(r"<\s*PM_CONFIG\s+DEFAULT=(\d+)\s*>", text)
    return modes, int(default.group(1)) if default else min(modes)


def current_mode(faults, conf=CONF):
    modes, default = read_conf(conf)
    mode = default if faults["power_mode"] is None else faults["power_mode"]
    return mode, modes.get(mode, f"MODE_{mode}")


def nvpmodel(argv, paths=None, conf=CONF):
    paths = paths or state.Paths()
    modes, _ = read_conf(conf)
    faults = state.load_faults(paths)
    if not argv or argv[0] in ("-h", "--help"):
        print("Usage: nvpmodel [-q [--verbose]] [-m <mode id>] [-p --verbose]  " + NOTE)
        return 0 if argv else 1
    if argv[0] == "-q":
        mode, name = current_mode(faults, conf)
        print(f"NV Power Mode: {name}\n{mode}")
        return 0
    if argv[0] == "-p":
        for mode, name in sorted(modes.items()):
            print(f"POWER_MODEL: ID={mode} NAME={name}")
        return 0
    if argv[0] == "-m" and len(argv) > 1:
        if os.geteuid() != 0:
            print("NVPM ERROR: failed to open /var/lib/nvpmodel/status: Permission denied", file=sys.stderr)
            return 1
        if faults["nvpmodel_fails"]:  # fault knob: a unit whose power-model configuration is broken
            print(f"NVPM ERROR: Error parsing {conf}: POWER_MODEL ID={argv[1]}: bad PARAM entry", file=sys.stderr)
            print(f"NVPM ERROR: failed to set power mode {argv[1]}", file=sys.stderr)
            return 1
        try:
            mode = int(argv[1])
        except ValueError:
            mode = -1
        if mode not in modes:
            print(f"NVPM ERROR: Invalid mode index: {argv[1]}", file=sys.stderr)
            return 1
        with state.locked(paths):
            faults = state.load_faults(paths)
            faults["power_mode"] = mode
            state.save_faults(paths, faults)
        clocks_write(paths, {"pinned": False})  # a mode change re-applies the mode's own clock limits
        memd.tick(paths)
        return 0
    print(f"NVPM ERROR: unknown option {argv[0]}", file=sys.stderr)
    return 1


def clocks_read(paths):
    return state.read_json(paths.clocks, {"pinned": False})


def clocks_write(paths, data):
    os.makedirs(paths.run, exist_ok=True)
    state.write_json(paths.clocks, data)


def show(paths, conf=CONF):
    pinned = clocks_read(paths)["pinned"]
    _, name = current_mode(state.load_faults(paths), conf)
    cpu, gpu, emc = CLOCKS.get(name, CLOCKS["120W"])
    cpu_min, gpu_min = (cpu, gpu) if pinned else (972000, 0)
    lines = ["SOC family:tegra264  Machine:NVIDIA Jetson AGX Thor Developer Kit", f"Online CPUs: 0-{CPUS - 1}"]
    for n in range(CPUS):
        lines.append(f"cpu{n}: Online=1 Governor={'performance' if pinned else 'schedutil'} MinFreq={cpu_min} "
                     f"MaxFreq={cpu} CurrentFreq={cpu if pinned else 972000} IdleStates: WFI=1 c7=1 ")
    lines.append(f"GPU MinFreq={gpu_min} MaxFreq={gpu} CurrentFreq={gpu if pinned else 0}")
    lines.append(f"EMC MinFreq=0 MaxFreq={emc} CurrentFreq={emc if pinned else 2133000000} FreqOverride={int(pinned)}")
    lines.append(f"NV Power Mode: {name}")
    lines.append(f"# {NOTE}")
    return "\n".join(lines)


def jetson_clocks(argv, paths=None, conf=CONF):
    paths = paths or state.Paths()
    if argv and argv[0] in ("-h", "--help"):
        print("jetson_clocks [--show] [--store [file]] [--restore [file]] [--fan]  " + NOTE)
        return 0
    if argv and argv[0] == "--show":
        print(show(paths, conf))
        return 0
    if os.geteuid() != 0:
        print("Error: Run jetson_clocks as root", file=sys.stderr)
        return 1
    if argv and argv[0] in ("--store", "--restore"):
        path = argv[1] if len(argv) > 1 else STORE_DEFAULT
        if argv[0] == "--store":
            with open(path, "w", encoding="utf-8") as f:
                f.write(f"# jetson_clocks store {NOTE}\n{json.dumps(clocks_read(paths))}\n")
            return 0
        try:
            with open(path, encoding="utf-8") as f:
                saved = json.loads(f.read().splitlines()[-1])
        except (OSError, ValueError, IndexError):
            print(f"Error: file {path} doesn't exist or is not a jetson_clocks store", file=sys.stderr)
            return 1
        clocks_write(paths, {"pinned": bool(saved.get("pinned"))})
        return 0
    if argv and argv[0] not in ("--fan",):
        print(f"Error: unknown option {argv[0]}", file=sys.stderr)
        return 1
    clocks_write(paths, {"pinned": True})
    return 0
