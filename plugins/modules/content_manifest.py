#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: content_manifest
short_description: Write the manifest of the workshop's offline content (files with sha256, symlinks, images, compile caches)
version_added: 0.3.0
description:
  - Runs on the organizer, after the pre-warm filled the content root (C(models/), C(encodings/), C(packs/), C(images/)).
    Lists every regular file (path, size, sha256, kind) and every symlink (path, target, never followed), so the
    Hugging Face snapshot links stay links on the units and blobs move once. A link that dangles or leaves the root, or
    an unfinished download, fails the module with the path and the fix.
  - Adds the images (O(images), each reference with its image ID and tarball) under C(images), and the compile-cache
    pack (O(compile_caches)) under C(compile_caches).
  - Hashing 130 GB takes a while, so the sha256 of each file is kept in O(hash_cache) with its size and modification
    time; a re-run reads only files that changed.
  - Writes O(dest) atomically (a temporary file renamed over it), only when what it describes changed; C(created) alone
    does not count. The C(content_id) (one sha256 over every path, size, sha256 and link target) names the content set.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the files are hashed (read only) to compute the content id, and nothing is written, neither
        O(dest) nor O(hash_cache). C(changed) says whether the manifest would be rewritten.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  root:
    description:
      - The content root (C(workshop_data_root) on the organizer).
    type: path
    required: true
  dest:
    description:
      - Where to write the manifest. Defaults to C(<root>/manifest.json).
    type: path
  name:
    description:
      - The content set's name, recorded in the manifest.
    type: str
    default: workshop
  hash_cache:
    description:
      - A JSON file with the sha256 of files hashed before (a mapping of each path, relative to
        O(root), to its size, modification time in ns and sha256). Defaults to
        C(<root>/.thor-content/hash-cache.json). Created when missing.
    type: path
  images:
    description:
      - The images the content holds as C(docker save) tarballs, recorded under C(images) as they are given.
    type: list
    elements: dict
    default: []
    suboptions:
      ref:
        description: The image reference, for example V(nvcr.io/nvidia/vllm:25.09-py3).
        type: str
        required: true
      id:
        description: The image ID (C(sha256:...)).
        type: str
        required: true
      file:
        description: The tarball, relative to O(root), for example V(images/nvcr.io_nvidia_vllm_25.09-py3.tar).
        type: str
        required: true
  compile_caches:
    description:
      - The packed torch.compile caches, recorded under C(compile_caches) as they are given (for example the pack's path
        and, per stage, its key and cache directories).
    type: dict
    default: {}
  progress_file:
    description:
      - A JSON file rewritten before each file is hashed (phase, file, size, bytes done), for a status display.
    type: path
requirements:
  - Python 3 standard library.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.hf_snapshot
"""

EXAMPLES = r"""
- name: Write the content manifest
  jetson_thor.workshop.content_manifest:
    root: /home/nvidia/data
    images:
      - ref: nvcr.io/nvidia/vllm:25.09-py3
        id: sha256:4f1c0a9d3e5b...
        file: images/nvcr.io_nvidia_vllm_25.09-py3.tar
    compile_caches:
      pack: packs/vllm_cache.tar
      stages: {}
  register: __manifest
  timeout: 7200

- name: Say what the content holds
  ansible.builtin.debug:
    msg: "{{ __manifest.files }} files, {{ __manifest.bytes }} bytes, content {{ __manifest.content_id }}"
"""

RETURN = r"""
path:
  description: The manifest file.
  returned: success
  type: str
  sample: /home/nvidia/data/manifest.json
content_id:
  description: The sha256 over every path, size, sha256 and link target.
  returned: success
  type: str
  sample: 9f2c1d0e8b7a6f5e4d3c2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a190817263
previous_content_id:
  description: The content id of the manifest that was there before, or V(null).
  returned: success
  type: str
  sample: null
files:
  description: Regular files listed.
  returned: success
  type: int
  sample: 57
symlinks:
  description: Symlinks listed.
  returned: success
  type: int
  sample: 31
bytes:
  description: Total size of the files.
  returned: success
  type: int
  sample: 139512034561
kinds:
  description: Files and bytes per kind (C(hf-blob), C(hf-ref), C(encoding), C(compile-cache), C(image)).
  returned: success
  type: dict
  sample: {hf-blob: {files: 40, bytes: 130543235614}}
hashed_bytes:
  description: Bytes read in this run (files the hash cache vouched for were not read).
  returned: success
  type: int
  sample: 0
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm

HASH_CACHE = ".thor-content/hash-cache.json"


def read_json(path, default):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def write_json(path, data, indent=None):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=indent, sort_keys=indent is not None)
        out.write("\n")
    os.replace(tmp, path)


def same(old, new):
    """Two manifests describe the same thing (the time they were written aside)."""
    if not isinstance(old, dict):
        return False
    return _without_created(old) == _without_created(new)


def _without_created(manifest):
    return {k: v for k, v in manifest.items() if k != "created"}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path"),
            name=dict(type="str", default="workshop"),
            hash_cache=dict(type="path"),
            images=dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    ref=dict(type="str", required=True), id=dict(type="str", required=True), file=dict(type="str", required=True)
                ),
            ),
            compile_caches=dict(type="dict", default={}),
            progress_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    root = params["root"]
    dest = params["dest"] or os.path.join(root, "manifest.json")
    cache_path = params["hash_cache"] or os.path.join(root, HASH_CACHE)
    hash_cache = read_json(cache_path, {})
    if not isinstance(hash_cache, dict):
        hash_cache = {}
    done = {"bytes": 0}

    def progress(rel, size):
        if params["progress_file"] and not module.check_mode:
            write_json(params["progress_file"], {"phase": "manifest", "file": rel, "size": size,
                                                 "done_bytes": done["bytes"], "time": time.time()})
        done["bytes"] += size

    for image in params["images"]:
        if not os.path.isfile(os.path.join(root, image["file"])):
            module.fail_json(
                msg=f"image {image['ref']}: its tarball {image['file']} is not in {root}: run the images step again (docker save)"
            )
    extra = {
        "images": sorted(params["images"], key=lambda i: i["ref"]),
        "compile_caches": params["compile_caches"],
    }
    try:
        manifest = cm.build(root, name=params["name"], extra=extra, hash_cache=hash_cache, progress=progress)
    except cm.ManifestError as exc:
        module.fail_json(msg=f"cannot write the manifest of {root}: {exc}")

    old = read_json(dest, None)
    changed = not same(old, manifest)
    kinds = {}
    for f in manifest["files"]:
        entry = kinds.setdefault(f["kind"], {"files": 0, "bytes": 0})
        entry["files"] += 1
        entry["bytes"] += f["size"]
    if not module.check_mode:
        if done["bytes"]:
            write_json(cache_path, hash_cache)
        if changed:
            write_json(dest, manifest, indent=1)
    module.exit_json(
        changed=changed,
        path=dest,
        content_id=manifest["content_id"],
        previous_content_id=old.get("content_id") if isinstance(old, dict) else None,
        files=len(manifest["files"]),
        symlinks=len(manifest["symlinks"]),
        bytes=manifest["total_bytes"],
        kinds=kinds,
        hashed_bytes=done["bytes"],
    )


if __name__ == "__main__":
    main()
