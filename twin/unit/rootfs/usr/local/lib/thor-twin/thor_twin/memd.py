"""thor-twin-memd: the simulated unified memory of a Thor unit, and the dockerd_hang fault.

Renders <run>/gpu/{device.json,meminfo} from the fault knobs, the page-cache term and the GPU clients
registered in <run>/gpu/alloc/ (docs/twin-contract.md), and keeps dockerd SIGSTOPped while the
`dockerd_hang` knob is set. Every state change is written to files, so one tick() can run in any process
(memd's loop, or the CLI right after it changed a knob).
"""

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import time

from . import state

KIB = 1024
MIB = 1 << 20
TICK_S = 0.2
# A GPU client creates its alloc file, then takes the lock: an unlocked file this young is not a release yet.
ALLOC_GRACE_S = 1.0
# Fixed parts of the baseline shown as buffers / non-droppable cache / slab, as on a real idle system.
BUFFERS = 64 * MIB
CACHE_FLOOR = 512 * MIB
SLAB = 256 * MIB

MEMINFO_FIELDS = (
    "MemTotal", "MemFree", "MemAvailable", "Buffers", "Cached", "SwapCached", "Active", "Inactive",
    "Active(anon)", "Inactive(anon)", "Active(file)", "Inactive(file)", "Unevictable", "Mlocked",
    "SwapTotal", "SwapFree", "Zswap", "Zswapped", "Dirty", "Writeback", "AnonPages", "Mapped", "Shmem",
    "KReclaimable", "Slab", "SReclaimable", "SUnreclaim", "KernelStack", "PageTables", "SecPageTables",
    "NFS_Unstable", "Bounce", "WritebackTmp", "CommitLimit", "Committed_AS", "VmallocTotal", "VmallocUsed",
    "VmallocChunk", "Percpu", "HardwareCorrupted", "AnonHugePages", "ShmemHugePages", "ShmemPmdMapped",
    "FileHugePages", "FilePmdMapped", "CmaTotal", "CmaFree",
)


