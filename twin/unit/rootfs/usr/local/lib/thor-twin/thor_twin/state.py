"""Paths, fault knobs and locking shared by every thor-twin tool.

Persistent state (survives a twin reboot): <lib>/faults.json, every fault knob.
Runtime state (cleared by a reboot, /run is tmpfs): <run>/runtime.json.
Every read-modify-write holds an exclusive flock on <run>/lock.
"""

import contextlib
import fcntl
import json
import os

GIB = 1 << 30
# device.json total_bytes; /proc/meminfo MemTotal is the same in kB (128790528 kB = 122.82 GiB).
TOTAL_BYTES = 131881500672

# Every knob, with its default; docs/twin.md "Fault knobs" explains each one.
DEFAULT_FAULTS = {
    "memory_baseline_gib": 4.0,
    "memory_stuck_on_release": False,
    "memory_stuck_gib": 0.0,
    "stuck_survives_docker_restart": False,
    "stuck_survives_reboot": False,
    "nvml_ok": True,
    "nvml_broken_until_reboot": False,
    "l4t_release": 38,
    "l4t_revision": "2.2",
    "power_mode": None,  # None: the DEFAULT of /etc/nvpmodel.conf
    "nvpmodel_fails": False,  # nvpmodel -m fails (broken power-model config); -q still answers
    "dockerd_hang": False,  # memd keeps dockerd SIGSTOPped: its socket stays, nothing answers
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Paths:
    """Where the twin keeps its files; tests point these at a temporary directory."""

    def __init__(self, run=None, lib=None, etc="/etc", dpkg_status="/var/lib/dpkg/status"):
        self.run = run or os.environ.get("THOR_TWIN_RUN", "/run/thor-twin")
        self.lib = lib or os.environ.get("THOR_TWIN_LIB", "/var/lib/thor-twin")
        self.etc = etc
        self.dpkg_status = dpkg_status
        self.gpu = os.path.join(self.run, "gpu")
        self.alloc = os.path.join(self.gpu, "alloc")
        self.faults = os.path.join(self.lib, "faults.json")
        self.runtime = os.path.join(self.run, "runtime.json")
        self.memory = os.path.join(self.run, "memory.json")
        self.lock = os.path.join(self.run, "lock")
        self.boot_id = os.path.join(self.run, "boot_id")
        self.drop_caches = os.path.join(self.run, "drop_caches")
        self.clocks = os.path.join(self.run, "clocks.json")
        self.images_done = os.path.join(self.run, "images.done")
        self.docker_pid = "/run/docker.pid"
        self.docker_sock = "/run/docker.sock"
        self.proc = "/proc"

    def makedirs(self):
        os.makedirs(self.lib, exist_ok=True)
        os.makedirs(self.alloc, exist_ok=True)
        os.chmod(self.alloc, 0o1777)  # any container user may register a GPU client


@contextlib.contextmanager
def locked(paths):
    """Hold the twin's global lock (exclusive flock on <run>/lock)."""
    os.makedirs(paths.run, exist_ok=True)
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def read_json(path, default=None):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return default


def write_json(path, data):
    """Replace path atomically (never used for bind-mounted files)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def load_faults(paths):
    return {**DEFAULT_FAULTS, **read_json(paths.faults, {})}


def save_faults(paths, faults):
    write_json(paths.faults, {k: faults[k] for k in DEFAULT_FAULTS})


def convert(key, text):
    """Turn the text of `key=text` into the knob's type; ValueError when it does not fit."""
    if key not in DEFAULT_FAULTS:
        raise ValueError(f"unknown fault knob {key!r}; known: {', '.join(DEFAULT_FAULTS)}")
    text = str(text).strip()
    default = DEFAULT_FAULTS[key]
    if isinstance(default, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError(f"{key} takes true or false, not {text!r}")
    if key in ("power_mode", "l4t_release"):
        if key == "power_mode" and text.lower() in ("", "none", "null", "default"):
            return None
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{key} takes an integer, not {text!r}") from None
        if value < 0:
            raise ValueError(f"{key} must not be negative")
        return value
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{key} takes a number of GiB, not {text!r}") from None
        if not 0 <= value <= TOTAL_BYTES / GIB:
            raise ValueError(f"{key} must be between 0 and {TOTAL_BYTES / GIB:.2f} GiB")
        return value
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{key} takes a word such as 2.2, not {text!r}")
    return text


def parse_assignment(arg):
    """'key=value' -> (key, typed value)."""
    key, sep, text = arg.partition("=")
    if not sep:
        raise ValueError(f"expected key=value, got {arg!r}")
    key = key.strip()
    return key, convert(key, text)


def validate(faults):
    """Check a dict of knobs (e.g. THOR_TWIN_FAULTS JSON) and return it with typed values."""
    if not isinstance(faults, dict):
        raise ValueError("fault knobs must be a JSON object")
    def text(value):
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)

    return {key: convert(key, text(value)) for key, value in faults.items()}


def nvml_ok(faults):
    return bool(faults["nvml_ok"]) and not faults["nvml_broken_until_reboot"]
