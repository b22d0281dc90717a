"""nvidia-container-runtime (SIMULATED): an OCI runtime shim in front of runc.

On `create` it edits the bundle's config.json so the container gets the simulated GPU (docs/twin-contract.md):
env NVIDIA_TWIN_GPU=1, <run>/gpu bind-mounted rw at /run/nvidia-twin, the stub nvidia-smi ro at
/usr/bin/nvidia-smi. Then, for every subcommand, it execs runc with the original arguments.
"""

import json
import os
import shutil
import sys

GPU_DIR = "/run/thor-twin/gpu"
SMI = "/usr/bin/nvidia-smi"
TWIN_ENV = "NVIDIA_TWIN_GPU=1"
# runc's global options that take a value (runc --root X --log Y --log-format json create ...).
GLOBAL_VALUE_OPTIONS = ("--root", "--log", "--log-format", "--criu", "--rootless")


def find_subcommand(args):
    """Index of runc's subcommand in args (argv without the program name), or None."""
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("-"):
            return i
        if arg in GLOBAL_VALUE_OPTIONS:
            i += 1  # skip the value
        i += 1
    return None


def bundle_dir(create_args, cwd):
    """The bundle of `runc create [options] <id>`: --bundle/-b, default the working directory."""
    for i, arg in enumerate(create_args):
        if arg in ("--bundle", "-b") and i + 1 < len(create_args):
            return create_args[i + 1]
        for prefix in ("--bundle=", "-b="):
            if arg.startswith(prefix):
                return arg[len(prefix):]
    return cwd


def gpu_mounts(gpu_dir=GPU_DIR, smi=SMI):
    return [
        {"destination": "/run/nvidia-twin", "type": "bind", "source": gpu_dir, "options": ["rbind", "rw", "nosuid", "nodev"]},
        {"destination": "/usr/bin/nvidia-smi", "type": "bind", "source": smi, "options": ["rbind", "ro", "nosuid", "nodev"]},
    ]


def patch_config(config, gpu_dir=GPU_DIR, smi=SMI):
    """Add the simulated GPU to an OCI config (a dict); applying it twice changes nothing."""
    process = config.setdefault("process", {})
    env = process.setdefault("env", [])
    if TWIN_ENV not in env:
        env[:] = [e for e in env if not e.startswith("NVIDIA_TWIN_GPU=")] + [TWIN_ENV]
    mounts = config.setdefault("mounts", [])
    wanted = gpu_mounts(gpu_dir, smi)
    destinations = {m["destination"] for m in wanted}
    mounts[:] = [m for m in mounts if m.get("destination") not in destinations] + wanted
    return config


def find_runc():
    for path in ("/usr/sbin/runc", "/usr/bin/runc"):
        if os.access(path, os.X_OK):
            return path
    return shutil.which("runc") or "runc"


def main(argv=None):
    args = list(sys.argv[1:] if argv is None else argv)
    i = find_subcommand(args)
    if i is not None and args[i] == "create":
        path = os.path.join(bundle_dir(args[i + 1:], os.getcwd()), "config.json")
        try:
            with open(path, encoding="utf-8") as f:
                config = json.load(f)
            patch_config(config)
            tmp = path + ".nvidia-twin"
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(config, f)
            os.replace(tmp, path)
        except (OSError, ValueError) as e:
            print(f"nvidia-container-runtime (thor-twin, simulated): cannot edit {path}: {e}", file=sys.stderr)
            return 1
    runc = find_runc()
    os.execv(runc, [runc, *args])
    return 127  # not reached
