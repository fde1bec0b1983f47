# Copyright: (c) 2026, apikeys.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the playbooks show a person: the fleet's status and the closing table of a run (plugins/plugin_utils/report.py)."""

from __future__ import annotations

import typing as t

from ansible.errors import AnsibleFilterError

from ansible_collections.apikeys.rotation.plugins.plugin_utils import report


def status_row(facts: t.Mapping[str, t.Any], host: str, now: t.Any) -> t.Dict[str, t.Any]:
    return report.status_row(str(host), facts or {}, float(now))


def console_key_wait(age_seconds: t.Any, max_age_seconds: t.Any, wait_seconds: t.Any, now: t.Any) -> t.Dict[str, t.Any]:
    return report.console_key_wait(float(age_seconds or 0), float(max_age_seconds or 0), float(wait_seconds or 0), float(now))


def facts_of(hosts: t.Sequence[str], hostvars: t.Mapping[str, t.Any], name: str, field: str = "") -> t.Dict[str, t.Any]:
    """``{host: hostvars[host][name]}`` (or its ``field``) for every host, None where the fact is not set (its run failed first)."""
    found: t.Dict[str, t.Any] = {}
    for host in hosts:
        try:
            value = hostvars[host].get(name)
        except KeyError:
            value = None
        if field:
            value = value.get(field) if isinstance(value, t.Mapping) else None
        found[host] = value
    return found


def status_lines(rows: t.Mapping[str, t.Any]) -> t.List[str]:
    return report.status_lines(_rows(rows))


def status_report(rows: t.Mapping[str, t.Any], path: str, generated_at: str) -> str:
    return report.status_report(_rows(rows), str(path), str(generated_at))


def closing_lines(entries: t.Mapping[str, t.Any], kind: str) -> t.List[str]:
    if kind not in report.CLOSING:
        raise AnsibleFilterError("closing_lines: kind must be one of %s, not %s" % (", ".join(report.CLOSING), kind))
    return report.closing_lines(kind, dict(entries or {}))


def _rows(rows: t.Mapping[str, t.Any]) -> t.List[t.Mapping[str, t.Any]]:
    """Status rows in host order; a key whose status could not be read gets a failed row."""
    out = []
    for host, row in (rows or {}).items():
        out.append(row if row else {"key": host, "state": "failed", "live": None, "next_action": "fix: see its error above",
                                    "last_failure": "its status could not be read (see its error above)"})
    return out


class FilterModule:
    """The status view and the closing tables."""

    def filters(self) -> t.Dict[str, t.Callable[..., t.Any]]:
        return {
            "status_row": status_row,
            "console_key_wait": console_key_wait,
            "facts_of": facts_of,
            "status_lines": status_lines,
            "status_report": status_report,
            "closing_lines": closing_lines,
        }
