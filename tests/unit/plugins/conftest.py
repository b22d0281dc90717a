"""Run a collection module in-process the way Ansible would, and capture its JSON result."""

from __future__ import annotations

import contextlib
import json
from unittest import mock

import pytest
from ansible.module_utils import basic

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # ansible-core 2.17, 2.18: AnsibleModule reads its arguments from basic._ANSIBLE_ARGS

    @contextlib.contextmanager
    def patch_module_args(args=None):
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode()
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload):
            yield


@pytest.fixture
def run_module(capsys):
    def _run(main, args):
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            main()
        result = json.loads(capsys.readouterr().out)
        result["_rc"] = exit_info.value.code
        return result

    return _run
