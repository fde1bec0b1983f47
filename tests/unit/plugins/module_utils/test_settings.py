# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotate role's check of its settings: every problem at once, naming the variable the user set."""

from __future__ import annotations

import pytest

from ansible_collections.apikeys.rotation.plugins.module_utils.settings import (
    as_bool, check_settings, duration_seconds, health_url_problem, preflight, setting_name,
)

# The role's defaults, as the play templates them for a valid OpenRouter key.
GOOD = {
    "rotate_provider": "openrouter", "rotate_vault_path": "apps/x", "rotate_vault_mount": "secret",
    "rotate_openai_project_id": "", "rotate_max_age": "30d", "rotate_grace_period": "7d", "rotate_lease_ttl": "15m",
    "rotate_lease_path": "apps/x.lock", "rotate_lease_mount": "secret", "rotate_probe_retries": 30,
    "rotate_verify_successes": 3, "rotate_check_retries": 3, "rotate_probe_delay": 2, "rotate_check_delay": 2,
    "rotate_force": False, "rotate_restore_on_failure": True, "rotate_allow_insecure_http": "False",
    "rotate_vault_login": "True", "rotate_retire_state": "disabled", "rotate_health_url": "",
    "rotate_console_key_wait": "7d",
}


def check(short=None, **changes):
    values = dict(GOOD)
    values.update(changes)
    return check_settings(values, short or {})


def test_good_settings_have_no_problem_and_give_seconds():
    assert check() == {"problems": [], "max_age_seconds": 2592000, "grace_seconds": 604800, "lease_seconds": 900,
                       "console_key_wait_seconds": 604800}


@pytest.mark.parametrize("changes, short, expected", [
    # the short inventory name when it gave the value, else the rotate_* name
    ({"rotate_provider": "azure"}, {"provider": "azure"}, "provider must be one of anthropic, openai, openrouter, got 'azure'"),
    ({"rotate_provider": "azure"}, {}, "rotate_provider must be one of anthropic, openai, openrouter, got 'azure'"),
    ({"rotate_provider": "azure"}, {"provider": "openai"}, "rotate_provider must be one of"),
    ({"rotate_provider": ""}, {}, "set provider (or rotate_provider) to one of anthropic, openai, openrouter"),
    ({"rotate_vault_path": " "}, {}, "set vault_path (or rotate_vault_path) to the KV v2 path of the key"),
    ({"rotate_max_age": "thirty days"}, {"max_age": "thirty days"},
     "max_age must be a duration such as 30d, 12h, 90m or a number of seconds, got 'thirty days'"),
    ({"rotate_max_age": "-5d"}, {"max_age": "-5d"}, "max_age must be a duration"),
    ({"rotate_max_age": "0"}, {"max_age": 0}, "max_age must be between 1s and 3650d, got '0'"),
    ({"rotate_max_age": "3651d"}, {}, "rotate_max_age must be between 1s and 3650d"),
    ({"rotate_grace_period": "367d"}, {"grace_period": "367d"}, "grace_period must be at most 366d"),
    ({"rotate_lease_ttl": "0s"}, {}, "rotate_lease_ttl must be between 1s and 24h, got '0s'"),
    ({"rotate_lease_ttl": True}, {}, "rotate_lease_ttl must be a duration such as 15m or 1h, got 'True'"),
    ({"rotate_probe_retries": -1}, {}, "rotate_probe_retries must be a whole number from 1 to 1000, got '-1'"),
    ({"rotate_probe_retries": "three"}, {}, "rotate_probe_retries must be a whole number from 1 to 1000, got 'three'"),
    ({"rotate_probe_retries": 2.5}, {}, "rotate_probe_retries must be a whole number"),
    ({"rotate_probe_retries": 1000000000}, {}, "rotate_probe_retries must be a whole number from 1 to 1000, got '1000000000'"),
    ({"rotate_verify_successes": 0}, {}, "rotate_verify_successes must be a whole number from 1 to 100"),
    ({"rotate_check_delay": 100000}, {}, "rotate_check_delay must be a number of seconds from 0 to 600"),
    ({"rotate_probe_delay": "soon"}, {}, "rotate_probe_delay must be a number of seconds"),
    ({"rotate_force": "maybe"}, {}, "rotate_force must be true or false, got 'maybe'"),
    ({"rotate_allow_insecure_http": "perhaps"}, {"allow_insecure_http": "perhaps"},
     "allow_insecure_http must be true or false, got 'perhaps'"),
    ({"rotate_retire_state": "archived"}, {}, "rotate_retire_state must be one of disabled, deleted, got 'archived'"),
    ({"rotate_lease_path": "apps/x"}, {}, "rotate_lease_path must be a KV v2 path of its own"),
    ({"rotate_lease_path": ""}, {}, "rotate_lease_path must be a KV v2 path of its own"),
    ({"rotate_provider": "openai"}, {"provider": "openai"}, "an OpenAI key needs openai_project_id"),
    ({"rotate_health_url": "ftp://127.0.0.1/h"}, {"health_url": "ftp://127.0.0.1/h"},
     "health_url must be an https:// URL, got 'ftp://127.0.0.1/h'"),
    ({"rotate_health_url": "javascript:alert(1)"}, {}, "rotate_health_url must be an https:// URL"),
    ({"rotate_health_url": "http://169.254.169.254/latest"}, {}, "link-local"),
    ({"rotate_health_url": "https://[fe80::1]/h"}, {}, "link-local"),
    ({"rotate_health_url": "http://metadata.google.internal/x"}, {}, "link-local"),
    ({"rotate_health_url": "http://app.example.com/healthz/key"}, {}, "must be https:// (got 'http://app.example.com/healthz/key')"),
    ({"rotate_health_url": "http://user:pw@app.example.com/h"}, {}, "got 'http://app.example.com/h'"),
])
def test_each_problem_names_the_setting(changes, short, expected):
    problems = check(short, **changes)["problems"]
    assert len(problems) == 1 and expected in problems[0], problems


