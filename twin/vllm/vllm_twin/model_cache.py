"""Finding a model in the Hugging Face hub cache and reading its checkpoint the way vLLM's loader would.

Every shard is read fully and checked (safetensors framing, index coverage, optionally the LFS blob sha256).
The twin content generator scales weights down; `twin_scale` in the index metadata gives nominal = actual x scale.
"""

import glob
import hashlib
import json
import os
import re
import struct
import zipfile
from pathlib import Path

from vllm_twin import errors
from vllm_twin.errors import EngineCoreError

CHUNK = 1 << 20


def hub_cache_dir():
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def offline():
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE")


def is_local_path(name):
    return name.startswith(("/", "./", "../", "~")) or os.path.isdir(name)


def resolve(name):
    """The snapshot directory holding config.json for a hub id or local directory, or None."""
    if is_local_path(name):
        path = Path(name).expanduser()
        return path if (path / "config.json").is_file() else None
    repo = hub_cache_dir() / ("models--" + name.replace("/", "--"))
    try:
        revision = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / revision
    return snapshot if (snapshot / "config.json").is_file() else None


def read_json(path):
    with open(path) as f:
        return json.load(f)


def safetensors_error(detail):
    return EngineCoreError(
        "load_model", f"safetensors_rust.SafetensorError: Error while deserializing header: {detail}", errors.SAFETENSORS_FRAMES
    )


class Checkpoint:
    """The weight files vLLM would pick in a snapshot (index-filtered *.safetensors, else *.bin)."""

    def __init__(self, snapshot):
        self.dir = Path(snapshot)
        self.expected, self.scale = None, 1
        for index_name, fmt in (("model.safetensors.index.json", "safetensors"), ("pytorch_model.bin.index.json", "pt")):
            if (self.dir / index_name).exists():
                index = read_json(self.dir / index_name)
                self.format = fmt
                self.expected = index["weight_map"]
                self.scale = index.get("metadata", {}).get("twin_scale", 1)
                break
        else:
            self.format = "safetensors" if glob.glob(str(self.dir / "*.safetensors")) else "pt"
            marker = self.dir / "twin_scale.json"
            if marker.exists():
                self.scale = read_json(marker)["twin_scale"]
        pattern = "*.safetensors" if self.format == "safetensors" else "*.bin"
        found = sorted(os.path.basename(p) for p in glob.glob(str(self.dir / pattern)))
        if self.expected is not None:
            found = [f for f in found if f in set(self.expected.values())]
        self.files = found

    @property
    def desc(self):
        return "Loading safetensors checkpoint shards" if self.format == "safetensors" else "Loading pt checkpoint shards"

    def nominal_bytes(self):
        return sum(os.path.getsize(self.dir / f) for f in self.files if (self.dir / f).exists()) * self.scale

    def load(self, on_shard):
        """Read and check every shard; on_shard(index, nominal_bytes) after each. Raises EngineCoreError."""
        verify = os.environ.get("VLLM_TWIN_VERIFY_HASHES") == "1"
        loaded = set()
        for i, name in enumerate(self.files):
            path = self.dir / name
            if not path.exists():
                frames = errors.SAFETENSORS_FRAMES if self.format == "safetensors" else errors.PT_FRAMES
                raise EngineCoreError("load_model", "FileNotFoundError: No such file or directory (os error 2)", frames)
            check = check_safetensors if self.format == "safetensors" else check_torch_zip
            names, digest = check(path, verify)
            blob = os.path.basename(os.path.realpath(path))
            if verify and re.fullmatch(r"[0-9a-f]{64}", blob) and digest != blob:
                raise EngineCoreError(
                    "load_model",
                    f"RuntimeError: vLLM twin: blob {blob} of {name} has sha256 "
                    f"{digest}; the file changed after it was downloaded",
                    errors.SAFETENSORS_FRAMES,
                )
            loaded |= names
            on_shard(i, os.path.getsize(path) * self.scale)
        if self.expected is not None:
            missing = sorted(set(self.expected) - loaded)
            if missing:
                shown = "{" + ", ".join(repr(m) for m in missing) + "}"
                raise EngineCoreError(
                    "load_model",
                    f"ValueError: Following weights were not initialized from checkpoint: {shown}",
                    errors.UNLOADED_FRAMES,
                )


def _read_rest(f, hasher):
    total = 0
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            return total
        total += len(chunk)
        if hasher:
            hasher.update(chunk)


def check_safetensors(path, verify):
    """The checks safetensors' safe_open makes, with its error names; returns (tensor names, sha256 or None)."""
    hasher = hashlib.sha256() if verify else None
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if hasher:
            hasher.update(head)
        if len(head) < 8:
            raise safetensors_error("HeaderTooSmall")
        (n,) = struct.unpack("<Q", head)
        if n > 100_000_000:
            raise safetensors_error("HeaderTooLarge")
        if 8 + n > size:
            raise safetensors_error("InvalidHeaderLength")
        raw = f.read(n)
        if hasher:
            hasher.update(raw)
        if not raw.startswith(b"{"):
            raise safetensors_error("InvalidHeaderStart")
        try:
            header = json.loads(raw)
        except ValueError:
            raise safetensors_error("InvalidHeaderDeserialization") from None
        data = _read_rest(f, hasher)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    end = max((v["data_offsets"][1] for v in tensors.values()), default=0)
    if end != data:
        raise safetensors_error("MetadataIncompleteBuffer")
    return set(tensors), hasher.hexdigest() if hasher else None


def check_torch_zip(path, verify):
    """torch.load's first check: a readable zip archive with a data.pkl."""
    if not zipfile.is_zipfile(path):
        raise EngineCoreError(
            "load_model",
            "RuntimeError: PytorchStreamReader failed reading zip archive: failed finding central directory",
            errors.PT_FRAMES,
        )
    with zipfile.ZipFile(path) as zf:
        bad = zf.testzip()
        if bad:
            raise EngineCoreError(
                "load_model",
                f"RuntimeError: PytorchStreamReader failed reading file {bad}: invalid header or archive is corrupted",
                errors.PT_FRAMES,
            )
        names = set(json.loads(zf.read("archive/data.pkl"))["twin_tensors"])
    hasher = hashlib.sha256() if verify else None
    if hasher:
        with open(path, "rb") as f:
            _read_rest(f, hasher)
    return names, hasher.hexdigest() if hasher else None
