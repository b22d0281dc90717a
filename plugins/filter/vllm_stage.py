# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# Filters for the serving stages (docs/serving.md); documented in the sidecar files stage_catalog.yml,
# vllm_serve_args.yml and vllm_failure_hint.yml next to this one.

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _vllm_stage as vs


def stage_catalog(builtin, extra=None):
    """The built-in stages plus workshop_stages_extra, each checked and completed; a name clash is an error."""
    try:
        return vs.catalog(list(builtin) if builtin is not None else [], list(extra) if extra else [])
    except vs.CatalogError as exc:
        raise AnsibleFilterError(f"stage catalog: {exc}") from None


def vllm_serve_args(stage, options=None):
    """The `vllm serve <model>` arguments after the model: the stage's args and the common serve options."""
    try:
        return vs.serve_args(dict(stage), dict(options or {}))
    except vs.CatalogError as exc:
        raise AnsibleFilterError(f"vllm_serve_args: {exc}") from None
    except KeyError as exc:
        raise AnsibleFilterError(f"vllm_serve_args: the stage has no {exc} (use an entry of workshop_stages)") from None


def vllm_failure_hint(text):
    """{'kind', 'hint', 'evidence'} for a failure's message or log lines; kind and hint are None when nothing matches."""
    kind, evidence = vs.classify(text if isinstance(text, list) else str(text or ""))
    return {"kind": kind, "hint": vs.hint(kind), "evidence": evidence}


class FilterModule:
    def filters(self):
        return {
            "stage_catalog": stage_catalog,
            "vllm_serve_args": vllm_serve_args,
            "vllm_failure_hint": vllm_failure_hint,
        }
