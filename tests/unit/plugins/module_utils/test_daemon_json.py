from __future__ import annotations

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _daemon_json as dj

NVIDIA = {"nvidia": {"args": [], "path": "nvidia-container-runtime"}}


@pytest.mark.parametrize(("text", "config"), [("", {}), ("  \n", {}), ("{}", {}), ('{"a": 1}', {"a": 1})])
def test_parse_valid(text, config):
    assert dj.parse_daemon_json(text) == config
    assert dj.parse_daemon_json(text.encode()) == config


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [('{\n  "a": 1\n  "b": 2\n}', 3, 3), ("{'a': 1}", 1, 2), ('{"a": 1}}', 1, 9), ("{", 1, 2)],
)
def test_parse_errors_carry_line_and_column(text, line, column):
    with pytest.raises(dj.DaemonJsonError) as info:
        dj.parse_daemon_json(text)
    assert (info.value.line, info.value.column) == (line, column)


def test_merge_does_not_touch_its_input():
    current = {"runtimes": {"crun": {"path": "crun"}}, "debug": True}
    merged = dj.merge_daemon_json(current, NVIDIA, "nvidia")
    assert current == {"runtimes": {"crun": {"path": "crun"}}, "debug": True}
    assert merged == {"runtimes": {"crun": {"path": "crun"}, **NVIDIA}, "debug": True, "default-runtime": "nvidia"}


def test_merge_with_nothing_requested_is_identity():
    current = {"x": [1, 2], "default-runtime": "runc"}
    assert dj.merge_daemon_json(current) == current


@pytest.mark.parametrize(
    ("config", "ok"),
    [
        ({}, True),
        ({"default-runtime": "runc"}, True),
        ({"default-runtime": "io.containerd.runc.v2"}, True),
        ({"default-runtime": "nvidia", "runtimes": NVIDIA}, True),
        ({"default-runtime": "nvidia"}, False),
        ({"default-runtime": "nvidia", "runtimes": {"crun": {}}}, False),
    ],
)
def test_check_default_runtime(config, ok):
    assert (dj.check_default_runtime(config) is None) is ok


def test_render_is_stable_and_ends_with_newline():
    text = dj.render_daemon_json({"runtimes": NVIDIA, "default-runtime": "nvidia"})
    assert text.endswith("}\n")
    assert dj.parse_daemon_json(text) == {"runtimes": NVIDIA, "default-runtime": "nvidia"}
    assert dj.render_daemon_json(dj.parse_daemon_json(text)) == text
