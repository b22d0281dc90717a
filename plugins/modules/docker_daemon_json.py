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
  - When O(path) is a symbolic link, the module reads and rewrites the file the link points to (RV(target)); the link
    stays in place and the backup is made of the target.
  - A file that is not valid JSON, or whose top level is not an object, makes the module fail with the file's path, the
    parse error with its line and column, and how to fix it. Such a file is never written to.
  - Before writing, the new content is given to C(dockerd --validate) when the installed dockerd has it (Docker 23.0
    and later; see O(validate_with_dockerd)). A file dockerd rejects makes the module fail with dockerd's message, and
    nothing is written.
  - A write that fails leaves the file as it was and no backup behind.
  - The result is bounded in size whatever the size of the file. It reports the entries the module set (RV(managed)),
    the default runtime, the declared runtimes and the top-level keys, not the whole configuration; the diff shows the
    file's text only up to 64 KiB per side.
  - The module does not restart Docker. Notify a handler when C(changed) is true; dockerd reads the file only at start.
extends_documentation_fragment:
  - jetson_thor.workshop._attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode the module reads and merges, validates with dockerd, reports C(changed) and the diff, and writes
        nothing.
  diff_mode:
    support: full
    details: The diff shows the file before and after, as text (a one-line summary for a side larger than 64 KiB).
  idempotent:
    support: full
options:
  path:
    description:
      - Path of the daemon configuration file. A symbolic link is followed (see RV(target)).
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
      - An octal string (V("0644")), an integer (C(0644) in YAML, which is V(420)) or a symbolic mode
        (V(u=rw,g=r,o=r)). Any other value makes the module fail before it reads or writes anything.
    type: raw
    default: "0644"
  validate_with_dockerd:
    description:
      - Whether to have dockerd check the new content (C(dockerd --validate --config-file)) before it is written.
        The content goes to a file in a private temporary directory; dockerd only reads it. It runs only when there is a
        change to write, in check mode too.
      - V(auto) validates when C(dockerd) is found and its version (C(dockerd --version)) is 23 or later, and otherwise
        says why it did not in RV(validation.skipped_reason).
      - V(always) fails when dockerd cannot validate (not found, older than 23, no answer within O(timeout)).
      - V(never) does not run dockerd.
    type: str
    choices: [auto, always, never]
    default: auto
    version_added: 0.2.0
  timeout:
    description:
      - Seconds each dockerd command (C(dockerd --version), C(dockerd --validate)) may take before it is killed.
    type: int
    default: 30
    version_added: 0.2.0
notes:
  - dockerd itself rejects a C(daemon.json) with a syntax error at start. The module refuses to build on such a file, so a
    broken file stays broken until someone fixes it by hand; that keeps whatever else the file meant to say.
  - C(dockerd --validate) checks the file on its own. It cannot see a conflict with flags the service passes to dockerd
    (for example C(hosts) in the file and C(-H) in the systemd unit); such a file still stops dockerd at start.
requirements:
  - Python 3 standard library on the managed host.
  - For validation, C(dockerd) 23.0 or later on the managed host.
author:
  - jetson_thor.workshop maintainers (!UNKNOWN)
seealso:
  - module: jetson_thor.workshop.docker_restart
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
  register: __daemon_json
  notify: restart docker

- name: Say when dockerd could not check the new file itself
  ansible.builtin.debug:
    msg: "{{ __daemon_json.validation.skipped_reason }}"
  when: __daemon_json is changed and __daemon_json.validation.skipped_reason is not none

- name: Also cap container logs, keeping everything else in the file; insist on dockerd's own check
  jetson_thor.workshop.docker_daemon_json:
    settings:
      log-driver: json-file
      log-opts:
        max-size: 50m
    validate_with_dockerd: always
    timeout: 20
  notify: restart docker
"""

RETURN = r"""
path:
  description: The file, as given in O(path).
  returned: always
  type: str
  sample: /etc/docker/daemon.json
target:
  description: The file read and written. O(path) itself, or the file it points to when O(path) is a symbolic link.
  returned: success
  type: str
  sample: /etc/docker/daemon.json
  version_added: 0.2.0
created:
  description: Whether the file did not exist (and was, or in check mode would be, created).
  returned: success
  type: bool
  sample: false
