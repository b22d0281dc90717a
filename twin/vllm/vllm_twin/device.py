"""The simulated GPU (docs/twin-contract.md): device.json, meminfo and flock'd allocation files."""

import fcntl
import json
import os
import socket
import uuid
from pathlib import Path

GiB = 1 << 30


def device_dir():
    return Path(os.environ.get("VLLM_TWIN_DEVICE_DIR", "/run/nvidia-twin"))


class Device:
    """What CUDA/NVML would report; None from `probe()` when the container got no NVIDIA runtime."""

    def __init__(self, root, info):
        self.root, self.info = root, info
        self.total_bytes = int(info["total_bytes"])
        self.nvml_ok = bool(info.get("nvml_ok", True))

    def free_bytes(self):
        """MemFree, which is what cudaMemGetInfo reports on a unified-memory Jetson (platform-facts §1.3)."""
        for line in (self.root / "meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key == "MemFree":
                return int(value.split()[0]) * 1024
        raise ValueError(f"no MemFree in {self.root / 'meminfo'}")


def probe():
    root = device_dir()
    try:
        info = json.loads((root / "device.json").read_text())
    except (OSError, ValueError):
        return None
    return Device(root, info)


class Allocation:
    """A registered allocation: alloc/<unique>.json, exclusively flock'd for as long as this process lives."""

    def __init__(self, device, nbytes, page_cache_bytes, model):
        alloc = device.root / "alloc"
        alloc.mkdir(exist_ok=True)
        name = f"vllm-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = alloc / f".{name}.tmp"
        self.fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        record = {"bytes": int(nbytes), "page_cache_bytes": int(page_cache_bytes), "owner": "vllm", "model": model}
        os.write(self.fd, json.dumps(record).encode())
        # Locked before it gets its final name, so memd never sees it unlocked.
        self.path = alloc / f"{name}.json"
        os.rename(tmp, self.path)
