# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: render the fleet summary the fleet_status callback builds (controller side).

from __future__ import annotations

# Statuses that count as ready: the unit went through every play of the run that targeted it, without a failure.
READY_STATUSES = ("converged", "changed", "would change")

# (key in a unit's details, column title) in table order; the summary play sends these with set_stats.
DETAIL_COLUMNS = (
    ("l4t", "L4T"),
    ("power_mode", "power mode"),
    ("clocks_pinned", "clocks pinned"),
    ("default_runtime", "default runtime"),
    ("runtime_verified", "verified"),
    ("memory", "unified memory"),
    ("memory_rungs", "memory remediation"),
    ("disk_free_gib", "disk free GiB"),
    ("stage", "stage"),
    ("stage_ready", "stage ready"),
    ("startup", "start-up"),
    ("stage_hint", "stage hint"),
)


def _cell(value):
    if value is None or value == "":
        return "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def headline(summary):
    simulated = sum(1 for row in summary["units"] if row["details"].get("simulated") is True)
    if summary["check_mode"]:
        parts = [
            f"{summary['ready']} of {summary['total']} units would be ready.",
            "Check mode: nothing was changed; 'would change' is a prediction.",
        ]
    else:
        parts = [f"{summary['ready']} of {summary['total']} units ready."]
    if summary["stopped_early"]:
        parts.append(f"The run stopped early, in play '{summary['plays_run'][-1]}'.")
    if simulated:
        parts.append(f"Simulated twin units: {simulated} (their numbers are simulated, not Thor measurements).")
    if not summary["details_recorded"]:
        parts.append("No unit details: the summary play did not run in this run.")
    return " ".join(parts)


def render_markdown(summary):
    titles = ["unit", "status", "what happened"] + [title for _key, title in DETAIL_COLUMNS]
    lines = [
        "# Fleet summary",
        "",
        headline(summary),
        "",
        "| " + " | ".join(titles) + " |",
        "|" + "---|" * len(titles),
    ]
    for row in summary["units"]:
        cells = [row["unit"], row["status"], row["what_happened"]]
        cells += [row["details"].get(key) for key, _title in DETAIL_COLUMNS]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if summary["rerun"]:
        lines += ["", "Re-run only the units that are not ready:", "", "```sh", summary["rerun"], "```"]
    return "\n".join(lines) + "\n"


def render_console(summary):
    width = max([len(row["unit"]) for row in summary["units"]] + [4])
    status_width = max([len(row["status"]) for row in summary["units"]] + [6])
    lines = ["", "FLEET SUMMARY " + "*" * 60, headline(summary)]
    for row in summary["units"]:
        details = row["details"]
        extra = []
        if details:
            extra.append(f"L4T {_cell(details.get('l4t'))}, runtime {_cell(details.get('default_runtime'))}")
            if details.get("memory"):
                extra.append(f"memory {details['memory']}")
            if details.get("stage"):
                ready = {True: " ready", False: " not ready"}.get(details.get("stage_ready"), "")
                startup = f" ({details['startup']})" if details.get("startup") else ""
                extra.append(f"stage {details['stage']}{ready}{startup}")
        tail = f" [{'; '.join(extra)}]" if extra else ""
        lines.append(f"{row['unit']:<{width}}  {row['status']:<{status_width}}  {row['what_happened']}{tail}")
    if summary["rerun"]:
        lines += ["", "Re-run only the units that are not ready:", "  " + summary["rerun"]]
    return "\n".join(lines)
