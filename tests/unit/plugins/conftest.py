"""Run a collection module in-process the way Ansible would, and capture its JSON result."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args


@pytest.fixture
def run_module(capsys):
    def _run(main, args):
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            main()
        result = json.loads(capsys.readouterr().out)
        result["_rc"] = exit_info.value.code
        return result

    return _run
