#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: content_torrent
short_description: Make the torrent of the workshop content from its manifest, once per content set
version_added: 0.3.0
description:
  - On the organizer, makes a torrent of the regular files a content manifest lists (written by the pre-warm playbook;
    see C(docs/content.md)), hashing them from the content root with libtorrent (from the wheel in O(engine_wheel)).
  - Only the manifest's regular files go into the torrent, in the manifest's order; symlinks are not followed and never
    travel (the HF snapshot entries are placed on each unit afterwards by M(jetson_thor.workshop.content_verify)), so no
    blob is sent or stored twice.
  - The torrent is hybrid (BitTorrent v1 and v2); every file starts on a piece boundary, so a bad file costs only its own
    pieces. The piece size is a power of two between 256 KiB and 16 MiB giving at most about 8192 pieces (16 MiB for
    134 GB), unless O(piece_size) is given.
  - The result is cached as C(<dest>/<content_id>-<piece KiB>k.torrent), so a content set is hashed once.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details: In check mode the manifest is read and the torrent's path and piece size are returned; nothing is hashed.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  manifest:
    description: The content manifest (JSON) on the organizer.
    type: path
    required: true
  root:
    description: The content root the manifest describes.
    type: path
    required: true
  dest:
    description: Directory for the cached torrents (created).
    type: path
    required: true
  piece_size:
    description: Piece size in bytes (a power of two, at least 16384); V(0) chooses it from the content's size.
    type: int
    default: 0
  engine_wheel:
    description: The libtorrent wheel for the Python that runs this module; unpacked once into O(engine_dir).
    type: path
    required: true
  engine_dir:
    description: Where the wheel is unpacked (default O(dest)C(/../engine)).
    type: path
requirements:
  - libtorrent 2.1 (the wheel the role fetches) for the Python running the module.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.content_swarm
  - module: jetson_thor.workshop.content_verify
"""

EXAMPLES = r"""
- name: Make (or reuse) the torrent of the content set
  jetson_thor.workshop.content_torrent:
    manifest: /srv/workshop-data/manifest.json
    root: /srv/workshop-data
    dest: /home/organizer/.cache/jetson_thor_workshop/content/torrents
    engine_wheel: /srv/wheels/libtorrent-2.1.1-cp311-cp311-manylinux_2_17_x86_64.whl
  register: __torrent
"""

RETURN = r"""
torrent:
  description: Path of the torrent file.
  returned: always
  type: str
  sample: /home/organizer/.cache/jetson_thor_workshop/content/torrents/0a1b2c...-16384k.torrent
content_id:
  description: The manifest's content_id (names the torrent).
  returned: always
  type: str
info_hash:
  description: The torrent's info hash (V(null) in check mode when the torrent is not made yet).
  returned: always
  type: str
pieces:
  description: Number of pieces.
  returned: always
  type: int
piece_size:
  description: Piece size in bytes.
  returned: always
  type: int
  sample: 16777216
total_bytes:
  description: Bytes the torrent holds (the manifest's regular files).
  returned: always
  type: int
files:
  description: Number of files in the torrent.
  returned: always
  type: int
hash_seconds:
  description: Seconds spent hashing (V(0) when the cached torrent was used).
  returned: always
  type: float
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm
from ansible_collections.jetson_thor.workshop.plugins.module_utils import _swarm
from ansible_collections.jetson_thor.workshop.plugins.module_utils._swarm_engine import piece_size_for


def main():
    module = AnsibleModule(
        argument_spec=dict(
            manifest=dict(type="path", required=True),
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            piece_size=dict(type="int", default=0),
            engine_wheel=dict(type="path", required=True),
            engine_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        manifest = cm.load(p["manifest"])
    except cm.ManifestError as exc:
        module.fail_json(msg=str(exc))
    piece = p["piece_size"] or piece_size_for(manifest["total_bytes"])
    if piece < 16384 or piece & (piece - 1):
        module.fail_json(msg=f"piece_size must be a power of two of at least 16384 bytes, got {piece}")
    path = os.path.join(p["dest"], f"{manifest['content_id']}-{piece // 1024}k.torrent")
    result = {
        "changed": False, "torrent": path, "content_id": manifest["content_id"], "piece_size": piece,
        "files": len(manifest["files"]), "total_bytes": manifest["total_bytes"], "hash_seconds": 0.0,
        "info_hash": None, "pieces": -(-manifest["total_bytes"] // piece),
    }
    try:
        engine_root = p["engine_dir"] or os.path.join(os.path.dirname(os.path.abspath(p["dest"])), "engine")
        engine_dir = _swarm.unpack_wheel(p["engine_wheel"], engine_root)[0]
        lt = _swarm.import_libtorrent(engine_dir)
        if os.path.isfile(path):
            try:
                summary = _swarm.torrent_summary(lt, path)
                if summary["comment"] == f"content_id {manifest['content_id']}":
                    result.update(info_hash=summary["info_hash"], pieces=summary["pieces"])
                    module.exit_json(**result)
            except RuntimeError:
                pass  # unreadable: make it again
        result["changed"] = True
        if module.check_mode:
            module.exit_json(**result)
        os.makedirs(p["dest"], exist_ok=True)
        start = time.monotonic()
        summary = _swarm.make_torrent(lt, manifest, p["root"], piece, path, p["dest"])
    except _swarm.SwarmError as exc:
        module.fail_json(msg=str(exc))
    result.update(info_hash=summary["info_hash"], pieces=summary["pieces"], hash_seconds=round(time.monotonic() - start, 1))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