def memory_model(*, baseline, page_cache, stuck, allocated, total=state.TOTAL_BYTES):
    """The memory picture in bytes. MemFree = total - baseline - page cache - stuck - allocations."""
    free = max(0, total - baseline - page_cache - stuck - allocated)
    floor = min(CACHE_FLOOR, baseline // 4)
    buffers = min(BUFFERS, baseline // 16)
    slab = min(SLAB, baseline // 8)
    anon = max(0, baseline - floor - buffers - slab) + stuck + allocated
    return {
        "total": total, "free": free, "available": min(total, free + page_cache + floor // 2 + buffers),
        "buffers": buffers, "cached": floor + page_cache, "page_cache": page_cache, "anon": anon,
        "slab": slab, "baseline": baseline, "stuck": stuck, "allocated": allocated,
    }


def render_meminfo(model):
    """/proc/meminfo text (kB, kernel 6.8 field order) for a memory_model()."""
    kb = {k: v // KIB for k, v in model.items()}
    anon, cached = kb["anon"], kb["cached"]
    values = dict.fromkeys(MEMINFO_FIELDS, 0)
    values.update({
        "MemTotal": kb["total"], "MemFree": kb["free"], "MemAvailable": kb["available"],
        "Buffers": kb["buffers"], "Cached": cached,
        "Active": anon * 3 // 4 + cached // 2, "Inactive": anon - anon * 3 // 4 + cached - cached // 2,
        "Active(anon)": anon * 3 // 4, "Inactive(anon)": anon - anon * 3 // 4,
        "Active(file)": cached // 2, "Inactive(file)": cached - cached // 2,
        "AnonPages": anon, "Mapped": min(cached, 393216), "Shmem": 24576,
        "KReclaimable": kb["slab"] // 2, "Slab": kb["slab"], "SReclaimable": kb["slab"] // 2,
        "SUnreclaim": kb["slab"] - kb["slab"] // 2, "KernelStack": 16384, "PageTables": 20480,
        "CommitLimit": kb["total"] // 2, "Committed_AS": anon + 2097152, "VmallocTotal": 133141626880,
        "VmallocUsed": 65536, "Percpu": 12288,
    })
    lines = [f"{name + ':':<16}{values[name]:>8} kB" for name in MEMINFO_FIELDS]
    lines += ["HugePages_Total:       0", "HugePages_Free:        0", "HugePages_Rsvd:        0",
              "HugePages_Surp:        0", "Hugepagesize:       2048 kB", "Hugetlb:               0 kB"]
    return "\n".join(lines) + "\n"


def parse_meminfo(text):
    """{'MemFree': bytes, ...} from /proc/meminfo text (used by the CLI and the tests)."""
    out = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[name] = int(parts[0]) * (KIB if parts[1:] == ["kB"] else 1)
    return out


def device_json(faults):
    return {
        "name": "NVIDIA Thor", "total_bytes": state.TOTAL_BYTES, "driver_version": "580.00",
        "cuda_version": "13.0", "compute_capability": "11.0", "nvml_ok": state.nvml_ok(faults),
        "simulated": True,
    }


def write_in_place(path, text):
    """Rewrite a file keeping its inode (it is bind-mounted over /proc/meminfo)."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def probe_alloc(path, now, grace=ALLOC_GRACE_S):
    """Return ('live', record) while a client holds the lock, ('released', record) once it is gone.

    A released file is deleted here, while memd holds its lock. Files younger than `grace` that are not
    locked yet count as live (the client may be between creating and locking them).
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return "gone", None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = False
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            held = True
        with os.fdopen(os.dup(fd), encoding="utf-8") as f:
            try:
                record = json.load(f)
            except ValueError:
                record = {}  # still being written
        if not isinstance(record, dict):
            record = {}
        if held or now - os.fstat(fd).st_mtime < grace:
            return "live", record
        os.unlink(path)
        return "released", record
    finally:
        os.close(fd)


def _int(record, key):
    try:
        return max(0, int(record.get(key, 0)))
    except (TypeError, ValueError):
        return 0


def scan_allocs(alloc_dir, now=None):
    """(bytes held by live clients, records of released clients) for every alloc/*.json."""
    now = time.time() if now is None else now
    allocated, released = 0, []
    try:
        names = sorted(n for n in os.listdir(alloc_dir) if n.endswith(".json"))
    except FileNotFoundError:
        names = []
    for name in names:
        status, record = probe_alloc(os.path.join(alloc_dir, name), now)
        if status == "live":
            allocated += _int(record, "bytes")
        elif status == "released":
            released.append(record)
    return allocated, released


def read_docker_pid(path):
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().strip() or 0) or None
    except (FileNotFoundError, ValueError):
        return None


def proc_comm(pid, proc="/proc"):
    """The command name of a process (/proc/PID/comm), or None when there is no such process."""
    try:
        with open(os.path.join(proc, str(pid), "comm"), encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None


def docker_ping(sock="/run/docker.sock", timeout=0.2):
    """True when dockerd answers GET /_ping on its socket within `timeout` s."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return s.recv(16).startswith(b"HTTP/1.")
    except OSError:
        return False


def _signal(kill, pid, sig):
    try:
        kill(pid, sig)
    except (ProcessLookupError, PermissionError):  # gone meanwhile; or a tick run by a non-root reader
        return False
    return True


def control_dockerd(hang, pid, stopped, may_stop, *, comm, ping, kill=None):
    """One step of the dockerd_hang fault; returns the pid of the dockerd memd has stopped (or None).

    hang: the knob. pid: dockerd's pid from /run/docker.pid (None if absent). stopped: what the last step
    returned. may_stop: False until the boot's image loading has finished. comm(pid) -> process name or None;
    ping() -> True when dockerd answers its API. Only a process named dockerd is ever signalled.

    Each dockerd process is stopped once. It is not stopped again if something continues it: systemd sends
    SIGCONT right after the SIGTERM of `systemctl stop/restart docker`, so the old daemon shuts down normally
    and the restarted one is stopped in its turn, as soon as it answers.
    """
    kill = kill or os.kill
    if stopped and comm(stopped) != "dockerd":
        stopped = None  # it has exited
    if not hang:
        if stopped:
            _signal(kill, stopped, signal.SIGCONT)
        return None
    if not pid or pid == stopped or comm(pid) != "dockerd":
        return stopped
    # A dockerd not stopped yet (the knob was just set, or docker.service (re)started): wait until it answers
    # its API, so that its start job completes as for a daemon that wedges later, then stop it.
    if may_stop and ping() and _signal(kill, pid, signal.SIGSTOP):
        if stopped:
            _signal(kill, stopped, signal.SIGCONT)  # cannot happen (one dockerd at a time); never leave one frozen
        return pid
    return stopped


def new_runtime():
    return {"page_cache_bytes": 0, "docker_pid": None, "drop_caches_mtime_ns": 0, "dockerd_stopped_pid": None}


def tick(paths, now=None):
    """Apply everything that happened since the last tick and re-render; return the memory model."""
    with state.locked(paths):
        faults = state.load_faults(paths)
        runtime = {**new_runtime(), **state.read_json(paths.runtime, {})}
        before = (dict(faults), dict(runtime))

        # Releases first: a client that exited before a drop or a docker restart left its page cache behind by then.
        allocated, released = scan_allocs(paths.alloc, now)
        for record in released:
            runtime["page_cache_bytes"] += _int(record, "page_cache_bytes")
            if faults["memory_stuck_on_release"]:
                faults["memory_stuck_gib"] += _int(record, "bytes") / state.GIB

        # A new dockerd PID in this boot means docker.service restarted: that clears stuck memory.
        pid = read_docker_pid(paths.docker_pid)
        if pid and pid != runtime["docker_pid"]:
            if runtime["docker_pid"] and not (faults["stuck_survives_docker_restart"] or faults["stuck_survives_reboot"]):
                faults["memory_stuck_gib"] = 0.0
            runtime["docker_pid"] = pid

        # dockerd_hang: SIGSTOP dockerd (also one started later) while the knob is set, SIGCONT when cleared.
        if faults["dockerd_hang"] or runtime["dockerd_stopped_pid"]:
            runtime["dockerd_stopped_pid"] = control_dockerd(
                faults["dockerd_hang"], pid, runtime["dockerd_stopped_pid"], os.path.exists(paths.images_done),
                comm=lambda p: proc_comm(p, paths.proc), ping=lambda: docker_ping(paths.docker_sock),
            )

        # sysctl -w vm.drop_caches=3 / echo 3 > /proc/sys/vm/drop_caches land in our bind-mounted file.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(paths.drop_caches).st_mtime_ns != runtime["drop_caches_mtime_ns"]:
                with open(paths.drop_caches, encoding="ascii") as f:
                    value = f.read().strip()
                if value in ("1", "3"):
                    runtime["page_cache_bytes"] = 0
                if value != "0":
                    write_in_place(paths.drop_caches, "0\n")  # reads back 0, as the real file does
                runtime["drop_caches_mtime_ns"] = os.stat(paths.drop_caches).st_mtime_ns

        if faults != before[0]:
            state.save_faults(paths, faults)
        if runtime != before[1]:
            state.write_json(paths.runtime, runtime)

        model = memory_model(
            baseline=int(faults["memory_baseline_gib"] * state.GIB), page_cache=runtime["page_cache_bytes"],
            stuck=int(faults["memory_stuck_gib"] * state.GIB), allocated=allocated,
        )
        _write_if_changed(os.path.join(paths.gpu, "meminfo"), render_meminfo(model), in_place=True)
        _write_if_changed(os.path.join(paths.gpu, "device.json"), json.dumps(device_json(faults), indent=1) + "\n")
        _write_if_changed(paths.memory, json.dumps(model, indent=1, sort_keys=True) + "\n")
        return model


def _write_if_changed(path, text, in_place=False):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == text:
                return
    except FileNotFoundError:
        pass
    if in_place:
        write_in_place(path, text)
    else:
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)


def sd_notify(message):
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return
    if addr.startswith("@"):
        addr = "\0" + addr[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.connect(addr)
        s.send(message.encode())


def run(paths, interval=TICK_S):
    """memd's main loop."""
    paths.makedirs()
    tick(paths)
    sd_notify("READY=1\nSTATUS=simulated GPU memory model running")
    while True:
        time.sleep(interval)
        tick(paths)
