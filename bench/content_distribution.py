#!/usr/bin/env python3
"""Offline content to N twin units: time-to-all-verified / (F / C), side by side in one run, for
  serial      the workshop's loop: one `rsync -a` per unit, one after another, from the organizer;
  flat        a flat parallel push from the organizer: ansible.posix.synchronize, forks = N;
  collection  this collection's method: playbooks/content.yml (libtorrent swarm, explicit peers), role defaults;
  collection-plain   the same with content_distribution_super_seed: false (plain seeding, for comparison);
  collection-kill    the collection's run with every unit's engine killed (SIGKILL) once the fleet holds half of
                     N x F, then a second run: the resume figure (bytes re-sent beyond what was lost).

The baselines take N x F / C; --baseline-budget stops them after that many seconds and reports the ratio they had
reached at least (">=") and where they were heading (the units done, or the bytes on the units, extrapolated).

Set-up (as root, on this machine): a twin fleet of max(N) units (playbooks/sim/fleet_up.yml), every unit's link
shaped to C in both directions with `tc` (upload inside the unit, download on the host side of its veth; HTB: the
data at C, the controller's SSH and ARP apart, see shape()),
and the organizer in a network namespace (`thor-org`) whose only link is a veth into the fleet bridge, shaped
to C too: the organizer has one link like a unit (the anchors' C_o = C), so a flat push cannot borrow bandwidth
the room would not have. Every method runs inside that namespace. The payload is a twin content root (real HF
layout: blobs, refs, snapshot symlinks; encodings) of F bytes, with its manifest; every unit starts empty.

Time-to-all-verified: from the first byte sent until every unit of the run holds content that matches the
manifest (sha256 of every file; snapshot entries are links). The host's CPU use and disk throughput are sampled
during each run and reported next to it, so that it shows whether the links (and not this machine) were the
bottleneck. Units are twins: the numbers measure the methods, not Thor hardware.

    .venv/bin/python bench/content_distribution.py [--sizes 4,16,60] [--payload-scale 60] [--rate-mbit 40,20,8]
        [--methods serial,flat,collection,collection-plain,collection-kill] [--baseline-budget 900] [--json out.json]
"""

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
sys.path.insert(0, str(ROOT / "twin" / "content"))
WORK = ROOT / "build" / "bench" / "content"
NETNS = "thor-org"
ORG_IP = "172.30.38.250"
CONTROLLER_IP = "172.30.38.1"  # the fleet bridge's gateway (playbooks/sim/vars/fleet.yml): the controller's side
FLEET_NET = "thor-twin"
KEY = ROOT / "build" / "sim" / "fleet_key"
SSH_OPTS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
SSH = f"ssh -i {KEY} {SSH_OPTS}"
DATA_ROOT = "/home/workshop/data"  # inventories/sim: workshop_data_root


LOG = WORK / "bench.log"


