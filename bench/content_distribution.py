#!/usr/bin/env python3
"""Offline content to N twin units: time-to-all-verified / (F / C), side by side in one run, for
  serial      the workshop's loop: one `rsync -a` per unit, one after another, from the organizer;
  flat        a flat parallel push from the organizer: ansible.posix.synchronize, forks = N;
  collection  this collection's method: playbooks/content.yml (libtorrent swarm, explicit peers).

Set-up (as root, on this machine): a twin fleet of max(N) units (playbooks/sim/fleet_up.yml), every unit's link
shaped to C in both directions with `tc tbf` (upload inside the unit, download on the host side of its veth),
and the organizer in a network namespace (`thor-org`) whose only link is a veth into the fleet bridge, shaped
to C too: the organizer has one link like a unit (the anchors' C_o = C), so a flat push cannot borrow bandwidth
the room would not have. Every method runs inside that namespace. The payload is a twin content root (real HF
layout: blobs, refs, snapshot symlinks; encodings) of F bytes, with its manifest; every unit starts empty.

Time-to-all-verified: from the first byte sent until every unit of the run holds content that matches the
manifest (sha256 of every file; snapshot entries are links). The host's CPU use and disk throughput are sampled
during each run and reported next to it, so that it shows whether the links (and not this machine) were the
bottleneck. Units are twins: the numbers measure the methods, not Thor hardware.

    .venv/bin/python bench/content_distribution.py [--sizes 4,16,60] [--payload-scale 60] [--rate-mbit 40,20,8]
        [--methods serial,flat,collection] [--json out.json]
"""

import argparse
import contextlib
import importlib.util
import json
import os
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
    with open(LOG, "a") as log:
        log.write(f"\n$ {cmd if shell else ' '.join(map(str, cmd))}\n")
        log.flush()
        proc = subprocess.run(cmd, shell=shell, text=True, stdout=log, stderr=subprocess.STDOUT, **kw)
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
    sh(["make", "-C", str(ROOT), "--no-print-directory", "fleet-up", f"FLEET_SIZE={n}"], env=env)


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


def tbf(rate_mbit):
    return ["root", "tbf", "rate", f"{rate_mbit}mbit", "burst", "64kb", "latency", "100ms"]


def shape_units(names, rate_mbit):
    for unit in names:
        sh(["docker", "exec", unit, "tc", "qdisc", "replace", "dev", "eth0", *tbf(rate_mbit)])
        sh(["tc", "qdisc", "replace", "dev", host_veth(unit), *tbf(rate_mbit)])


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
    sh(in_ns(["tc", "qdisc", "replace", "dev", "thor-org-n", *tbf(rate_mbit)]))
    sh(["tc", "qdisc", "replace", "dev", "thor-org-h", *tbf(rate_mbit)])


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
    )


def inventory(names, organizer_root=None, **organizer_vars):
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
                            "ansible_python_interpreter": str(VENV_BIN / "python"),
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


def run_serial(names, root):
    for unit in names:
        argv = [
            "rsync",
            "-a",
            "--partial",
            "--rsync-path",
            "sudo rsync",
            "-e",
            SSH,
            f"{root}/",
            f"workshop@{unit_ip(unit)}:{DATA_ROOT}/",
        ]
        sh(in_ns(argv))


def run_flat(names, root):
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
    sh(in_ns(argv), env=ansible_env())


def run_collection(names, root, super_seed=False):
    inv = inventory(names, root, content_distribution_super_seed=super_seed)
    argv = [
        str(VENV_BIN / "ansible-playbook"),
        "-i",
        str(inv),
        "-f",
        str(len(names) + 1),
        str(ROOT / "playbooks" / "content.yml"),
    ]
    sh(in_ns(argv), env=dict(ansible_env(), JETSON_THOR_REPORT_DIR=str(WORK / "reports")))


METHODS = {"serial": run_serial, "flat": run_flat, "collection": None}


