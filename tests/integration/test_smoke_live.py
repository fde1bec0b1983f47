# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""`make smoke-live` against the emulator: read-only, a verdict per provider, no secret printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import assert_no_secret
from harness import REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "tests", "tools", "smoke_live.py")


def run(env_extra, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_ADMIN_KEY", "_MANAGEMENT_KEY", "_API_KEY", "_BASE_URL"))}
    env.update(env_extra)
    proc = subprocess.run([sys.executable, SCRIPT] + list(args), env=env, capture_output=True, text=True, timeout=120,
                          check=False)
    return proc.returncode, proc.stdout + proc.stderr


def seed(emulator, provider, kind="api", **extra):
    body = {"provider": provider, "kind": kind}
    body.update(extra)
    return emulator.control("POST", "keys", body)


def test_smoke_live_reads_only_and_reports_each_assumption(emulator):
    admins = {p: seed(emulator, p, "admin")["value"] for p in ("anthropic", "openai", "openrouter")}
    anthropic = seed(emulator, "anthropic", name="in use")
    seed(emulator, "anthropic", name="hintless", no_hint=True)
    openai = seed(emulator, "openai", name="in use")
    seed(emulator, "openai", name="hidden", project_id=openai["project_id"], owner_project_access="inactive")
    openrouter = seed(emulator, "openrouter", name="in use")
    env = {"ANTHROPIC_ADMIN_KEY": admins["anthropic"], "ANTHROPIC_API_KEY": anthropic["value"],
           "OPENAI_ADMIN_KEY": admins["openai"], "OPENAI_PROJECT_ID": openai["project_id"],
           "OPENAI_API_KEY": openai["value"],
           "OPENROUTER_MANAGEMENT_KEY": admins["openrouter"], "OPENROUTER_API_KEY": openrouter["value"]}
    env.update({p.upper() + "_BASE_URL": emulator.base_url(p) for p in admins})
    before = emulator.control("GET", "state")
    emulator.control("DELETE", "hits")
    rc, out = run(env, "--json")
    assert rc == 0, out
    report = json.loads(out)
    assert {p: report[p]["holds"] for p in report} == {"anthropic": True, "openai": True, "openrouter": True}
    checks = {p: {f["check"]: f for f in report[p]["findings"]} for p in report}
    for provider, key in (("anthropic", anthropic), ("openai", openai), ("openrouter", openrouter)):
        assert checks[provider]["find by hint"]["result"] == "ok" and key["id"] in checks[provider]["find by hint"]["detail"]
        assert checks[provider]["probe"]["result"] == "ok"
    assert checks["openai"]["list visibility"]["result"] == "warn"
    assert "1 keys are listed only with owner_project_access=any" in checks["openai"]["list visibility"]["detail"]
    assert checks["anthropic"]["redacted hints"]["result"] == "warn"
    # read-only: only GETs, and the state is as it was
    methods = {r["method"] for r in emulator.control("GET", "hits")["requests"]}
    assert methods == {"GET"}
    after = emulator.control("GET", "state")
    for provider in ("anthropic", "openai", "openrouter"):
        assert [(k["id"], k["status"], k["name"]) for k in after[provider]["keys"]] == \
            [(k["id"], k["status"], k["name"]) for k in before[provider]["keys"]]
    assert_no_secret(out, *admins.values(), anthropic["value"], openai["value"], openrouter["value"])
    # the table form says the same for a person
    rc, table = run(env)
    assert rc == 0 and "openai: assumptions hold" in table
    assert_no_secret(table, *admins.values(), anthropic["value"], openai["value"], openrouter["value"])


def test_smoke_live_fails_when_an_assumption_does_not_hold(emulator):
    admin = seed(emulator, "anthropic", "admin")["value"]
    hintless = seed(emulator, "anthropic", name="in use", no_hint=True)
    env = {"ANTHROPIC_ADMIN_KEY": admin, "ANTHROPIC_API_KEY": hintless["value"],
           "ANTHROPIC_BASE_URL": emulator.base_url("anthropic")}
    rc, out = run(env)
    assert rc == 1, out
    assert "0 listed keys match the hint of the key in use" in out and "current_key_id" in out
    assert "anthropic: an assumption does NOT hold" in out
    assert_no_secret(out, admin, hintless["value"])
    rc, out = run({})
    assert rc == 2 and "nothing to check" in out