def sh(cmd, check=True, capture=False, **kw):
    """Run a command (list or shell string); with capture, return stdout, else its output goes to the log."""
    shell = isinstance(cmd, str)
    if capture:
        return subprocess.run(cmd, shell=shell, check=check, text=True, capture_output=True, **kw).stdout
    timeout = kw.pop("timeout", None)
    with open(LOG, "a") as log:
        log.write(f"\n$ {cmd if shell else ' '.join(map(str, cmd))}\n")
        log.flush()
        proc = subprocess.Popen(cmd, shell=shell, text=True, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # rsync, ssh, ansible's forks: the whole group
            proc.wait()
            log.write(f"# stopped after {timeout:.0f} s (budget)\n")
            raise
    if check and proc.returncode:
        raise SystemExit(f"failed (rc {proc.returncode}): {cmd}; see {LOG}")
    return proc.returncode


def in_ns(argv):
    return ["ip", "netns", "exec", NETNS, *argv]


def units(n):
    return [f"thor-{i:02d}" for i in range(1, n + 1)]


def unit_ip(unit):
    return f"172.30.38.{10 + int(unit[5:])}"


class Sampler:
    """Host CPU (from /proc/stat) and disk throughput (from /proc/diskstats) once a second, in a thread."""

    def __init__(self):
        self.cpu, self.read_mb, self.write_mb = [], 0.0, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _cpu():
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = fields[3] + fields[4]
        return sum(fields) - idle, sum(fields)

    @staticmethod
    def _disk():
        read = written = 0
        for line in Path("/proc/diskstats").read_text().splitlines():
            parts = line.split()
            name = parts[2]
            if name.startswith(("loop", "ram", "dm-")) or (name[-1].isdigit() and not name.startswith("nvme")):
                continue
            if name.startswith("nvme") and "p" in name[4:]:
                continue
            read += int(parts[5])
            written += int(parts[9])
        return read * 512 / 1e6, written * 512 / 1e6

    def _run(self):
        busy0, total0 = self._cpu()
        while not self._stop.wait(1.0):
            busy, total = self._cpu()
            if total > total0:
                self.cpu.append(100.0 * (busy - busy0) / (total - total0))
            busy0, total0 = busy, total

    def __enter__(self):
        self.t0, (self.r0, self.w0) = time.monotonic(), self._disk()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        elapsed = time.monotonic() - self.t0
        r, w = self._disk()
        self.read_mb, self.write_mb = (r - self.r0) / elapsed, (w - self.w0) / elapsed

    def summary(self):
        cpu = self.cpu or [0.0]
        return {
            "cpu_mean_pct": sum(cpu) / len(cpu),
            "cpu_max_pct": max(cpu),
            "disk_read_mb_s": self.read_mb,
            "disk_write_mb_s": self.write_mb,
        }


# ---------------------------------------------------------------------------------------------------------------
# Fleet, payload and links


def fleet_up(n):
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    sh(["make", "-C", str(ROOT), "--no-print-directory", "images"], env=env)
    playbook = ROOT / "playbooks" / "sim" / "fleet_up.yml"
    sh([str(VENV_BIN / "ansible-playbook"), str(playbook), "-e", f"twin_fleet_size={n}"], env=env)


def payload(scale):
    """The organizer's content root (twin HF cache + encodings) and its manifest; returns (root, manifest)."""
    import make_hf_cache

    spec = importlib.util.spec_from_file_location("cm", ROOT / "plugins" / "module_utils" / "_content_manifest.py")
    cm = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cm)

    root = WORK / f"organizer-{scale}"
    if not (root / "manifest.json").exists():
        hub = root / "models" / "huggingface" / "hub"
        make_hf_cache.main(
            ["--hub-dir", str(hub), "--models", "llama-fp4,eagle3", "--scale", str(scale), "--encodings", str(root / "encodings")]
        )
        manifest = cm.build(str(root), name=f"bench-scale-{scale}")
        (root / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        lines = [f"{f['sha256']}  {f['path']}\n" for f in manifest["files"]]
        (root / "SHA256SUMS").write_text("".join(lines))
    return root, json.loads((root / "manifest.json").read_text())


def engine_wheels():
    """The organizer's namespace reaches only the fleet: fetch the engine wheel the role would fetch (for the twin
    units' and the organizer's Python 3.11, x86_64) into the role's default wheel cache beforehand."""
    dest = Path.home() / ".cache" / "jetson_thor_workshop" / "content" / "wheels"
    if list(dest.glob("libtorrent-2.1.1-cp311-cp311-manylinux*_x86_64*.whl")):
        return  # fetched before: pip download would still ask the index
    argv = [str(VENV_BIN / "python"), "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--no-deps"]
    argv += ["--implementation", "cp", "--platform", "manylinux2014_x86_64", "--python-version", "3.11"]
    sh([*argv, "--dest", str(dest), "libtorrent==2.1.1"])


def host_veth(container):
    """The host-side name of a container's eth0 veth."""
    index = sh(["docker", "exec", container, "cat", "/sys/class/net/eth0/iflink"], capture=True).strip()
    for line in sh(["ip", "-o", "link"], capture=True).splitlines():
        num, name = line.split(":")[:2]
        if num.strip() == index:
            return name.strip().split("@")[0]
    raise RuntimeError(f"no host veth for {container}")


def shape(prefix, dev, rate_mbit):
    """Shape a link's outgoing traffic to C, except the controller's own (its SSH to the units) and ARP.

    In a room the control traffic is a trifle on 1 GbE. On a 4 Mbit/s link full of swarm traffic a plain tbf dropped
    ARP replies and SSH keepalives, and the first N = 60 runs lost units as unreachable ("No route to host"). So: HTB,
    the data (units and organizer among themselves: swarm, rsync, synchronize) in a class at C with about 100 ms of
    queue (as tbf's latency 100ms had), the controller's address and ARP in a class of their own."""
    limit = max(16, int(rate_mbit * 1e6 / 8 * 0.1 / 1500))
    tc = [*prefix, "tc"]
    sh([*tc, "qdisc", "del", "dev", dev, "root"], check=False)
    sh([*tc, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10"])
    rate = f"{rate_mbit}mbit"
    sh([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate])
    sh([*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:20", "htb", "rate", "1000mbit"])
    sh([*tc, "qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", "pfifo", "limit", str(limit)])
    for direction in ("src", "dst"):
        sh([*tc, "filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32",
            "match", "ip", direction, f"{CONTROLLER_IP}/32", "flowid", "1:20"])
    sh([*tc, "filter", "add", "dev", dev, "parent", "1:", "protocol", "arp", "prio", "2", "u32", "match", "u32", "0", "0",
        "flowid", "1:20"])


def shape_units(names, rate_mbit):
    for unit in names:
        shape(["docker", "exec", unit], "eth0", rate_mbit)
        shape([], host_veth(unit), rate_mbit)


def organizer_netns(rate_mbit):
    """The organizer's namespace, with one veth into the fleet bridge shaped to C both ways (idempotent)."""
    if NETNS not in sh(["ip", "netns", "list"], capture=True):
        net_id = sh(["docker", "network", "inspect", "-f", "{{.Id}}", FLEET_NET], capture=True).strip()
        bridge = "br-" + net_id[:12]
        sh(["ip", "netns", "add", NETNS])
        sh(["ip", "link", "add", "thor-org-h", "type", "veth", "peer", "name", "thor-org-n"])
        sh(["ip", "link", "set", "thor-org-h", "master", bridge, "up"])
        sh(["ip", "link", "set", "thor-org-n", "netns", NETNS])
        sh(in_ns(["ip", "addr", "add", f"{ORG_IP}/24", "dev", "thor-org-n"]))
        sh(in_ns(["ip", "link", "set", "thor-org-n", "up"]))
        sh(in_ns(["ip", "link", "set", "lo", "up"]))
    shape(["ip", "netns", "exec", NETNS], "thor-org-n", rate_mbit)
    shape([], "thor-org-h", rate_mbit)


def remove_netns():
    with contextlib.suppress(subprocess.CalledProcessError):
        sh(["ip", "netns", "del", NETNS], check=False)
        sh(["ip", "link", "del", "thor-org-h"], check=False)


# ---------------------------------------------------------------------------------------------------------------
# Runs


def ansible_env():
    return dict(
        os.environ,
        PATH=f"{VENV_BIN}:{os.environ['PATH']}",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
        ANSIBLE_HOST_KEY_CHECKING="False",
        # At C = 4 Mbit/s a unit's shaped link is full of swarm traffic, and a new SSH connection's SYN can wait in its
        # queue past ansible's connect timeout (the first N = 60 warm-up lost thor-17 that way; a room's 1 GbE never
        # does). Keep each unit's first connection for the whole run, and allow a slow connect.
        ANSIBLE_SSH_ARGS="-o ControlMaster=auto -o ControlPersist=30m -o ServerAliveInterval=15 -o ServerAliveCountMax=8",
        ANSIBLE_TIMEOUT="60",
    )


def inventory(names, organizer_root=None, organizer_python=None, **organizer_vars):
    """An inventory of these units (by IP) and the organizer (local, holding organizer_root), for the run."""
    path = WORK / f"inventory-{len(names)}.yml"
    hosts = {u: {"ansible_host": unit_ip(u)} for u in names}
    inv = {
        "all": {
            "vars": {"workshop_user": "workshop", "content_distribution_organizer_address": ORG_IP, **organizer_vars},
            "children": {
                "thor": {
                    "vars": {
                        "ansible_user": "workshop",
                        "ansible_ssh_private_key_file": str(KEY),
                        "ansible_ssh_common_args": SSH_OPTS,
                        "ansible_become_method": "ansible.builtin.sudo",
                        "ansible_python_interpreter": "/usr/bin/python3",
                        "workshop_data_root": DATA_ROOT,
                    },
                    "hosts": hosts,
                },
                "organizers": {
                    "hosts": {
                        "organizer": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": organizer_python or str(VENV_BIN / "python"),
                            "workshop_data_root": str(organizer_root or WORK),
                        }
                    }
                },
            },
        }
    }
    path.write_text(json.dumps(inv, indent=1))
    return path


def ansible(args, names, check=True):
    argv = [str(VENV_BIN / "ansible"), "-i", str(inventory(names)), "-f", str(len(names)), "--become", *args]
    return sh(argv, env=ansible_env(), check=check)


def clean_units(names):
    ansible(["thor", "-m", "ansible.builtin.file", "-a", f"path={DATA_ROOT} state=absent"], names)


def verify_all(names, root):
    """Every unit's files match the manifest's sha256 (sha256sum -c in parallel over the units)."""
    ansible(["thor", "-m", "ansible.builtin.copy", "-a", f"src={root / 'SHA256SUMS'} dest=/tmp/SHA256SUMS mode=0644"], names)
    ansible(["thor", "-m", "ansible.builtin.shell", "-a", f"cd {DATA_ROOT} && sha256sum --quiet -c /tmp/SHA256SUMS"], names)
    link = "models/huggingface/hub/models--nvidia--Llama-3.1-8B-Instruct-FP4/snapshots"
    ansible(["thor", "-m", "ansible.builtin.shell", "-a", f"test -L $(ls -d {DATA_ROOT}/{link}/*/config.json)"], names)


def run_serial(names, root, budget):
    """One rsync after another; stops at the budget. Returns the number of units that received everything."""
    deadline = time.monotonic() + budget
    for done, unit in enumerate(names):
        left = deadline - time.monotonic()
        argv = ["rsync", "-a", "--partial", "--rsync-path", "sudo rsync", "-e", SSH]
        argv += [f"{root}/", f"workshop@{unit_ip(unit)}:{DATA_ROOT}/"]
        try:
            if left <= 0:
                raise subprocess.TimeoutExpired(argv, budget)
            sh(in_ns(argv), timeout=left)
        except subprocess.TimeoutExpired:
            return done
    return len(names)


def run_flat(names, root, budget):
    """ansible.posix.synchronize to every unit at once (forks = N); stops at the budget. Returns True if it ended."""
    playbook = WORK / "flat_push.yml"
    playbook.write_text(
        "- name: Flat parallel push from the organizer (bench baseline)\n"
        "  hosts: thor\n  gather_facts: false\n  become: true\n  tasks:\n"
        "    - name: Push the content root\n"
        "      ansible.posix.synchronize:\n"
        f"        src: {root}/\n        dest: {DATA_ROOT}/\n"
        "        archive: true\n        compress: false\n        partial: true\n"
    )
    argv = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory(names)), "-f", str(len(names)), str(playbook)]
    try:
        sh(in_ns(argv), env=ansible_env(), timeout=budget)
    except subprocess.TimeoutExpired:
        return False
    return True


def bytes_on_units(names):
    """Bytes of regular files under every unit's data root, summed over the units (docker exec, a few at a time)."""
    def one(unit):
        out = sh(["docker", "exec", unit, "sh", "-c", f"find {DATA_ROOT} -type f -printf '%s\\n' 2>/dev/null"],
                 capture=True, check=False)
        return sum(int(x) for x in out.split())

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return sum(pool.map(one, names))


def organizer_python():
    """The organizer's Python, inside the organizer's namespace: the seed and every organizer task run behind the
    organizer's shaped link, while the controller reaches the units over the bridge as a room's 1 GbE would carry it
    (at C = 4 Mbit/s, sixty units' module transfers through the organizer's link would cost minutes a room never sees)."""
    wrapper = WORK / "organizer-python"
    wrapper.write_text(f"#!/bin/sh\nexec ip netns exec {NETNS} {VENV_BIN / 'python'} \"$@\"\n")
    wrapper.chmod(0o755)
    return str(wrapper)


def collection_argv(names, root, **role_vars):
    inv = inventory(names, root, organizer_python=organizer_python(), **role_vars)
    playbook = ROOT / "playbooks" / "content.yml"
    return [str(VENV_BIN / "ansible-playbook"), "-i", str(inv), "-f", str(len(names) + 1), str(playbook)]


def collection_env():
    # profile_tasks: where the playbook's own time goes, per task, in the log
    callbacks = "jetson_thor.workshop.fleet_status,ansible.posix.profile_tasks"
    return dict(ansible_env(), JETSON_THOR_REPORT_DIR=str(WORK / "reports"), ANSIBLE_CALLBACKS_ENABLED=callbacks)


def run_collection(names, root, **role_vars):
    sh(collection_argv(names, root, **role_vars), env=collection_env())


def collection_report():
    return json.loads((WORK / "reports" / "content-distribution.json").read_text())


def unit_have_bytes(names):
    """Bytes each unit's engine holds (its status.json), summed over the units."""
    def one(unit):
        out = sh(["docker", "exec", unit, "cat", "/var/lib/thor-content/status.json"], capture=True, check=False)
        try:
            return int(json.loads(out).get("have_bytes", 0))
        except ValueError:
            return 0

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        return sum(pool.map(one, names))


def run_killed(names, root, total):
    """The collection's run; once the units hold half of N x F, SIGKILL every unit's engine; the run ends (the organizer
    stops waiting after the stall bound). Returns the bytes the units held when killed."""
    argv = collection_argv(names, root, content_distribution_stall_timeout=30)
    with open(LOG, "a") as log:
        log.write(f"\n$ {' '.join(argv)}  # killed at half\n")
        log.flush()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=collection_env(), text=True)
        have = 0
        while proc.poll() is None:
            have = unit_have_bytes(names)
            if have >= total * len(names) / 2:
                break
            time.sleep(1)
        for unit in names:
            sh(["docker", "exec", unit, "systemctl", "kill", "--signal=SIGKILL", "thor-content-swarm.service"], check=False)
        proc.wait()
    return have


def measure(method, names, root, manifest, rate_mbit, budget, warmup_root):
    total = manifest["total_bytes"]
    f_over_c = total * 8 / (rate_mbit * 1e6)
    row = {"method": method, "n": len(names), "C_mbit": rate_mbit, "F_over_C_s": f_over_c, "complete": True,
           "verify_s": None, "transfer_s": None, "transfer_ratio": None, "projected_ratio": None}
    collection = method.startswith("collection")
    role_vars = {"content_distribution_super_seed": False} if method == "collection-plain" else {}
    if collection and warmup_root:
        # Untimed, on a small content set: installs the engine (the unpacked libtorrent wheel, ~26 MB) on the units, once
        # per unit as a package would be. The timed run makes the torrent of the real content itself.
        clean_units(names)
        run_collection(names, warmup_root, **role_vars)
    clean_units(names)
    if method == "collection-kill":
        row["killed_at_bytes"] = run_killed(names, root, total)
        row["failed_run"] = {u: r.get("complete") for u, r in collection_report()["units"].items()}
    with Sampler() as sampler:
        start = time.monotonic()
        if collection:
            run_collection(names, root, **role_vars)
        elif method == "serial":
            done = run_serial(names, root, budget)
            row["complete"], row["units_done"] = done == len(names), done
        else:
            row["complete"] = run_flat(names, root, budget)
        moved = time.monotonic()
        if not collection and row["complete"]:  # the collection's playbook verifies against the manifest itself
            verify_all(names, root)
            row["verify_s"] = time.monotonic() - moved
        wall = time.monotonic() - start
    row.update(wall_s=wall, ratio=wall / f_over_c, **sampler.summary())
    if not row["complete"]:  # stopped at the budget: extrapolate from what arrived
        if method == "serial":
            row["projected_ratio"] = (wall / max(row["units_done"], 1)) * len(names) / f_over_c
        else:
            row["bytes_on_units"] = bytes_on_units(names)
            row["projected_ratio"] = wall * (total * len(names) / max(row["bytes_on_units"], 1)) / f_over_c
    if collection:
        verify_all(names, root)  # the bench checks every unit independently, outside the timing
        units = collection_report()["units"]
        row["transfer_s"] = max(u["completed_after"] or 0 for u in units.values())  # engines started -> all complete
        row["transfer_ratio"] = row["transfer_s"] / f_over_c
        if method == "collection-kill":
            beyond = [u["payload_download"] - u["bytes_needed_before"] for u in units.values()]
            row["lost_bytes"] = sum(u["bytes_needed_before"] for u in units.values())
            row["resent_bytes"] = sum(u["payload_download"] for u in units.values())
            row["beyond_lost_max_pct_of_F"] = 100 * max(beyond) / total
            row["beyond_lost_total_pct_of_NF"] = 100 * sum(beyond) / (total * len(names))
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,16,60")
    parser.add_argument(
        "--methods",
        default="serial,flat,collection,collection-plain@16,collection-kill@16",
        help="comma-separated; name@4/16 runs a method only at those sizes",
    )
    parser.add_argument("--payload-scale", type=int, default=60, help="make_hf_cache --scale (60: F ~ 130 MB)")
    parser.add_argument(
        "--rate-mbit",
        default="40,20,4",
        help="C, every link's rate in both directions: one value, or one per size (2 cores carry ~80 MB/s in all, "
        "and ansible's forks need CPU too: keep N x C well below 640 Mbit/s, e.g. 40,20,4 for 4,16,60)",
    )
    parser.add_argument("--baseline-budget", type=float, default=900, help="seconds before a baseline is stopped")
    parser.add_argument(
        "--skip-warmup",
        action="store_true",
        help="no untimed warm-up run before each collection row: only when every unit already holds the engine from an "
        "earlier run on this fleet (it installs the engine, ~26 MB, once per unit)",
    )
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it shapes links with tc and creates a network namespace")
    sizes = [int(s) for s in args.sizes.split(",")]
    rates = [float(r) for r in args.rate_mbit.split(",")]
    rates = rates * len(sizes) if len(rates) == 1 else rates
    if len(rates) != len(sizes):
        sys.exit(f"--rate-mbit: give one rate, or one per size ({len(sizes)}), not {len(rates)}")
    plan = []
    for spec in args.methods.split(","):
        name, _, at = spec.partition("@")
        if name not in ("serial", "flat", "collection", "collection-plain", "collection-kill"):
            sys.exit(f"--methods: unknown method {name!r}")
        plan.append((name, [int(x) for x in at.split("/")] if at else sizes))
    WORK.mkdir(parents=True, exist_ok=True)
    root, manifest = payload(args.payload_scale)
    warmup_root = None if args.skip_warmup else payload(args.payload_scale * 100)[0]
    if any(name.startswith("collection") for name, _ in plan):
        engine_wheels()
    fleet_up(max(sizes))
    results = {
        "F_bytes": manifest["total_bytes"],
        "files": len(manifest["files"]),
        "symlinks": len(manifest["symlinks"]),
        "host": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
        "argv": sys.argv[1:],
        "runs": [],
    }
    print(
        f"F = {manifest['total_bytes'] / 1e6:.1f} MB ({len(manifest['files'])} files, {len(manifest['symlinks'])} links); "
        "twin units (a simulated fleet)",
        flush=True,
    )
    try:
        for n, rate in zip(sizes, rates, strict=True):
            shape_units(units(max(sizes)), rate)
            organizer_netns(rate)
            for name, at in plan:
                if n in at:
                    row = measure(name, units(n), root, manifest, rate, args.baseline_budget, warmup_root)
                    results["runs"].append(row)
                    print(json.dumps(row), flush=True)
    finally:
        remove_netns()  # the fleet stays up (shaped) for a re-run: `make fleet-down` removes it
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(results):
    print(f"\nF = {results['F_bytes'] / 1e6:.1f} MB; twin units (a simulated fleet, not Thor)")
    head = f"{'method':>16} {'N':>3} {'C Mbit/s':>8} {'F/C s':>6} {'wall s':>8} {'ratio':>7} {'projected':>9}"
    head += f" {'verify s':>11} {'swarm only s':>12} {'ratio':>6}"
    print(head + f" {'CPU mean %':>10} {'CPU max %':>9} {'disk w MB/s':>11}")
    for r in results["runs"]:
        verify = f"{r['verify_s']:.1f}" if r["verify_s"] is not None else ("in playbook" if r["complete"] else "-")
        swarm = f"{r['transfer_s']:.1f}" if r["transfer_s"] else "-"
        swarm_ratio = f"{r['transfer_ratio']:.2f}" if r["transfer_ratio"] else "-"
        ratio = f"{r['ratio']:.2f}" if r["complete"] else f">={r['ratio']:.2f}"
        projected = f"{r['projected_ratio']:.1f}" if r["projected_ratio"] else "-"
        print(
            f"{r['method']:>16} {r['n']:>3} {r['C_mbit']:>8g} {r['F_over_C_s']:>6.1f} {r['wall_s']:>8.1f} {ratio:>7} "
            f"{projected:>9} {verify:>11} {swarm:>12} {swarm_ratio:>6} "
            f"{r['cpu_mean_pct']:>10.1f} {r['cpu_max_pct']:>9.1f} {r['disk_write_mb_s']:>11.1f}"
        )
    print("ratio = time-to-all-verified / (F/C); >= : stopped at --baseline-budget, projected = extrapolated from the units")
    print("done (serial) or the bytes on the units (flat); swarm only = the collection's engines started -> every unit complete.")
    for r in results["runs"]:
        if r["method"] == "collection-kill":
            print(
                f"collection-kill N={r['n']}: engines killed (SIGKILL) holding {r['killed_at_bytes'] / 1e6:.1f} MB of "
                f"{r['n'] * results['F_bytes'] / 1e6:.1f} MB; the re-run needed {r['lost_bytes'] / 1e6:.1f} MB and received "
                f"{r['resent_bytes'] / 1e6:.1f} MB: beyond what was lost, at most {r['beyond_lost_max_pct_of_F']:.2f} % of F "
                f"on a unit, {r['beyond_lost_total_pct_of_NF']:.2f} % of N x F in all."
            )


if __name__ == "__main__":
    main()