backup_file:
  description: The copy of RV(target) made before rewriting it.
  returned: when the file was rewritten and O(backup=true)
  type: str
  sample: /etc/docker/daemon.json.4242.2025-10-28@09:15:01~
default_runtime:
  description: The C(default-runtime) after the module (in check mode, as it would be), or V(null) when the file sets none.
  returned: success
  type: str
  sample: nvidia
  version_added: 0.2.0
runtimes:
  description: The names of the runtimes the file declares after the module, sorted (built-in runtimes are not listed).
  returned: success
  type: list
  elements: str
  sample: [nvidia]
  version_added: 0.2.0
managed:
  description:
    - Only the entries this call set, with their values after the module. C(runtimes) holds only the runtimes named in
      O(runtimes); keys from O(settings) appear with their values; C(default-runtime) appears when O(default_runtime) is set.
  returned: success
  type: dict
  sample: {"runtimes": {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}, "default-runtime": "nvidia"}
  version_added: 0.2.0
keys:
  description: The file's top-level keys after the module, in their order.
  returned: success
  type: list
  elements: str
  sample: [log-driver, runtimes, default-runtime]
  version_added: 0.2.0
validation:
  description: What dockerd said about the new content.
  returned: success, and on failure when dockerd rejected the content
  type: dict
  version_added: 0.2.0
  sample: {"by": "dockerd 28.2.2", "ok": true, "skipped_reason": null, "output": "configuration OK"}
  contains:
    by:
      description: The dockerd that validated, or V(null) when none did.
      type: str
      sample: dockerd 28.2.2
    ok:
      description: Whether dockerd accepted the content; V(null) when it was not asked.
      type: bool
      sample: true
    skipped_reason:
      description:
        - Why dockerd was not asked, or V(null) when it was. For example C(dockerd 20.10.24 has no --validate (Docker 23 and
          later)), C(dockerd not found), C(no change to write) or C(validate_with_dockerd is never).
      type: str
      sample: null
    output:
      description: dockerd's message, or V(null) when it was not asked.
      type: str
      sample: configuration OK
error:
  description: Why the file could not be used; RV(error.line) and RV(error.column) locate a syntax error.
  returned: failure, when the file is not valid JSON or not a JSON object
  type: dict
  sample: {"reason": "Expecting ',' delimiter", "line": 7, "column": 5}
  contains:
    reason:
      description: The parse error.
      type: str
      sample: Expecting ',' delimiter
    line:
      description: Line of a syntax error, or V(null).
      type: int
      sample: 7
    column:
      description: Column of a syntax error, or V(null).
      type: int
      sample: 5
"""

import hashlib
import os
import re
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import format_seconds, run_bounded
from ansible_collections.jetson_thor.workshop.plugins.module_utils._daemon_json import (
    DaemonJsonError,
    check_default_runtime,
    merge_daemon_json,
    parse_daemon_json,
    render_daemon_json,
)

# Largest side of the diff shown as text; a larger side is summarised (size and sha256).
DIFF_LIMIT = 64 * 1024
# dockerd has --validate from Docker 23.0 on.
VALIDATE_MIN_MAJOR = 23
_DOCKERD_DIRS = ["/usr/bin", "/usr/sbin", "/sbin"]
_VERSION_RE = re.compile(r"version\s+v?(\d+)\.(\d+)(?:\.(\d+))?", re.IGNORECASE)
_OCTAL_RE = re.compile(r"^(?:0o?)?[0-7]{3,4}$")
_SYMBOLIC_RE = re.compile(r"^[ugoa]*(?:[-+=](?:[rwxXst]*|[ugo]))+$")
_MODE_FORMS = 'an octal string such as "0644", an integer (0644 in YAML, which is 420) or a symbolic mode such as "u=rw,g=r,o=r"'


def _check_mode_option(module, value):
    """Fail unless ``value`` is a file mode set_mode_if_different will take."""
    if value is None:
        return
    good = False
    if isinstance(value, int) and not isinstance(value, bool):
        good = 0 <= value <= 0o7777
    elif isinstance(value, str):
        if _OCTAL_RE.match(value):
            good = True
        elif value and all(_SYMBOLIC_RE.match(clause) for clause in value.split(",")):
            try:
                # The same conversion set_mode_if_different makes, on a plain 0644 file.
                fake = os.stat_result((stat.S_IFREG | 0o644, 0, 0, 1, 0, 0, 0, 0, 0, 0))
                good = 0 <= module._symbolic_mode_to_octal(fake, value) <= 0o7777
            except Exception:
                good = False
    if not good:
        module.fail_json(
            msg=f"mode {value!r} is not a file mode. Use {_MODE_FORMS}. Nothing was read or written.",
            path=module.params["path"],
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


def _cause(exc):
    """The exception's message and those of its causes, in one line."""
    parts = []
    while exc is not None and len(parts) < 5:
        text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        parts.append(text.rstrip(".") or type(exc).__name__)
        exc = exc.__cause__
    return ": ".join(parts)


