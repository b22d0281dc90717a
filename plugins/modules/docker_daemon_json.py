#!/usr/bin/python
# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_daemon_json
short_description: Merge runtimes, the default runtime and other settings into Docker's daemon.json
version_added: 0.1.0
description:
  - Reads Docker's C(daemon.json), sets the requested entries and writes the file back only when its content changes.
    Every key the module is not asked to set is kept with its value, and keys keep their order.
  - The comparison is semantic. A file that already holds the requested values is left alone even when its formatting
    differs from what the module would write.
  - A missing file (and missing parent directories) is created. An empty file counts as C({}).
  - A file that is not valid JSON, or whose top level is not an object, makes the module fail with the file's path, the
    parse error with its line and column, and how to fix it. Such a file is never written to.
  - The module does not restart Docker. Notify a handler when RV(changed) is true; dockerd reads the file only at start.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details: In check mode the module reads and merges, reports RV(changed) and the diff, and writes nothing.
  diff_mode:
    support: full
    details: The diff shows the file before and after, as text.
  idempotent:
    support: full
options:
  path:
    description:
      - Path of the daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  runtimes:
    description:
      - Runtimes to declare under C(runtimes), by name. Each named runtime's definition is set as a whole; runtimes not
        named here are kept.
      - 'The NVIDIA Container Toolkit''s entry is C({"nvidia": {"path": "nvidia-container-runtime", "args": []}}).'
    type: dict
  default_runtime:
    description:
      - Value for C(default-runtime). It must be a runtime declared in the resulting file or a runtime built into
        dockerd (C(runc), C(io.containerd.runc.v2)); otherwise the module fails, because dockerd would not start.
    type: str
  settings:
    description:
      - Further top-level keys to set, each value replaced as a whole (for example C(log-opts) or C(data-root)).
      - Use O(runtimes) and O(default_runtime) for those two keys; when both name the same key, those options win.
    type: dict
  backup:
    description:
      - Before rewriting an existing file, copy it next to itself with a timestamp in its name.
      - Defaults to V(true) (unlike most file modules), because a daemon.json that dockerd rejects takes Docker down.
    type: bool
    default: true
  indent:
    description:
      - Spaces of indentation in the written file (the workshop's file uses 4).
    type: int
    default: 4
  mode:
    description:
      - Permissions of a file the module creates. An existing file keeps its owner, group and mode.
    type: raw
    default: "0644"
notes:
  - dockerd itself rejects a C(daemon.json) with a syntax error at start. The module refuses to build on such a file, so a
    broken file stays broken until someone fixes it by hand; that keeps whatever else the file meant to say.
requirements:
  - Python 3 standard library on the managed host.
author:
  - jetson_thor.workshop maintainers
seealso:
  - name: Docker daemon configuration file
    description: Every key C(daemon.json) accepts.
    link: https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file
  - name: NVIDIA Container Toolkit, configuring Docker
    description: What C(nvidia-ctk runtime configure --set-as-default) writes.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html#configuring-docker
"""

EXAMPLES = r"""
- name: Declare the NVIDIA runtime and make it the default (the workshop's NVML fix)
  jetson_thor.workshop.docker_daemon_json:
    runtimes:
      nvidia:
        path: nvidia-container-runtime
        args: []
    default_runtime: nvidia
  notify: restart docker

- name: Also cap container logs, keeping everything else in the file
  jetson_thor.workshop.docker_daemon_json:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 50m
  notify: restart docker
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/docker/daemon.json
created:
  description: Whether the file did not exist (and was, or in check mode would be, created).
  returned: success
  type: bool
  sample: false
backup_file:
  description: The copy made before rewriting.
  returned: when the file was rewritten and O(backup=true)
  type: str
  sample: /etc/docker/daemon.json.4242.2025-10-28@09:15:01~
config:
  description: The configuration as it is after the module (in check mode, as it would be).
  returned: success
  type: dict
  sample: {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}, "default-runtime": "nvidia"}
error:
  description: Why the file could not be used; RV(error.line) and RV(error.column) locate a syntax error.
  returned: failure, when the file is not valid JSON or not a JSON object
  type: dict
  sample: {"reason": "Expecting ',' delimiter", "line": 7, "column": 5}
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._daemon_json import (
    DaemonJsonError,
    check_default_runtime,
    merge_daemon_json,
    parse_daemon_json,
    render_daemon_json,
)


def _fail_unusable(module, path, exc):
    where = f" at line {exc.line}, column {exc.column}" if exc.line is not None else ""
    module.fail_json(
        msg=(
            f"{path} is not usable as Docker's daemon configuration: {exc.message}{where}. "
            f"The file was left untouched. Fix it by hand (`python3 -m json.tool {path}` points at the error), "
            f"or move it aside so that it is created afresh; dockerd refuses to (re)start with the file as it is."
        ),
        path=path,
        error={"reason": exc.message, "line": exc.line, "column": exc.column},
    )


def _write(module, path, content, created):
    directory = os.path.dirname(path) or "."
    if created and not os.path.isdir(directory):
        os.makedirs(directory, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=".daemon.json.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        # atomic_move keeps an existing file's owner, group, mode and SELinux context.
        module.atomic_move(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    if created:
        module.set_mode_if_different(path, module.params["mode"], False)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/docker/daemon.json"),
            runtimes=dict(type="dict"),
            default_runtime=dict(type="str"),
            settings=dict(type="dict"),
            backup=dict(type="bool", default=True),
            indent=dict(type="int", default=4),
            mode=dict(type="raw", default="0644"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]

    if os.path.isdir(path):
        module.fail_json(msg=f"{path} is a directory; dockerd expects a JSON file there.", path=path)
    created = not os.path.exists(path)
    if created:
        before_text, current = "", {}
    else:
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            module.fail_json(msg=f"Cannot read {path}: {exc.strerror}.", path=path)
        before_text = raw.decode("utf-8", "replace")
        try:
            current = parse_daemon_json(raw)
        except DaemonJsonError as exc:
            _fail_unusable(module, path, exc)

    try:
        wanted = merge_daemon_json(current, params["runtimes"], params["default_runtime"], params["settings"])
    except DaemonJsonError as exc:
        _fail_unusable(module, path, exc)
    problem = check_default_runtime(wanted)
    if problem:
        module.fail_json(msg=f"Refusing to write {path}: {problem}.", path=path, config=wanted)

    changed = created or wanted != current
    after_text = render_daemon_json(wanted, params["indent"]) if changed else before_text
    result = {"changed": changed, "path": path, "created": created, "config": wanted}
    if module._diff:
        result["diff"] = {
            "before_header": path if not created else f"{path} (absent)",
            "after_header": path,
            "before": before_text,
            "after": after_text,
        }
    if changed and not module.check_mode:
        if params["backup"] and not created:
            result["backup_file"] = module.backup_local(path)
        _write(module, path, after_text, created)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
