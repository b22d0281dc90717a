#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hf_snapshot
short_description: Download a Hugging Face model repository into the hub cache, or verify that it is complete there
version_added: 0.3.0
description:
  - Runs on the organizer. Makes sure one model repository is complete in a Hugging Face hub cache
    (C(<cache_dir>/models--<org>--<name>/{blobs,refs,snapshots})), the layout vLLM reads with C(HF_HUB_OFFLINE=1).
  - With O(source=download) it calls C(huggingface_hub.snapshot_download), which fetches only the files that are
    missing and resumes partial ones (C(blobs/*.incomplete)), so a re-run after an interruption goes on where it stopped.
    The whole repository is fetched (every weight shard, not only the tokenizer), unless O(allow_patterns) or
    O(ignore_patterns) say otherwise.
  - With O(source=present) (an organizer without internet) nothing is fetched; the module only verifies the cache.
  - Either way the cache is then verified. C(refs/<revision>) names a snapshot; every entry of C(snapshots/<rev>/) must be
    a symlink that resolves to an existing file in C(blobs/) (a copy made without C(-a) has regular files there and
    would double the disk use); C(config.json) must be there; every shard a C(*.index.json) names must be in the snapshot;
    there must be weights; no download may be unfinished. With O(verify_hashes=true) each blob is checked against its
    name, the sha256 for LFS files (64 hex digits) and the git blob sha1 for the others (40 hex digits).
  - Every problem found is reported at once, each with the model, what is wrong and the fix.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(source=download), check mode asks the Hub what would be downloaded (C(snapshot_download(dry_run=True)))
        and reports C(changed=true) when anything would be; nothing is written. With O(source=present) the module
        only reads, as it always does.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: A second run with the repository complete downloads nothing and reports no change.
options:
  repo_id:
    description:
      - The model repository, C(<org>/<name>), for example V(openai/gpt-oss-120b).
    type: str
    required: true
  cache_dir:
    description:
      - The hub cache directory (C(HF_HUB_CACHE), i.e. C($HF_HOME/hub)).
    type: path
    required: true
  source:
    description:
      - V(download) fetches what is missing with C(huggingface_hub), then verifies.
      - V(present) only verifies the cache (offline organizers).
    type: str
    choices: [download, present]
    default: present
  revision:
    description:
      - The branch, tag or commit to fetch and verify. For V(present), a branch or tag must have its C(refs/) file.
    type: str
    default: main
  token:
    description:
      - A Hugging Face access token, for gated repositories such as C(meta-llama/*) (accept the licence on the model's
        page first). Defaults to the environment's C(HF_TOKEN); C(huggingface_hub)'s own stored token is used otherwise.
    type: str
  endpoint:
    description:
      - The Hub endpoint, for a mirror (as C(HF_ENDPOINT)). Defaults to C(huggingface_hub)'s.
    type: str
  allow_patterns:
    description:
      - Only files matching these glob patterns are downloaded (C(snapshot_download)'s C(allow_patterns)).
    type: list
    elements: str
  ignore_patterns:
    description:
      - Files matching these glob patterns are not downloaded, for example V(original/*) for gpt-oss's original
        checkpoint that vLLM does not read.
    type: list
    elements: str
  max_workers:
    description:
      - Concurrent file downloads.
    type: int
    default: 8
  verify_hashes:
    description:
      - Check every blob the snapshot uses against its name (sha256 of LFS files, git blob sha1 of small files).
        Reads every byte once; with O(hash_cache) a file whose size and modification time did not change is not read
        again.
    type: bool
    default: true
  hash_cache:
    description:
      - A JSON file remembering the sha256 of files already hashed (a mapping of each path, relative
        to O(hash_cache_base), to its size, modification time in ns and sha256), the same format the content manifest
        uses, so neither hashes a file twice. Created when missing.
    type: path
  hash_cache_base:
    description:
      - The directory O(hash_cache)'s paths are relative to. Defaults to O(cache_dir).
    type: path
  progress_file:
    description:
      - A JSON file the module rewrites before hashing each file (phase, repository, file, size, bytes done), for a
        status display that reads it while the module runs.
    type: path
requirements:
  - Python 3 standard library for O(source=present).
  - huggingface_hub for O(source=download) (on the organizer; C(pip install huggingface_hub)).
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - name: Hugging Face cache layout
    description: The blobs, refs and snapshots of the hub cache.
    link: https://huggingface.co/docs/huggingface_hub/guides/manage-cache
  - name: snapshot_download
    description: The download function this module calls.
    link: https://huggingface.co/docs/huggingface_hub/guides/download
"""

EXAMPLES = r"""
- name: Download gpt-oss-120b (resumes an interrupted download)
  jetson_thor.workshop.hf_snapshot:
    repo_id: openai/gpt-oss-120b
    cache_dir: /home/nvidia/data/models/huggingface/hub
    source: download
    token: "{{ lookup('ansible.builtin.env', 'HF_TOKEN') }}"
  timeout: 43200

- name: Verify that the FP4 Llama is complete in an offline organizer's cache
  jetson_thor.workshop.hf_snapshot:
    repo_id: nvidia/Llama-3.1-8B-Instruct-FP4
    cache_dir: /home/nvidia/data/models/huggingface/hub
    source: present
    hash_cache: /home/nvidia/data/.prewarm/hash-cache.json
    hash_cache_base: /home/nvidia/data
  timeout: 3600
"""

RETURN = r"""
repo_id:
  description: The repository.
  returned: always
  type: str
  sample: openai/gpt-oss-120b
revision:
  description: The snapshot's commit hash (in check mode with O(source=download), the one the Hub names).
  returned: success
  type: str
  sample: b5c939de8f754692c1647ca79fbf85e8c1e70f8a
snapshot:
  description: The snapshot directory.
  returned: success
  type: str
  sample: /home/nvidia/data/models/huggingface/hub/models--openai--gpt-oss-120b/snapshots/b5c939de8f754692c1647ca79fbf85e8c1e70f8a
files:
  description: Entries of the snapshot (each a symlink into C(blobs/)).
  returned: success
  type: int
  sample: 39
bytes:
  description: Bytes of the blobs the snapshot uses.
  returned: success
  type: int
  sample: 130543235614
hashed_bytes:
  description: Bytes read to check hashes in this run (files the hash cache vouched for are not read).
  returned: success
  type: int
  sample: 0
download_bytes:
  description: Bytes fetched (V(0) with O(source=present)); in check mode, bytes that would be fetched.
  returned: success
  type: int
  sample: 0
problems:
  description: Every problem found, each naming the file, what is wrong and the fix.
  returned: failure
  type: list
  elements: str
  sample: ["snapshots/0d4f.../model-00003-of-00014.safetensors is listed in model.safetensors.index.json but missing"]
"""

import json
import os
import re
import time

from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib

from ansible_collections.jetson_thor.workshop.plugins.module_utils._content_manifest import sha256_file

try:
    import huggingface_hub

    HF_IMPORT_ERROR = None
except ImportError as exc:  # only needed for source=download
    huggingface_hub = None
    HF_IMPORT_ERROR = exc

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def repo_folder(repo_id):
    return "models--" + repo_id.replace("/", "--")


def git_blob_sha1(path):
    import hashlib

    digest = hashlib.sha1()
    digest.update(b"blob %d\0" % os.path.getsize(path))
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


class HashCache:
    """The content manifest's hash cache: {rel: [size, mtime_ns, sha256]} relative to base (a missing file starts empty)."""

    def __init__(self, path, base, progress_file=None, repo_id=""):
        self.path, self.base, self.progress_file, self.repo_id = path, base, progress_file, repo_id
        self.data, self.dirty, self.hashed = {}, False, 0
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    loaded = json.load(f)
                self.data = loaded if isinstance(loaded, dict) else {}
            except (OSError, ValueError):
                self.data = {}

    def sha256(self, full):
        st = os.stat(full)
        rel = os.path.relpath(full, self.base).replace(os.sep, "/")
        known = self.data.get(rel)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return known[2]
        self.progress(rel, st.st_size)
        digest = sha256_file(full)
        self.hashed += st.st_size
        self.data[rel] = [st.st_size, st.st_mtime_ns, digest]
        self.dirty = True
        return digest

    def progress(self, rel, size):
        if not self.progress_file:
            return
        state = {"phase": "verify", "repo": self.repo_id, "file": rel, "size": size, "done_bytes": self.hashed}
        write_json(self.progress_file, {**state, "time": time.time()})

    def save(self):
        if self.path and self.dirty:
            write_json(self.path, self.data)


def write_json(path, data):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out)
    os.replace(tmp, path)


def verify(cache_dir, repo_id, revision="main", verify_hashes=True, hashes=None):
    """Check that repo_id is complete in the hub cache. Returns (info, problems); each problem is one sentence with
    the fix. info: revision, snapshot, files, bytes."""
    folder = repo_folder(repo_id)
    repo = os.path.join(cache_dir, folder)
    fix_copy = (
        f"download it (content_prewarm_source: download) or copy {folder} complete from a machine that has it "
        f"(rsync -a, which keeps the symlinks) into {cache_dir}"
    )
    info = {"revision": None, "snapshot": None, "files": 0, "bytes": 0}
    if not os.path.isdir(repo):
        return info, [f"{repo_id} is not in the cache ({repo} is missing): {fix_copy}"]
    if SHA1_RE.match(revision):
        rev = revision
    else:
        ref = os.path.join(repo, "refs", revision)
        try:
            with open(ref, encoding="utf-8") as f:
                rev = f.read().strip()
        except OSError:
            return info, [f"{repo_id}: refs/{revision} is missing, so no snapshot is named: {fix_copy}"]
    snapshot = os.path.join(repo, "snapshots", rev)
    info.update(revision=rev, snapshot=snapshot)
    if not os.path.isdir(snapshot):
        return info, [f"{repo_id}: refs/{revision} names snapshot {rev}, which is missing: {fix_copy}"]

    blobs = os.path.realpath(os.path.join(repo, "blobs"))
    problems, entries, used = [], set(), {}
    for dirpath, dirnames, filenames in os.walk(snapshot):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, snapshot).replace(os.sep, "/")
            entries.add(rel)
            shown = f"snapshots/{rev}/{rel}"
            if not os.path.islink(full):
                problems.append(
                    f"{repo_id}: {shown} is a regular file, not a symlink into blobs/ (the cache was copied with its "
                    f"links dereferenced, which doubles the disk use): copy {folder} again with rsync -a"
                )
                continue
            target = os.path.realpath(full)
            if os.path.dirname(target) != blobs:
                problems.append(f"{repo_id}: {shown} points outside blobs/ ({os.readlink(full)}): {fix_copy}")
            elif not os.path.isfile(target):
                problems.append(f"{repo_id}: {shown} points to blob {os.path.basename(target)}, which is missing: {fix_copy}")
            else:
                used[os.path.basename(target)] = rel
    info["files"] = len(entries)
    if "config.json" not in entries:
        problems.append(f"{repo_id}: snapshot {rev} has no config.json: {fix_copy}")
    indexes = sorted(e for e in entries if e.endswith(".index.json"))
    for index in indexes:
        try:
            with open(os.path.join(snapshot, index), encoding="utf-8") as f:
                shards = set(json.load(f).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError) as exc:
            problems.append(f"{repo_id}: {index} cannot be read ({exc}): {fix_copy}")
            continue
        prefix = os.path.dirname(index)
        for shard in sorted(shards):
            rel = f"{prefix}/{shard}" if prefix else shard
            if rel not in entries:
                problems.append(f"{repo_id}: {rel} is listed in {index} but missing from snapshot {rev}: {fix_copy}")
    if not any(e.endswith(WEIGHT_SUFFIXES) for e in entries):
        problems.append(f"{repo_id}: snapshot {rev} holds no weights (no *.safetensors or *.bin): {fix_copy}")
    if os.path.isdir(blobs):
        for name in sorted(os.listdir(blobs)):
            if name.endswith(".incomplete"):
                size = os.path.getsize(os.path.join(blobs, name))
                problems.append(
                    f"{repo_id}: blobs/{name} is an unfinished download ({size} bytes): run the download again "
                    "(content_prewarm_source: download resumes it) or delete the file"
                )
    for blob in sorted(used):
        full = os.path.join(blobs, blob)
        info["bytes"] += os.path.getsize(full)
        if not verify_hashes:
            continue
        if SHA256_RE.match(blob):
            actual = hashes.sha256(full) if hashes else sha256_file(full)
        elif SHA1_RE.match(blob):
            actual = git_blob_sha1(full)
        else:
            continue
        if actual != blob:
            problems.append(
                f"{repo_id}: blob {blob} ({used[blob]}) is corrupt: its content hashes to {actual}. "
                f"Delete {full} and the snapshot link to it, then download again or copy it from a machine that has it"
            )
    return info, problems


def blob_state(cache_dir, repo_id):
    blobs = os.path.join(cache_dir, repo_folder(repo_id), "blobs")
    state = {}
    if os.path.isdir(blobs):
        for name in os.listdir(blobs):
            try:
                state[name] = os.path.getsize(os.path.join(blobs, name))
            except OSError:
                pass
    return state


def hub_error(module, exc, result):
    repo_id = result["repo_id"]
    name = type(exc).__name__
    if name == "GatedRepoError":
        fix = "accept the model's licence on its Hugging Face page with your account, and give that account's token (HF_TOKEN)"
    elif name == "RepositoryNotFoundError":
        fix = "check the repository id, or give a token that can see it (HF_TOKEN)"
    elif name == "RevisionNotFoundError":
        fix = "check the revision"
    else:
        fix = "check the organizer's internet access (or HF_ENDPOINT), then run again: the download resumes"
    module.fail_json(msg=f"{repo_id}: the download failed ({name}: {exc}). Fix: {fix}.", **result)


def download(module, params):
    kwargs = {
        "repo_id": params["repo_id"],
        "cache_dir": params["cache_dir"],
        "revision": params["revision"],
        "max_workers": params["max_workers"],
    }
    for key in ("token", "endpoint", "allow_patterns", "ignore_patterns"):
        if params[key]:
            kwargs[key] = params[key]
    if module.check_mode:
        planned = huggingface_hub.snapshot_download(dry_run=True, **kwargs)
        pending = [f for f in planned if getattr(f, "will_download", False)]
        revision = planned[0].commit_hash if planned else None
        return revision, sum(getattr(f, "file_size", 0) or 0 for f in pending), bool(pending)
    before = blob_state(params["cache_dir"], params["repo_id"])
    path = huggingface_hub.snapshot_download(**kwargs)
    after = blob_state(params["cache_dir"], params["repo_id"])
    fetched = sum(size - before.get(name, 0) for name, size in after.items() if size != before.get(name))
    return os.path.basename(path), max(fetched, 0), after != before


def main():
    module = AnsibleModule(
        argument_spec=dict(
            repo_id=dict(type="str", required=True),
            cache_dir=dict(type="path", required=True),
            source=dict(type="str", choices=["download", "present"], default="present"),
            revision=dict(type="str", default="main"),
            token=dict(type="str", no_log=True, fallback=(env_fallback, ["HF_TOKEN"])),
            endpoint=dict(type="str"),
            allow_patterns=dict(type="list", elements="str"),
            ignore_patterns=dict(type="list", elements="str"),
            max_workers=dict(type="int", default=8),
            verify_hashes=dict(type="bool", default=True),
            hash_cache=dict(type="path"),
            hash_cache_base=dict(type="path"),
            progress_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    repo_id, cache_dir = params["repo_id"], params["cache_dir"]
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        module.fail_json(msg=f"repo_id must be <org>/<name>, got {repo_id!r}.", repo_id=repo_id)
    result = {"changed": False, "repo_id": repo_id, "download_bytes": 0, "hashed_bytes": 0}

    revision = params["revision"]
    if params["source"] == "download":
        if huggingface_hub is None:
            module.fail_json(msg=missing_required_lib("huggingface_hub"), exception=str(HF_IMPORT_ERROR), **result)
        try:
            rev, fetched, changed = download(module, params)
        except Exception as exc:  # every Hub or network error is reported with the fix
            hub_error(module, exc, result)
        result.update(changed=changed, download_bytes=fetched)
        if module.check_mode:
            # Nothing was fetched: a complete cache is still verified, an incomplete one is what the run would fix.
            result["revision"] = rev
            module.exit_json(**result)
        revision = rev or revision

    hashes = None
    if params["verify_hashes"]:
        hashes = HashCache(params["hash_cache"], params["hash_cache_base"] or cache_dir, params["progress_file"], repo_id)
    info, problems = verify(cache_dir, repo_id, revision, params["verify_hashes"], hashes)
    if hashes:
        hashes.save()
        result["hashed_bytes"] = hashes.hashed
    result.update(info)
    if problems:
        module.fail_json(msg=f"{repo_id} is not complete in {cache_dir}: " + " | ".join(problems), problems=problems, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
