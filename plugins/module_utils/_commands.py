# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: run an external command with a time bound.
# Standard library only: this code runs on the units, which have no pip.

from __future__ import annotations

import collections
import os
import shlex
import signal
import subprocess
import time

# How long to wait for the output of a killed process group before giving up on it
# (a grandchild that left the group can hold the pipes open).
_DRAIN_SECONDS = 2


class CommandResult(collections.namedtuple("CommandResult", "rc stdout stderr timed_out elapsed argv")):
    """What run_bounded() saw: also a tuple (rc, stdout, stderr, timed_out, elapsed, argv).

    ``rc`` is None when the command timed out (it was killed), 127 when it could not be found and
    126 when it could not be started. ``elapsed`` is in seconds.
    """

    __slots__ = ()

    @property
    def command(self):
        """The command line as one would type it."""
        return shlex.join(str(a) for a in self.argv)

    @property
    def ok(self):
        return self.rc == 0 and not self.timed_out

    @property
    def output(self):
        """stdout then stderr, stripped."""
        return "\n".join(part.strip() for part in (self.stdout, self.stderr) if part.strip())

    def describe(self, timeout):
        """One line saying what happened, naming the command: for error messages and probe_errors."""
        if self.timed_out:
            return f"`{self.command}` did not answer within {format_seconds(timeout)} s (killed)"
        if self.rc == 0:
            return f"`{self.command}` succeeded"
        detail = self.output.splitlines()
        reason = f": {detail[-1] if self.rc in (126, 127) else detail[0]}" if detail else ""
        return f"`{self.command}` failed (rc {self.rc}){reason}"


def format_seconds(value):
    """30 -> '30', 2.5 -> '2.5': for messages."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def _environment(module):
    """The environment AnsibleModule.run_command would give the command."""
    env = os.environ.copy()
    env.update(getattr(module, "run_command_environ_update", None) or {})
    if "PYTHONPATH" in env:
        # Clean out the paths AnsiballZ set for the module itself, as run_command does.
        paths = [p for p in env["PYTHONPATH"].split(":") if p and not p.endswith(("/ansible_modlib.zip", "/debug_dir"))]
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
        else:
            del env["PYTHONPATH"]
    return env


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_bounded(module, argv, timeout, data=None, env_update=None):
    """Run ``argv`` (no shell) in a new session; kill its whole process group after ``timeout`` seconds.

    ``data`` (str or bytes) is sent to stdin as it is; without it stdin is /dev/null, so a command
    that prompts cannot wait for an answer. Output is decoded as UTF-8 (undecodable bytes replaced).
    Returns a CommandResult; never raises for a command that is missing, fails or hangs.
    ``module`` is the AnsibleModule (for its run_command environment) or None.
    """
    if timeout is None:
        raise ValueError("run_bounded needs a time bound")
    argv = [str(a) for a in argv]
    start = time.monotonic()
    if timeout <= 0:
        return CommandResult(None, "", "", True, 0.0, argv)
    env = _environment(module)
    env.update(env_update or {})
    if isinstance(data, str):
        data = data.encode("utf-8")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
            start_new_session=True,
        )
    except OSError as exc:
        rc = 127 if isinstance(exc, FileNotFoundError) else 126
        return CommandResult(rc, "", f"{argv[0]}: {exc.strerror or exc}", False, time.monotonic() - start, argv)

    timed_out = False
    try:
        out, err = proc.communicate(input=data, timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        try:
            out, err = proc.communicate(timeout=_DRAIN_SECONDS)
        except subprocess.TimeoutExpired:
            # Something outside the group still holds the pipes: give up on the output.
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
            out, err = b"", b""
            proc.wait()
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
    elapsed = time.monotonic() - start
    return CommandResult(
        None if timed_out else proc.returncode,
        (out or b"").decode("utf-8", "replace"),
        (err or b"").decode("utf-8", "replace"),
        timed_out,
        elapsed,
        argv,
    )
