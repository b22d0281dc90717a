"""A small Hugging Face hub cache repo in the real layout, for the pre-warm module tests."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

REV = "0123456789abcdef0123456789abcdef01234567"


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def make_repo(hub: Path, repo_id: str = "org/model", shards: int = 2, rev: str = REV) -> Path:
    """models--org--model with config.json (git blob), an index and shards (LFS blobs named by sha256), refs/main."""
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    blobs, snap = repo / "blobs", repo / "snapshots" / rev
    blobs.mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(rev)
    files = {"config.json": (json.dumps({"architectures": ["LlamaForCausalLM"]}).encode(), False)}
    names = [f"model-{i + 1:05d}-of-{shards:05d}.safetensors" for i in range(shards)]
    index = {"metadata": {"total_size": 0}, "weight_map": {f"layer.{i}": name for i, name in enumerate(names)}}
    files["model.safetensors.index.json"] = (json.dumps(index).encode(), False)
    for i, name in enumerate(names):
        files[name] = (f"{repo_id} shard {i}".encode() * 100, True)
    for name, (data, lfs) in files.items():
        blob = hashlib.sha256(data).hexdigest() if lfs else git_blob_id(data)
        (blobs / blob).write_bytes(data)
        link = snap / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(f"../../blobs/{blob}")
    return repo


def blob_of(repo: Path, name: str, rev: str = REV) -> Path:
    return (repo / "snapshots" / rev / name).resolve()
