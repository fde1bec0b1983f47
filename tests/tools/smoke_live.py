# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live check, read-only: do the collection's assumptions hold on your provider accounts?

    make smoke-live                      # or: python tests/tools/smoke_live.py [--json]

For every provider whose admin credential is in the environment it sends only GET
requests, through the collection's own clients: it lists the keys, finds the key in use
by its redacted hint (when that key is given), and probes it. It changes nothing and
prints ids, counts, hints and fingerprints, never a key value.

| provider   | admin credential (or ``*_FILE``)   | also read                                   | key in use (optional) |
|------------|------------------------------------|---------------------------------------------|-----------------------|
| anthropic  | ``ANTHROPIC_ADMIN_KEY``            | ``ANTHROPIC_WORKSPACE_ID``                  | ``ANTHROPIC_API_KEY`` |
| openai     | ``OPENAI_ADMIN_KEY``               | ``OPENAI_PROJECT_ID`` (required)            | ``OPENAI_API_KEY``    |
| openrouter | ``OPENROUTER_MANAGEMENT_KEY``      | ``OPENROUTER_WORKSPACE_ID``                 | ``OPENROUTER_API_KEY``|

``*_BASE_URL`` point a client elsewhere (the tests point them at the emulator).
Exit status: 0 every assumption holds, 1 one does not (or a call failed), 2 nothing to check.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError, fingerprint
from ansible_collections.apikeys.rotation.plugins.module_utils.providers import PROVIDER_NAMES, get_provider
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import hint_matches

KEY_IN_USE = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "openrouter": "OPENROUTER_API_KEY"}
ADMIN = {"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY", "openrouter": "OPENROUTER_MANAGEMENT_KEY"}
OPTIONS = {"openai_project_id": "OPENAI_PROJECT_ID", "anthropic_workspace_id": "ANTHROPIC_WORKSPACE_ID",
           "openrouter_workspace_id": "OPENROUTER_WORKSPACE_ID"}
FINAL = ("archived", "expired", "deleted")


class Report:
    """The findings for one provider: each a (result, what, detail), result ok|warn|fail."""

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.findings: t.List[t.Tuple[str, str, str]] = []

    def add(self, result: str, what: str, detail: str) -> None:
        self.findings.append((result, what, detail))

    @property
    def holds(self) -> bool:
        return all(result != "fail" for result, _what, _detail in self.findings)


def configured(provider: str, environ: t.Mapping[str, str]) -> bool:
    return bool(environ.get(ADMIN[provider]) or environ.get(ADMIN[provider] + "_FILE"))


def check(provider_name: str, environ: t.Mapping[str, str]) -> Report:
    report = Report(provider_name)
    params: t.Dict[str, t.Any] = {"provider": provider_name, "retries": 2}
    params.update({option: environ.get(env) for option, env in OPTIONS.items() if environ.get(env)})
    key_in_use = (environ.get(KEY_IN_USE[provider_name]) or "").strip() or None
    try:
        provider = get_provider(params, environ)
    except RotationError as exc:
        report.add("fail", "settings", str(exc))
        return report
    try:
        run_checks(provider, report, key_in_use)
    except RotationError as exc:
        report.add("fail", "admin API", str(exc))
    finally:
        provider.close()
    return report


def run_checks(provider: t.Any, report: Report, key_in_use: t.Optional[str]) -> None:
    listed = provider.find()
    usable = [r for r in listed if r.status not in FINAL]
    report.add("ok", "list keys", "%d keys listed, %d usable" % (len(listed), len(usable)))
    if provider.name == "openai":
        # the collection sends owner_project_access=any: say how many keys the default visibility would miss
        resp = provider.admin("GET", "/organization/projects/%s/api_keys" % provider.options.get("openai_project_id"),
                              "listing API keys with the default visibility", params={"limit": 100})
        default_ids = {item.get("id") for item in (resp.body or {}).get("data") or []}
        missed = [r.id for r in listed if r.id not in default_ids]
        report.add("ok" if not missed else "warn", "list visibility",
                   "%d keys are listed only with owner_project_access=any (%s); the collection sends it"
                   % (len(missed), ", ".join(missed[:5]) or "none"))
        own = [r for r in listed if r.extra.get("service_account_id")]
        report.add("ok", "service accounts", "%d of %d keys belong to a service account: revoking such a key "
                   "deletes its account when the key is its only one, else OpenAI may refuse" % (len(own), len(listed)))
    if provider.name == "openrouter":
        where = provider.options.get("openrouter_workspace_id")
        report.add("ok", "list visibility", "keys of %s only (set OPENROUTER_WORKSPACE_ID / openrouter_workspace_id "
                   "for another workspace)" % ("workspace " + where if where else "the default workspace"))
    hintless = [r.id for r in usable if not r.redacted_hint]
    adopt = (": adopt them with current_key_id (%s)" % ", ".join(hintless[:5])) if hintless else ""
    report.add("ok" if not hintless else "warn", "redacted hints", "%d usable keys have no hint%s" % (len(hintless), adopt))
    if key_in_use is None:
        report.add("warn", "key in use", "not given (%s): hint match and probe skipped" % KEY_IN_USE[provider.name])
        return
    try:
        key_in_use = provider.validate_key(key_in_use, KEY_IN_USE[provider.name])
    except RotationError as exc:
        report.add("fail", "key in use", str(exc))
        return
    fp = fingerprint(key_in_use)
    matches = [r.id for r in usable if hint_matches(r.redacted_hint, key_in_use)]
    if len(matches) == 1:
        report.add("ok", "find by hint", "the key in use (%s) is %s" % (fp, matches[0]))
    else:
        report.add("fail", "find by hint", "%d listed keys match the hint of the key in use (%s)%s: set "
                   "current_key_id for it" % (len(matches), fp, " (%s)" % ", ".join(matches) if matches else ""))
    probe = provider.probe(key_in_use)
    if probe.live and probe.restricted:
        report.add("warn", "probe", "authenticated but restricted (code %s): the rotation counts it as live" % probe.code)
    elif probe.live:
        report.add("ok", "probe", "live (HTTP %s, %s ms)" % (probe.status, probe.latency_ms))
    else:
        report.add("fail", "probe", "%s (code %s)" % (probe.reason, probe.code))


def render(reports: t.Sequence[Report]) -> str:
    rows = [("provider", "result", "check", "detail")]
    for report in reports:
        rows.extend((report.provider, result, what, detail) for result, what, detail in report.findings)
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths) + "  ------")
    verdict = ["%s: %s" % (r.provider, "assumptions hold" if r.holds else "an assumption does NOT hold")
               for r in reports]
    return "\n".join(lines + [""] + verdict)


def main(argv: t.Optional[t.Sequence[str]] = None, environ: t.Optional[t.Mapping[str, str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Read-only live check of the provider accounts.")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    args = parser.parse_args(argv)
    env = os.environ if environ is None else environ
    names = [name for name in PROVIDER_NAMES if configured(name, env)]
    if not names:
        sys.stderr.write("smoke-live: no admin credential in the environment (%s): nothing to check\n"
                         % ", ".join(ADMIN[n] for n in PROVIDER_NAMES))
        return 2
    reports = [check(name, env) for name in names]
    if args.json:
        findings = {r.provider: {"holds": r.holds,
                                 "findings": [dict(zip(("result", "check", "detail"), f)) for f in r.findings]}
                    for r in reports}
        print(json.dumps(findings, indent=2))
    else:
        print(render(reports))
    return 0 if all(r.holds for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