def measure(method, names, root, manifest, rate_mbit, super_seed=False):
    if method == "collection":
        # Untimed: installs the engine (the unpacked libtorrent wheel, ~26 MB) on the units, once per unit as a package
        # would be, and makes the torrent on the organizer (once per content set).
        clean_units(names)
        run_collection(names, root, super_seed)
    clean_units(names)
    with Sampler() as sampler:
        start = time.monotonic()
        if method == "collection":
            run_collection(names, root, super_seed)
        else:
            METHODS[method](names, root)
        moved = time.monotonic()
        if method != "collection":  # the collection's playbook verifies against the manifest itself
            verify_all(names, root)
        wall = time.monotonic() - start
    f_over_c = manifest["total_bytes"] * 8 / (rate_mbit * 1e6)
    transfer_s = None
    if method == "collection":
        verify_all(names, root)  # and the bench checks it independently, outside the timing
        report = json.loads((WORK / "reports" / "content-distribution.json").read_text())
        transfer_s = max(u["completed_after"] for u in report["units"].values())  # engines started -> all complete
    return {
        "C_mbit": rate_mbit,
        "F_over_C_s": f_over_c,
        "transfer_s": transfer_s,
        "transfer_ratio": transfer_s / f_over_c if transfer_s else None,
        "method": method,
        "n": len(names),
        "wall_s": wall,
        "verify_s": wall - (moved - start) if method != "collection" else None,
        "ratio": wall / f_over_c,
        **sampler.summary(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="4,16,60")
    parser.add_argument("--methods", default="serial,flat,collection")
    parser.add_argument("--payload-scale", type=int, default=60, help="make_hf_cache --scale (60: F ~ 124 MB)")
    parser.add_argument(
        "--rate-mbit",
        default="40",
        help="C, every link's rate in both directions: one value, or one per size (2 cores carry ~80 MB/s in all, "
        "so keep N x C well below 640 Mbit/s, e.g. 40,20,8 for 4,16,60)",
    )
    parser.add_argument("--super-seed", action="store_true", help="content_distribution_super_seed for the collection")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it shapes links with tc and creates a network namespace")
    sizes = [int(s) for s in args.sizes.split(",")]
    rates = [float(r) for r in args.rate_mbit.split(",")]
    rates = rates * len(sizes) if len(rates) == 1 else rates
    if len(rates) != len(sizes):
        sys.exit(f"--rate-mbit: give one rate, or one per size ({len(sizes)}), not {len(rates)}")
    methods = args.methods.split(",")
    WORK.mkdir(parents=True, exist_ok=True)
    root, manifest = payload(args.payload_scale)
    if "collection" in methods:
        engine_wheels()
    fleet_up(max(sizes))
    results = {
        "F_bytes": manifest["total_bytes"],
        "files": len(manifest["files"]),
        "symlinks": len(manifest["symlinks"]),
        "host": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
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
            for method in methods:
                row = measure(method, units(n), root, manifest, rate, args.super_seed)
                results["runs"].append(row)
                print(json.dumps(row), flush=True)
    finally:
        remove_netns()  # the fleet stays up (shaped) for a re-run: `make fleet-down` removes it
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(results):
    print(f"\nF = {results['F_bytes'] / 1e6:.1f} MB")
    head = f"{'method':>10} {'N':>3} {'C Mbit/s':>8} {'F/C s':>6} {'wall s':>8} {'ratio':>7}"
    head += f" {'of which verify s':>17} {'swarm only s':>12} {'ratio':>6}"
    print(head + f" {'CPU mean %':>10} {'CPU max %':>9} {'disk w MB/s':>11}")
    for r in results["runs"]:
        verify = f"{r['verify_s']:.1f}" if r["verify_s"] is not None else "in playbook"
        swarm = f"{r['transfer_s']:.1f}" if r["transfer_s"] else "-"
        swarm_ratio = f"{r['transfer_ratio']:.2f}" if r["transfer_ratio"] else "-"
        print(
            f"{r['method']:>10} {r['n']:>3} {r['C_mbit']:>8g} {r['F_over_C_s']:>6.1f} {r['wall_s']:>8.1f} {r['ratio']:>7.2f} "
            f"{verify:>17} {swarm:>12} {swarm_ratio:>6} "
            f"{r['cpu_mean_pct']:>10.1f} {r['cpu_max_pct']:>9.1f} {r['disk_write_mb_s']:>11.1f}"
        )
    print("ratio = time-to-all-verified / (F/C); swarm only = the collection's engines started -> every unit complete.")


if __name__ == "__main__":
    main()
