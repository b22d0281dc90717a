from __future__ import annotations

import sys
import time

from ansible_collections.jetson_thor.workshop.plugins.module_utils._commands import format_seconds, run_bounded

PY = sys.executable


def test_output_and_rc():
    result = run_bounded(None, [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"], 10)
    rc, out, err, timed_out, elapsed, argv = result
    assert (rc, out, err, timed_out) == (3, "out\n", "err\n", False)
    assert result.ok is False
    assert elapsed < 10
    assert argv[0] == PY
    assert result.describe(10).startswith(f"`{PY} -c")
    assert "failed (rc 3): out" in result.describe(10)


def test_data_goes_to_stdin_and_stdin_is_closed_otherwise():
    echo = [PY, "-c", "import sys; print(sys.stdin.read().upper())"]
    assert run_bounded(None, echo, 10, data="no\n").stdout == "NO\n\n"
    # Without data a prompt reads end of file at once instead of waiting.
    assert run_bounded(None, echo, 10).stdout == "\n"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not reaped yet
    except OSError:
        return False


def test_timeout_kills_the_whole_process_group(tmp_path):
    marker = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{PY!r}, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(marker)!r}, 'w').write(str(child.pid))\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    start = time.monotonic()
    result = run_bounded(None, [PY, "-c", script], 1)
    assert time.monotonic() - start < 10
    assert result.timed_out is True
    assert result.rc is None
    assert result.stdout == "started\n"
    assert result.describe(1) == f"`{result.command}` did not answer within 1 s (killed)"
    grandchild = int(marker.read_text())
    for _attempt in range(50):
        if not _alive(grandchild):
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the grandchild survived the timeout")


def test_missing_command_is_a_result_not_an_exception(tmp_path):
    result = run_bounded(None, [str(tmp_path / "no-such-tool"), "-q"], 5)
    assert result.rc == 127
    assert result.timed_out is False
    assert "no-such-tool" in result.describe(5)


def test_no_time_left_runs_nothing(tmp_path):
    marker = tmp_path / "ran"
    result = run_bounded(None, [PY, "-c", f"open({str(marker)!r}, 'w')"], 0)
    assert result.timed_out is True
    assert not marker.exists()


def test_format_seconds():
    assert format_seconds(30) == "30"
    assert format_seconds(2.5) == "2.5"
    assert format_seconds(120.0) == "120"