def _diff_side(text):
    data = text.encode("utf-8")
    return data, len(data)


def _diff(path, target, created, before_text, after_text):
    before, before_size = _diff_side(before_text)
    after, after_size = _diff_side(after_text)
    name = path if target == path else f"{path} -> {target}"
    diff = {"before_header": name if not created else f"{name} (absent)", "after_header": name}
    if before_size <= DIFF_LIMIT and after_size <= DIFF_LIMIT:
        diff.update(before=before_text, after=after_text)
        return diff
    for side, data, size in (("before", before, before_size), ("after", after, after_size)):
        diff[side] = (
            f"({size} bytes, sha256 {hashlib.sha256(data).hexdigest()}; "
            f"not shown, the diff shows up to {DIFF_LIMIT} bytes per side)\n"
        )
    return diff


def _validation(by=None, ok=None, skipped_reason=None, output=None):
    return {"by": by, "ok": ok, "skipped_reason": skipped_reason, "output": output}


def _validate(module, content):
    """Ask dockerd about ``content``; return the validation dict (never fails the module itself)."""
    how, timeout = module.params["validate_with_dockerd"], module.params["timeout"]
    if how == "never":
        return _validation(skipped_reason="validate_with_dockerd is never")
    dockerd = module.get_bin_path("dockerd", opt_dirs=_DOCKERD_DIRS)
    if dockerd is None:
        return _validation(skipped_reason="dockerd not found")
    answer = run_bounded(module, [dockerd, "--version"], timeout)
    if not answer.ok:
        return _validation(skipped_reason=f"could not read the dockerd version: {answer.describe(timeout)}")
    match = _VERSION_RE.search(answer.stdout)
    if not match:
        first = (answer.output.splitlines() or [""])[0]
        return _validation(skipped_reason=f"could not read the dockerd version from `dockerd --version`: {first!r}")
    version = ".".join(g for g in match.groups() if g is not None)
    if int(match.group(1)) < VALIDATE_MIN_MAJOR:
        return _validation(skipped_reason=f"dockerd {version} has no --validate (Docker {VALIDATE_MIN_MAJOR} and later)")
    private = tempfile.mkdtemp(prefix="docker_daemon_json.")
    try:
        candidate = os.path.join(private, "daemon.json")
        with open(candidate, "wb") as handle:
            handle.write(content.encode("utf-8"))
        result = run_bounded(module, [dockerd, "--validate", "--config-file", candidate], timeout)
    finally:
        shutil.rmtree(private, ignore_errors=True)
    output = result.output.replace(candidate, "<new daemon.json>")
    if result.timed_out:
        return _validation(skipped_reason=f"dockerd --validate did not answer within {format_seconds(timeout)} s", output=output)
    if result.rc != 0 and re.search(r"unknown (flag|option).*validate", output):
        return _validation(skipped_reason=f"dockerd {version} has no --validate", output=output)
    return _validation(by=f"dockerd {version}", ok=result.rc == 0, output=output)


