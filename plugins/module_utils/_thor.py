# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: parsers for what a Jetson Thor unit reports about itself.
# Standard library only: this code runs on the units, which have no pip.

from __future__ import annotations

import os
import re

GIB = 1024**3

# L4T major releases that are JetPack 7 (platform-facts.md 1.1: 38.x = JetPack 7.0/7.1, 39.x = 7.2).
JETPACK7_L4T_MAJORS = (38, 39)

_RELEASE_RE = re.compile(r"^#\s*R(?P<release>\d+)\s*\(release\),\s*REVISION:\s*(?P<revision>[0-9.]+)(?P<rest>.*)$")


def parse_nv_tegra_release(text):
    """Parse /etc/nv_tegra_release; return None when the first line is not an L4T release line.

    '# R38 (release), REVISION: 2.0, GCID: 41844464, BOARD: generic, EABI: aarch64, DATE: ...'
    gives release '38', revision '2.0', version '38.2.0' (the jetson-containers rule).
    """
    lines = (text or "").splitlines()
    match = _RELEASE_RE.match(lines[0].strip()) if lines else None
    if not match:
        return None
    release, revision = match.group("release"), match.group("revision")
    fields = {}
    for part in match.group("rest").split(","):
        key, sep, value = part.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    for line in lines[1:]:
        line = line.strip().lstrip("#").strip()
        key, sep, value = line.partition(":")
        if sep and key.strip() == "KERNEL_VARIANT":
            fields["kernel_variant"] = value.strip()
    parts = [int(p) for p in revision.split(".") if p.isdigit()]
    minor = parts[0] if parts else 0
    patch = parts[1] if len(parts) > 1 else 0
    major = int(release)
    return {
        "release": release,
        "revision": revision,
        "version": f"{major}.{minor}.{patch}",
        "major": major,
        "minor": minor,
        "patch": patch,
        "jetpack_major": 7 if major in JETPACK7_L4T_MAJORS else (6 if major == 36 else None),
        "gcid": fields.get("gcid"),
        "board": fields.get("board"),
        "eabi": fields.get("eabi"),
        "date": fields.get("date"),
        "kernel_variant": fields.get("kernel_variant"),
    }


def parse_meminfo(text):
    """Parse /proc/meminfo into bytes, keyed by field name ('MemFree' -> bytes)."""
    values = {}
    for line in (text or "").splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        tokens = rest.split()
        if not tokens or not tokens[0].isdigit():
            continue
        factor = 1024 if len(tokens) > 1 and tokens[1].lower() == "kb" else 1
        values[key.strip()] = int(tokens[0]) * factor
    return values


def memory_summary(meminfo):
    """The memory facts the roles need, from parse_meminfo() output.

    On Thor's unified memory vLLM sees MemFree, not MemAvailable (platform-facts.md 1.3),
    so free_bytes is MemFree and available_bytes only tells whether dropping caches would help.
    """
    total = meminfo.get("MemTotal")
    free = meminfo.get("MemFree")
    available = meminfo.get("MemAvailable", free)
    summary = {
        "total_bytes": total,
        "free_bytes": free,
        "available_bytes": available,
        "cached_bytes": meminfo.get("Cached", 0) + meminfo.get("Buffers", 0),
        "swap_total_bytes": meminfo.get("SwapTotal", 0),
        "swap_free_bytes": meminfo.get("SwapFree", 0),
    }
    for key in ("total", "free", "available"):
        value = summary[key + "_bytes"]
        summary[key + "_gib"] = round(value / GIB, 2) if value is not None else None
    return summary


_NVP_NAME_RE = re.compile(r"^NV Power Mode\s*(?:\[(?P<id>\d+)\])?\s*:\s*(?P<name>\S.*?)\s*$")


def parse_nvpmodel_query(text):
    """Parse `nvpmodel -q`: 'NV Power Mode: 120W' then the mode id on its own line."""
    name = mode_id = None
    for line in (text or "").splitlines():
        line = line.strip()
        match = _NVP_NAME_RE.match(line)
        if match:
            name = match.group("name")
            if match.group("id") is not None:
                mode_id = int(match.group("id"))
        elif name is not None and mode_id is None and line.isdigit():
            mode_id = int(line)
    if name is None:
        return None
    return {"name": name, "id": mode_id}


_FREQ_RE = re.compile(r"(MinFreq|MaxFreq|CurrentFreq)=(\d+)")


def _freqs(line):
    found = dict(_FREQ_RE.findall(line))
    if not {"MinFreq", "MaxFreq"} <= set(found):
        return None
    return {
        "min": int(found["MinFreq"]),
        "max": int(found["MaxFreq"]),
        "current": int(found["CurrentFreq"]) if "CurrentFreq" in found else None,
    }


def parse_jetson_clocks_show(text):
    """Parse `jetson_clocks --show`: per-CPU, GPU and EMC frequency lines.

    jetson_clocks pins minimum = maximum, so clocks count as pinned when every online
    CPU and the GPU report MinFreq == MaxFreq.
    """
    cpus, gpu, emc = [], None, None
    for line in (text or "").splitlines():
        line = line.strip()
        freqs = _freqs(line)
        if freqs is None:
            continue
        if re.match(r"^cpu\d+:", line):
            if "Online=0" not in line:
                cpus.append(freqs)
        elif line.startswith("GPU"):
            gpu = freqs
        elif line.startswith("EMC"):
            emc = freqs
    if gpu is None and not cpus:
        return None
    pinned = all(f["min"] == f["max"] for f in cpus + ([gpu] if gpu else []))
    return {"pinned": pinned, "online_cpus": len(cpus), "gpu": gpu, "emc": emc}


def parse_docker_info(info):
    """Reduce `docker info --format '{{json .}}'` to what the runtime roles check."""
    runtimes = info.get("Runtimes") or {}
    return {
        "server_version": info.get("ServerVersion"),
        "default_runtime": info.get("DefaultRuntime"),
        "runtimes": sorted(runtimes),
        "storage_driver": info.get("Driver"),
        "containers_running": info.get("ContainersRunning"),
    }


def nearest_statvfs(path):
    """(os.statvfs of path or, if it does not exist yet, of its nearest existing parent; the path measured)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    return os.statvfs(probe), probe