@pytest.mark.parametrize("changes", [
    {"rotate_health_url": "http://127.0.0.1:8080/healthz/key"},
    {"rotate_health_url": "http://localhost/h"},
    {"rotate_health_url": "http://[::1]:9/h"},
    {"rotate_health_url": "http://app.example.com/h", "rotate_allow_insecure_http": "yes"},
    {"rotate_health_url": "https://app.example.com/h"},
    {"rotate_grace_period": "0s"},
    {"rotate_max_age": " 90 m "},
    {"rotate_probe_delay": 0, "rotate_check_delay": "0.5"},
    {"rotate_probe_retries": "30", "rotate_force": "yes", "rotate_restore_on_failure": "off"},
    {"rotate_provider": "openai", "rotate_openai_project_id": "proj_1"},
    {"rotate_lease_path": "apps/x", "rotate_lease_mount": "locks"},
])
def test_accepted(changes):
    assert check(**changes)["problems"] == []


def test_every_problem_at_once_and_no_password():
    problems = check({"provider": "azure"}, rotate_provider="azure", rotate_max_age="soon", rotate_force="maybe",
                     rotate_health_url="ftp://me:hunter2@x/h")["problems"]
    assert len(problems) == 4
    assert "hunter2" not in " ".join(problems)


def test_long_values_are_shortened():
    problem = check(rotate_provider="x" * 5000)["problems"][0]
    assert len(problem) < 200 and problem.endswith("...'")


def test_helpers():
    assert [duration_seconds(v) for v in ("45", "45s", "2m", "3h", "1d", "2w", "1y", "", True)] == \
        [45, 45, 120, 10800, 86400, 1209600, None, None, None]
    assert [as_bool(v) for v in (True, "yes", "On", 1, "0", "no", False, "maybe")] == \
        [True, True, True, True, False, False, False, None]
    assert setting_name("rotate_max_age", {"rotate_max_age": "30d"}, {"max_age": "30d"}) == "max_age"
    assert setting_name("rotate_probe_retries", {"rotate_probe_retries": 3}, {}) == "rotate_probe_retries"
    assert health_url_problem("", False, "health_url") is None