def _write(module, target, content, created):
    """Write ``content`` to ``target`` atomically; return the backup's path or None.

    A failure leaves ``target`` as it was and removes the backup just made (fail_json cleans up
    the files registered with add_cleanup_file, also when atomic_move itself fails the module).
    """
    directory = os.path.dirname(target) or "."
    backup_file = None
    try:
        if created and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        if module.params["backup"] and not created:
            backup_file = module.backup_local(target)
            module.add_cleanup_file(backup_file)
        fd, tmp = tempfile.mkstemp(prefix=".daemon.json.", dir=directory)
        module.add_cleanup_file(tmp)
        with os.fdopen(fd, "wb") as handle:
            handle.write(content.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        # atomic_move keeps an existing file's owner, group, mode and SELinux context.
        module.atomic_move(tmp, target)
    except Exception as exc:
        msg = f"Could not write {target}: {_cause(exc)}."
        if not created:
            msg += " The file was left as it was and no backup was kept."
        module.fail_json(msg=msg, path=module.params["path"], target=target)
    if backup_file:
        module.cleanup_files.remove(backup_file)
    if created:
        module.set_mode_if_different(target, module.params["mode"], False)
    return backup_file


def _summary(wanted, params):
    """The bounded part of the result: what the call set and the shape of the file after."""
    declared = wanted.get("runtimes")
    managed = {}
    for key in params["settings"] or {}:
        managed[key] = wanted[key]
    if params["runtimes"] and "runtimes" not in managed:
        managed["runtimes"] = {name: declared[name] for name in params["runtimes"]}
    if params["default_runtime"]:
        managed["default-runtime"] = wanted["default-runtime"]
    return {
        "default_runtime": wanted.get("default-runtime"),
        "runtimes": sorted(declared) if isinstance(declared, dict) else [],
        "managed": managed,
        "keys": list(wanted),
    }


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
            validate_with_dockerd=dict(type="str", choices=["auto", "always", "never"], default="auto"),
            timeout=dict(type="int", default=30),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params["path"]
    _check_mode_option(module, params["mode"])
    if params["timeout"] < 1:
        module.fail_json(msg=f"timeout must be at least 1 second, got {params['timeout']}.", path=path)

    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.islink(target):
        module.fail_json(msg=f"{path} is a symbolic link that does not resolve (a loop?).", path=path)
    if os.path.isdir(target):
        module.fail_json(msg=f"{target} is a directory; dockerd expects a JSON file there.", path=path, target=target)
    created = not os.path.exists(target)
    if created:
        before_text, current = "", {}
    else:
        try:
            with open(target, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            module.fail_json(msg=f"Cannot read {target}: {exc.strerror}.", path=path, target=target)
        before_text = raw.decode("utf-8", "replace")
        try:
            current = parse_daemon_json(raw)
        except DaemonJsonError as exc:
            _fail_unusable(module, target, exc)

    try:
        wanted = merge_daemon_json(current, params["runtimes"], params["default_runtime"], params["settings"])
    except DaemonJsonError as exc:
        _fail_unusable(module, target, exc)
    summary = _summary(wanted, params)
    problem = check_default_runtime(wanted)
    if problem:
        module.fail_json(
            msg=f"Refusing to write {target}: {problem}.",
            path=path,
            target=target,
            default_runtime=summary["default_runtime"],
            runtimes=summary["runtimes"],
        )

    changed = created or wanted != current
    after_text = render_daemon_json(wanted, params["indent"]) if changed else before_text
    result = {"changed": changed, "path": path, "target": target, "created": created, **summary}

    if changed:
        validation = _validate(module, after_text)
        if validation["ok"] is False:
            module.fail_json(
                msg=f"dockerd rejects the new content for {target}; nothing was written. dockerd said: {validation['output']}",
                path=path,
                target=target,
                validation=validation,
            )
        if validation["ok"] is None and params["validate_with_dockerd"] == "always":
            module.fail_json(
                msg=(
                    f"validate_with_dockerd is always, but dockerd could not validate the new content for {target}: "
                    f"{validation['skipped_reason']}. Nothing was written."
                ),
                path=path,
                target=target,
                validation=validation,
            )
    else:
        validation = _validation(skipped_reason="no change to write")
    result["validation"] = validation

    if module._diff:
        result["diff"] = _diff(path, target, created, before_text, after_text)
    if changed and not module.check_mode:
        backup_file = _write(module, target, after_text, created)
        if backup_file:
            result["backup_file"] = backup_file
    module.exit_json(**result)


if __name__ == "__main__":
    main()
