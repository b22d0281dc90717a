#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: content_verify
short_description: Read the content manifest, check a unit's content and disk, and finish and verify the content
version_added: 0.3.0
description:
  - V(loaded) reads a content manifest file (on the organizer) and returns it, or fails naming what is wrong and the fix
    (C(run the pre-warm playbook first)).
  - V(checked) (read-only, on a unit) says whether the unit already holds the manifest's content, from the verification
    stamp (C(<root>/.thor-content/verified.json)) and a verification in O(mode); and, when it does not, how many bytes it
    still needs (counting the blocks its files already occupy) against the free space of the file system holding O(root)
    (or its nearest existing parent). It also returns the unit's Python (for the engine wheel), the address it reaches
    O(organizer_address) from (its fleet address) and the image IDs of the C(docker save) tarballs it holds.
  - V(present) (on a unit, after the transfer) creates or corrects every symlink of the manifest (never dereferencing;
    the HF snapshot entries stay links into C(blobs/)), creates empty files, unpacks each compile-cache pack
    (C(packs/<name>.tar) into C(<root>/<name>), once per pack content), verifies the content in O(mode) and writes the
    stamp. It fails, listing the files, when something is missing, has the wrong size or the wrong sha256.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details: V(present) in check mode verifies and reports what it would place or unpack, writing nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  state:
    description: What to do (see the description).
    type: str
    choices: [loaded, checked, present]
    default: checked
  manifest_path:
    description: The manifest file on this host (V(loaded) needs it; the others take it or O(manifest)).
    type: path
  manifest:
    description: The manifest itself, as V(loaded) returned it.
    type: dict
  root:
    description: The content root on this host (the workshop's C(workshop_data_root)). Required for V(checked) and V(present).
    type: path
  mode:
    description:
      - V(quick) checks sizes and links, and hashes only the files the stamp does not vouch for (size, mtime and inode
        unchanged since the last verification). V(full) hashes every file.
    type: str
    choices: [quick, full]
    default: quick
  organizer_address:
    description: V(checked) returns in RV(fleet_address) the local address this host reaches this address from.
    type: str
  owner:
    description: Account that owns what V(present) unpacks (empty keeps root).
    type: str
    default: ""
requirements:
  - Python 3 standard library on the host.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.content_torrent
  - module: jetson_thor.workshop.content_swarm
"""

EXAMPLES = r"""
- name: Read the manifest on the organizer
  jetson_thor.workshop.content_verify:
    state: loaded
    manifest_path: /srv/workshop-data/manifest.json
  register: __manifest
  delegate_to: organizer

- name: Does the unit need content, and does it fit?
  jetson_thor.workshop.content_verify:
    state: checked
    root: /home/nvidia/data
    manifest: "{{ __manifest.manifest }}"
    organizer_address: 10.0.0.1
  register: __check

- name: Place the links, unpack the compile cache, verify and stamp
  jetson_thor.workshop.content_verify:
    state: present
    root: /home/nvidia/data
    manifest: "{{ __manifest.manifest }}"
    mode: full
    owner: nvidia
  become: true
"""

RETURN = r"""
manifest:
  description: V(loaded) the manifest (format, content_id, total_bytes, files, symlinks and any extra keys).
  returned: when O(state=loaded)
  type: dict
content_id:
  description: The manifest's content_id.
  returned: always
  type: str
total_bytes:
  description: Bytes of the manifest's regular files.
  returned: always
  type: int
python:
  description: This host's Python (C(version) like V(3.11), C(tag) like V(cp311), C(machine) like V(aarch64), C(executable)).
  returned: always
  type: dict
up_to_date:
  description: V(checked) the stamp names this content_id and the verification found nothing wrong.
  returned: when O(state=checked)
  type: bool
stamp_content_id:
  description: V(checked) the content_id of the unit's stamp (V(null) without a stamp).
  returned: when O(state=checked)
  type: str
bytes_needed:
  description: V(checked) bytes the unit still needs for the manifest's files, plus each pack still to unpack.
  returned: when O(state=checked)
  type: int
free_bytes:
  description: V(checked) free bytes on the file system of RV(disk_path).
  returned: when O(state=checked)
  type: int
disk_path:
  description: V(checked) the directory measured (O(root), or its nearest existing parent).
  returned: when O(state=checked)
  type: str
fleet_address:
  description: V(checked) the local address that reaches O(organizer_address) (V(null) without a route).
  returned: when O(state=checked)
  type: str
images:
  description: The C(docker save) tarballs of the manifest on this host, with their image ID and tags (only where present).
  returned: when O(state) is V(checked) or V(present)
  type: list
  elements: dict
  sample: [{path: /home/nvidia/data/images/vllm.tar, id: "sha256:4f3c...", tags: ["nvcr.io/nvidia/vllm:25.09-py3"]}]
verification:
  description: The verification (C(ok), C(missing), C(wrong_size), C(corrupt), C(links), C(hashed_bytes)).
  returned: when O(state) is V(present), or V(checked) with a stamp for this content
  type: dict
links_placed:
  description: V(present) the symlinks created or corrected.
  returned: when O(state=present)
  type: list
  elements: str
unpacked:
  description: V(present) the directories unpacked from packs.
  returned: when O(state=present)
  type: list
  elements: str
"""

import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm
from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_place as place


def problems(report):
    out = []
    for key, words in (("missing", "missing"), ("wrong_size", "of the wrong size"), ("corrupt", "with a wrong sha256"),
                       ("links", "links missing or pointing elsewhere")):
        if report[key]:
            shown = ", ".join(report[key][:5]) + (f" and {len(report[key]) - 5} more" if len(report[key]) > 5 else "")
            out.append(f"{len(report[key])} {'files ' + words if key != 'links' else words}: {shown}")
    return out


def stamp_matches(root, manifest, mode):
    """True if the stamp already says what write_stamp would write now (the time aside)."""
    old = cm.read_stamp(root)
    if old.get("content_id") != manifest["content_id"] or old.get("mode") != mode:
        return False
    for f in manifest["files"]:
        st = os.stat(os.path.join(root, f["path"]))
        if old.get("files", {}).get(f["path"]) != [st.st_size, st.st_mtime_ns, st.st_ino]:
            return False
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["loaded", "checked", "present"], default="checked"),
            manifest_path=dict(type="path"),
            manifest=dict(type="dict"),
            root=dict(type="path"),
            mode=dict(type="str", choices=["quick", "full"], default="quick"),
            organizer_address=dict(type="str"),
            owner=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    state = p["state"]
    result = {"changed": False, "python": place.python_info()}
    try:
        if p["manifest"] is not None:
            manifest = p["manifest"]
        elif p["manifest_path"]:
            manifest = cm.load(p["manifest_path"])
        else:
            module.fail_json(msg="give manifest_path or manifest")
        result.update(content_id=manifest["content_id"], total_bytes=manifest["total_bytes"])
        if state == "loaded":
            module.exit_json(manifest=manifest, **result)
        root = p["root"]
        if not root:
            module.fail_json(msg=f"state={state} needs root")
        if state == "checked":
            stamp = cm.read_stamp(root)
            result["stamp_content_id"] = stamp.get("content_id")
            up_to_date = False
            if stamp.get("content_id") == manifest["content_id"]:
                report = cm.verify(root, manifest, p["mode"])
                result["verification"] = report
                up_to_date = report["ok"] and not place.packs_to_unpack(root, manifest)
            result["up_to_date"] = up_to_date
            needed = 0 if up_to_date else cm.bytes_needed(root, manifest)
            if not up_to_date:
                needed += sum(f["size"] for f in place.packs_to_unpack(root, manifest))
            free, probe = place.free_space(root)
            result.update(bytes_needed=needed, free_bytes=free, disk_path=probe,
                          fleet_address=place.route_source(p["organizer_address"]))
            result["images"] = place.images(root, manifest) if up_to_date else []
            module.exit_json(**result)
        # present
        owner = None
        if p["owner"]:
            try:
                entry = pwd.getpwnam(p["owner"])
            except KeyError:
                module.fail_json(msg=f"owner {p['owner']!r} does not exist on this host")
            owner = (entry.pw_uid, entry.pw_gid)
        links = cm.place_links(root, manifest, check_mode=module.check_mode)
        empties = [f["path"] for f in manifest["files"] if f["size"] == 0 and not os.path.lexists(os.path.join(root, f["path"]))]
        if not module.check_mode:
            for rel in empties:
                full = os.path.join(root, rel)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb"):
                    pass
        report = cm.verify(root, manifest, p["mode"])
        if module.check_mode:
            report["links"] = [rel for rel in report["links"] if rel not in links]
            report["missing"] = [rel for rel in report["missing"] if rel not in empties]
            report["ok"] = not any(report[k] for k in ("missing", "wrong_size", "corrupt", "links"))
        result.update(verification=report, links_placed=links, unpacked=[])
        if not report["ok"]:
            module.fail_json(msg="the content does not match the manifest: " + "; ".join(problems(report))
                             + ". Run the distribution again: it fetches only the pieces that are missing or bad.", **result)
        todo = place.packs_to_unpack(root, manifest)
        result["unpacked"] = [place.pack_target(f["path"]) for f in todo]
        result["changed"] = bool(links or empties or todo)
        if not module.check_mode:
            for pack in todo:
                place.unpack(root, pack, owner)
            if not stamp_matches(root, manifest, p["mode"]):
                cm.write_stamp(root, manifest, p["mode"])
                result["changed"] = True
        elif not stamp_matches(root, manifest, p["mode"]):
            result["changed"] = True
        result["images"] = place.images(root, manifest)
    except cm.ManifestError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