@pytest.mark.parametrize("resume, deploy, found, health, allow, short, expected", [
    ("create", "", False, False, False, {}, ["neither deploy_target, deploy_tasks nor health_url"]),
    ("create", "", False, False, "yes", {}, []),
    ("create", "", False, True, False, {}, []),
    ("create", "/srv/deploy.yml", True, False, False, {}, []),
    ("create", "/srv/deploy.yml", False, True, False, {"deploy_tasks": "/srv/deploy.yml"},
     ["deploy_tasks names /srv/deploy.yml, which is not a file on this controller"]),
    ("create", "/srv/deploy.yml", False, True, False, {}, ["rotate_deploy_tasks names /srv/deploy.yml"]),
    ("create", "hooks/deploy.yml", False, False, False, {}, []),  # relative: include_tasks looks for it
    # a started rotation is always finished: only the hook's file is checked
    ("deploy", "", False, False, False, {}, []),
    ("retire", "/gone.yml", False, False, False, {}, ["rotate_deploy_tasks names /gone.yml"]),
])
def test_preflight(resume, deploy, found, health, allow, short, expected):
    problems = preflight(resume, deploy, found, health, allow, short)
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems)), problems


CLOUDFLARE = {"rotate_deploy_target": "cloudflare_worker_secret", "rotate_cloudflare_account_id": "0" * 32,
              "rotate_cloudflare_script_name": "signer", "rotate_cloudflare_secret_name": "OPENROUTER_API_KEY",
              "rotate_cloudflare_api_base_url": ""}


@pytest.mark.parametrize("changes, short, expected", [
    ({}, {}, []),
    ({"rotate_deploy_target": ""}, {}, []),
    ({"rotate_deploy_target": "heroku"}, {"deploy_target": "heroku"},
     ["deploy_target must be one of cloudflare_worker_secret, file, kubernetes_secret, got 'heroku' (for anything else, "
      "write deploy_tasks)"]),
    ({"rotate_cloudflare_account_id": ""}, {},
     ["deploy_target cloudflare_worker_secret needs cloudflare_account_id (or rotate_cloudflare_account_id)"]),
    ({"rotate_cloudflare_account_id": "ABC"}, {"cloudflare_account_id": "ABC"},
     ["cloudflare_account_id must be a Cloudflare account id (32 lowercase hex digits), got 'ABC'"]),
    ({"rotate_cloudflare_script_name": "My Worker", "rotate_cloudflare_secret_name": "9KEY"}, {},
     ["rotate_cloudflare_script_name must be the Worker's name", "rotate_cloudflare_secret_name must be a secret binding"]),
    ({"rotate_cloudflare_api_base_url": "http://api.example/client/v4"}, {"cloudflare_api_base_url": "x"},
     ["rotate_cloudflare_api_base_url must be https://"]),
])
def test_deploy_target_settings(changes, short, expected):
    values = dict(CLOUDFLARE)
    values.update(changes)
    problems = check(short, **values)["problems"]
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems)), problems


@pytest.mark.parametrize("resume, target, health, expected", [
    ("create", "cloudflare_worker_secret", True, []),
    ("create", "cloudflare_worker_secret", False, ["deploy_target cloudflare_worker_secret needs health_url"]),
    ("deploy", "cloudflare_worker_secret", False, []),  # a started rotation is always finished
])
def test_preflight_with_a_deploy_target(resume, target, health, expected):
    problems = preflight(resume, "", False, health, False, {}, target)
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems)), problems


KEY_FILE = {"rotate_deploy_target": "file", "rotate_key_file_path": "/etc/signer/anthropic.env", "rotate_key_file_format": "env",
            "rotate_key_file_key_name": "ANTHROPIC_API_KEY", "rotate_key_file_mode": "0640", "rotate_key_file_owner": "",
            "rotate_key_file_group": "signer", "rotate_key_file_reload_command": "systemctl reload signer",
            "rotate_key_file_reload_service": "", "rotate_key_file_reload_state": "restarted"}
KUBERNETES = {"rotate_deploy_target": "kubernetes_secret", "rotate_kubernetes_namespace": "signer",
              "rotate_kubernetes_secret_name": "signer-anthropic", "rotate_kubernetes_secret_key": "ANTHROPIC_API_KEY",
              "rotate_kubernetes_rollout": "deployment/signer", "rotate_kubernetes_wait_timeout": "600"}


@pytest.mark.parametrize("base, changes, short, expected", [
    (KEY_FILE, {}, {}, []),
    (KEY_FILE, {"rotate_key_file_reload_command": ["kill", "-HUP", "4242"], "rotate_key_file_group": ""}, {}, []),
    (KEY_FILE, {"rotate_key_file_reload_command": "", "rotate_key_file_reload_service": "signer.service"}, {}, []),
    (KEY_FILE, {"rotate_key_file_path": ""}, {}, ["deploy_target file needs key_file_path (or rotate_key_file_path)"]),
    (KEY_FILE, {"rotate_key_file_path": "etc/key"}, {"key_file_path": "etc/key"},
     ["key_file_path must be an absolute path to a file, such as /etc/signer/anthropic.env, got 'etc/key'"]),
    (KEY_FILE, {"rotate_key_file_path": "/etc/signer/"}, {}, ["rotate_key_file_path must be an absolute path to a file"]),
    (KEY_FILE, {"rotate_key_file_format": "yaml"}, {}, ["rotate_key_file_format must be raw (the key alone) or env"]),
    (KEY_FILE, {"rotate_key_file_mode": "0644"}, {"key_file_mode": "0644"},
     ["key_file_mode 0644 lets every user of the host read or change the key"]),
    (KEY_FILE, {"rotate_key_file_mode": "rw-r-----"}, {}, ["rotate_key_file_mode must be an octal mode"]),
    (KEY_FILE, {"rotate_key_file_mode": 416}, {"key_file_mode": 416}, ["key_file_mode must be quoted, such as '0640'"]),
    (KEY_FILE, {"rotate_key_file_key_name": "ANTHROPIC-KEY"}, {}, ["rotate_key_file_key_name must be an environment variable"]),
    (KEY_FILE, {"rotate_key_file_reload_command": "kill -HUP 'unclosed"}, {"key_file_reload_command": "x"},
     ["key_file_reload_command is not a command line (No closing quotation)"]),
    (KEY_FILE, {"rotate_key_file_reload_command": ["kill", 9]}, {},
     ["rotate_key_file_reload_command must be a list of words (an argv) or a command line, got"]),
    (KEY_FILE, {"rotate_key_file_reload_state": "stopped"}, {}, ["rotate_key_file_reload_state must be restarted or reloaded"]),
    (KEY_FILE, {"rotate_key_file_owner": "root; rm"}, {}, ["rotate_key_file_owner must be a user name or number"]),
    (KUBERNETES, {}, {}, []),
    (KUBERNETES, {"rotate_kubernetes_rollout": ""}, {}, []),
    (KUBERNETES, {"rotate_kubernetes_namespace": ""}, {},
     ["deploy_target kubernetes_secret needs kubernetes_namespace (or rotate_kubernetes_namespace)"]),
    (KUBERNETES, {"rotate_kubernetes_secret_name": "Signer_Key"}, {"kubernetes_secret_name": "Signer_Key"},
     ["kubernetes_secret_name must be a Secret's name (lowercase letters, digits, - and .), got 'Signer_Key'"]),
    (KUBERNETES, {"rotate_kubernetes_rollout": "pod/signer"}, {}, ["rotate_kubernetes_rollout must be the workload to roll out"]),
    (KUBERNETES, {"rotate_kubernetes_secret_key": "a key"}, {}, ["rotate_kubernetes_secret_key must be a data key"]),
    (KUBERNETES, {"rotate_kubernetes_wait_timeout": "0"}, {}, ["rotate_kubernetes_wait_timeout must be seconds"]),
])
def test_file_and_kubernetes_target_settings(base, changes, short, expected):
    values = dict(base)
    values.update(changes)
    problems = check(short, **values)["problems"]
    assert len(problems) == len(expected) and all(e in p for e, p in zip(expected, problems)), problems


def test_a_target_names_what_it_needs_installed(monkeypatch):
    import importlib.util

    from ansible_collections.apikeys.rotation.plugins.module_utils import settings

    installed = {"kubernetes"}
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object() if name in installed else None)
    assert settings.target_needs("file") == []
    assert settings.target_needs("kubernetes_secret") == [
        "deploy_target kubernetes_secret needs the collection kubernetes.core (ansible-galaxy collection install kubernetes.core)"]
    problems = preflight("create", "", False, True, False, {}, "kubernetes_secret")
    assert [p for p in problems if "kubernetes.core" in p], problems
    assert preflight("none", "", False, True, False, {}, "kubernetes_secret") == []  # nothing to deliver
    installed.add("ansible_collections.kubernetes.core")
    assert settings.target_needs("kubernetes_secret") == []
