# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Malformed input to every module (and the rotation role) through real ansible-playbook.

Each case is one task in a batch run at -vvvv with ``ignore_errors``; a case passes
when its task failed with a message naming the offending field, no traceback shows
anywhere, no canary secret value leaks, and nothing changed: Vault is read with
plain hvac, the provider emulator through its control API (state and hits).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import typing as t
import uuid

import hvac
import pytest

from harness import REPO_ROOT, AnsibleEnv, Emulator, assert_no_secret

NS = "apikeys.rotation."
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")
HUGE = 1024 * 1024
RUN = uuid.uuid4().hex[:8]
BASE_PATH = "tests/bad-input-%s" % RUN
ROLE_PATH = "tests/bad-role-input-%s" % RUN
ROLE_PLAYBOOK = "apikeys.rotation.rotate"
ROLE_PLAYBOOK_FILE = os.path.join(REPO_ROOT, "playbooks", "rotate.yml")
KV1_MOUNT = "kv1-bad-%s" % RUN

# Canary values: none may occur in any output or event.
CANARY_VAULT = "canary-vault-value-%s-0123456789abcdef" % RUN
CANARY_DATA = "canary-data-value-%s-fedcba9876543210" % RUN
# keys shaped like another provider's
OPENAI_KEY = "sk-proj-canary%sAbCdEfGhIjKlMnOpQrStUvWxYz0123456789" % RUN
ANTHROPIC_KEY = "sk-ant-api03-canary%sAbCdEfGhIjKlMnOpQrStUvWxYz0123456789-AbCdEfAA" % RUN
# malformed keys
GARBAGE_KEY = "not-a-key-canary-%s-0123456789abcdef" % RUN
UNICODE_KEY = "sk-ant-api03-\u043a\u043b\u044e\u0447-canary-%s-\u2603\u00e9\u00e8-0123456789" % RUN
HUGE_KEY = "sk-or-v1-" + ("%s-canary-" % RUN) * (HUGE // 16)


class Case(t.NamedTuple):
    id: str
    group: str
    module: str
    args: t.Dict[str, t.Any]
    expect: t.Tuple[str, ...]
    watch: t.Optional[int] = None  # stateful cases: the number of the seeded key the task must leave alone


def case(case_id, group, module, args, *expect, watch=None):
    return Case(case_id, group, module, args, tuple(expect), watch)


def v(name):
    return "{{ %s }}" % name


# -- the cases --------------------------------------------------------------------

OR = {"provider": "openrouter", "base_url": v("or_url"), "admin_key": v("or_admin")}
OA = {"provider": "openai", "base_url": v("oa_url"), "admin_key": v("oa_admin"), "openai_project_id": v("oa_project")}
AN = {"provider": "anthropic", "base_url": v("an_url"), "admin_key": v("an_admin")}


def args(*parts, **extra):
    merged = {}
    for part in parts:
        merged.update(part)
    merged.update(extra)
    return merged


VAULT_CASES = [
    # vault_secret_write
    case("write empty path", "vault", "vault_secret_write", {"path": "", "data": {"api_key": CANARY_DATA}},
         "path must name a secret", "empty"),
    case("write path with dotdot", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/../escape", "data": {"api_key": CANARY_DATA}}, "path", "'..'"),
    case("write path only dots", "vault", "vault_secret_write", {"path": "a/./b", "data": {"api_key": CANARY_DATA}},
         "path", "'.'"),
    case("write kv v1 mount", "vault", "vault_secret_write",
         {"mount": KV1_MOUNT, "path": "app", "data": {"api_key": CANARY_DATA}}, "KV version 1", KV1_MOUNT),
    case("write missing mount", "vault", "vault_secret_write",
         {"mount": "no-such-mount-" + RUN, "path": "app", "data": {"api_key": CANARY_DATA}},
         "No secrets engine is mounted at 'no-such-mount-%s/'" % RUN, "mount option"),
    case("write empty mount", "vault", "vault_secret_write", {"mount": "", "path": "app", "data": {"api_key": CANARY_DATA}},
         "mount must name", "empty"),
    case("write negative retries", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "retries": -1}, "retries must be 0 or more"),
    case("write negative timeout", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "timeout": -5}, "timeout must be a positive"),
    case("write custom_metadata non-string", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "custom_metadata": {"owner": 5}}, "custom_metadata.owner must be a string", "got a number"),
    case("write custom_metadata list value", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "custom_metadata": {"team": ["a", "b"]}}, "custom_metadata.team must be a string"),
    case("write custom_metadata huge value", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "custom_metadata": {"note": v("huge_text")}}, "custom_metadata.note", "limit"),
    case("write data non-string value", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA, "port": 8080}}, "data.port must be a string"),
    case("write data not a dict", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": CANARY_DATA}, "argument 'data'", "dict"),
    case("write negative cas", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "cas": -1}, "cas must be 0"),
    case("write stale cas", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "cas": 1}, "Check-and-set conflict", "cas=2"),
    case("write data_from_version missing", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data_from_version": 99}, "data_from_version=99", "no such version"),
    case("write data_from_version zero", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data_from_version": 0}, "data_from_version must be 1 or more"),
    case("write data_from_version on absent secret", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/absent", "data_from_version": 1}, "data_from_version=1"),
    case("write data and data_from_version", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "data_from_version": 1},
         "mutually exclusive", "data_from_version"),
    case("write nothing to write", "vault", "vault_secret_write", {"path": BASE_PATH + "/seeded"},
         "one of the following is required", "custom_metadata"),
    case("write missing token", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "token": ""}, "token", "VAULT_TOKEN"),
    case("write url without http", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "url": "vault.example.com:8200"}, "url", "scheme"),
    case("write url ftp scheme", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "url": "ftp://127.0.0.1:8200",
          "retries": 0}, "url"),
    case("write wrong token", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "token": CANARY_VAULT},
         "Permission denied", "token"),
    case("write data empty key name", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"": CANARY_DATA}}, "data has an empty"),
    case("write auth_method unknown", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "auth_method": "kerberos"}, "auth_method", "kerberos"),
    case("write unknown option", "vault", "vault_secret_write",
         {"path": BASE_PATH + "/seeded", "data": {"api_key": CANARY_DATA}, "colour": "red"}, "Unsupported parameters", "colour"),
    # vault_secret_info
    case("info version zero", "vault", "vault_secret_info", {"path": BASE_PATH + "/seeded", "version": 0},
         "version must be 1 or more, got 0"),
    case("info version negative", "vault", "vault_secret_info", {"path": BASE_PATH + "/seeded", "version": -3},
         "version must be 1 or more, got -3"),
    case("info version not a number", "vault", "vault_secret_info", {"path": BASE_PATH + "/seeded", "version": "zwei"},
         "argument 'version'", "int"),
    case("info path with dotdot", "vault", "vault_secret_info", {"path": "../sys/mounts"}, "path", "'..'"),
    case("info return_data without no_log", "vault", "vault_secret_info",
         {"path": BASE_PATH + "/seeded", "return_data": True}, "return_data=true", "no_log"),
    case("info kv v1 mount", "vault", "vault_secret_info", {"mount": KV1_MOUNT, "path": "app"}, "KV version 1"),
]

PROVIDER_CASES = [
    # provider_key_create
    case("create unknown provider", "provider", "provider_key_create", args(OR, provider="azure", name="x"),
         "provider", "azure", "anthropic, openai, openrouter"),
    case("create empty name", "provider", "provider_key_create", args(OR, name="  "), "name must not be empty"),
    case("create anthropic empty key", "provider", "provider_key_create", args(AN, name="chat-r1", api_key=""),
         "api_key", "Anthropic Console"),
    case("create anthropic openai key", "provider", "provider_key_create",
         args(AN, name="chat-r1", api_key=OPENAI_KEY), "api_key", "not an Anthropic key"),
    case("create anthropic garbage key", "provider", "provider_key_create",
         args(AN, name="chat-r1", api_key=GARBAGE_KEY), "api_key", "Anthropic"),
    case("create anthropic unicode key", "provider", "provider_key_create",
         args(AN, name="chat-r1", api_key=UNICODE_KEY), "api_key", "Anthropic"),
    case("create openrouter with api_key", "provider", "provider_key_create",
         args(OR, name="chat-r1", api_key=ANTHROPIC_KEY), "api_key is only for", "anthropic"),
    case("create openai without project", "provider", "provider_key_create",
         args(OA, name="chat-r1", openai_project_id=None), "openai_project_id"),
    case("create on_existing not in choices", "provider", "provider_key_create",
         args(OR, name="chat-r1", on_existing="ignore"), "on_existing", "fail, revoke"),
    case("create negative retries", "provider", "provider_key_create", args(OR, name="chat-r1", retries=-1),
         "retries must be 0 or more"),
    case("create negative timeout", "provider", "provider_key_create", args(OR, name="chat-r1", timeout=-5),
         "timeout must be greater than 0"),
    case("create missing admin key", "provider", "provider_key_create", args(OR, name="chat-r1", admin_key=None),
         "admin_key is required", "OPENROUTER_MANAGEMENT_KEY"),
    case("create ftp base_url", "provider", "provider_key_create", args(OR, name="chat-r1", base_url="ftp://example.com/api"),
         "base_url must be an https:// URL"),
    case("create metadata base_url", "provider", "provider_key_create",
         args(OR, name="chat-r1", base_url="http://169.254.169.254/latest"), "base_url", "link-local", "Nothing was sent"),
    case("create plain http base_url", "provider", "provider_key_create",
         args(OR, name="chat-r1", base_url="http://user:pw-in-url@proxy.example.com/api/v1"),
         "base_url must be https:// (got http://proxy.example.com/api/v1)"),
    case("create unknown option", "provider", "provider_key_create", args(OR, name="chat-r1", rotate_now=True),
         "Unsupported parameters", "rotate_now"),
    # provider_key_info
    case("info negative max_retry_wait", "provider", "provider_key_info", args(OR, max_retry_wait=-1), "max_retry_wait"),
    case("info openai without project", "provider", "provider_key_info", args(OA, openai_project_id=None),
         "openai_project_id"),
    case("info missing admin key", "provider", "provider_key_info", args(AN, admin_key=None),
         "admin_key is required", "ANTHROPIC_ADMIN_KEY"),
    case("info base_url javascript", "provider", "provider_key_info", args(AN, base_url="javascript:alert(1)"),
         "base_url must be an https:// URL"),
    case("info admin key of another provider", "provider", "provider_key_info", args(OR, admin_key=v("oa_admin")),
         "admin_key"),
    # provider_key_revoke
    case("revoke state not in choices", "provider", "provider_key_revoke", args(OR, key_id=v("or_key_id"), state="paused"),
         "state", "active, disabled, deleted"),
    case("revoke empty key_id", "provider", "provider_key_revoke", args(OR, key_id=" "), "key_id must not be empty"),
    case("revoke openai disabled", "provider", "provider_key_revoke", args(OA, key_id=v("oa_key_id"), state="disabled"),
         "OpenAI has no way to disable", "state=disabled"),
    case("revoke openai without project", "provider", "provider_key_revoke",
         args(OA, key_id=v("oa_key_id"), state="deleted", openai_project_id=None), "openai_project_id"),
    case("revoke key id of another provider", "provider", "provider_key_revoke",
         args(AN, key_id=v("or_key_id"), state="disabled"), "no Anthropic API key has the id"),
    case("revoke protected fingerprint", "provider", "provider_key_revoke",
         args(OR, key_id=v("or_key_id"), fingerprint=v("or_key_fp"), protect_fingerprint=v("or_key_fp")),
         "refusing", "protect_fingerprint"),
    case("revoke missing key_id", "provider", "provider_key_revoke", args(OR, state="deleted"),
         "missing required arguments", "key_id"),
    # api_key_probe
    case("probe empty api_key", "provider", "api_key_probe", {"provider": "anthropic", "base_url": v("an_url"), "api_key": ""},
         "api_key is empty"),
    case("probe openai key for anthropic", "provider", "api_key_probe",
         {"provider": "anthropic", "base_url": v("an_url"), "api_key": OPENAI_KEY}, "api_key", "not an Anthropic key"),
    case("probe anthropic key for openrouter", "provider", "api_key_probe",
         {"provider": "openrouter", "base_url": v("or_url"), "api_key": ANTHROPIC_KEY}, "api_key", "not an OpenRouter key"),
    case("probe huge api_key", "provider", "api_key_probe",
         {"provider": "openai", "base_url": v("oa_url"), "api_key": v("huge_key")}, "api_key", "OpenAI"),
    case("probe api_key without provider", "provider", "api_key_probe", {"api_key": ANTHROPIC_KEY}, "provider is required"),
    case("probe unknown provider", "provider", "api_key_probe", {"provider": "mistral", "api_key": ANTHROPIC_KEY},
         "provider", "mistral"),
    case("probe negative retries", "provider", "api_key_probe",
         {"provider": "anthropic", "base_url": v("an_url"), "api_key": ANTHROPIC_KEY, "retries": -2},
         "retries must be 0 or more"),
    case("probe health_url ftp", "provider", "api_key_probe",
         {"health_url": "ftp://example.com/health", "expected_fingerprint": v("or_key_fp")}, "health_url must be an http"),
    case("probe health_url file", "provider", "api_key_probe",
         {"health_url": "file:///etc/passwd", "expected_fingerprint": v("or_key_fp")}, "health_url must be an http"),
    case("probe health_url javascript", "provider", "api_key_probe",
         {"health_url": "javascript:alert(1)", "expected_fingerprint": v("or_key_fp")}, "health_url must be an http"),
    case("probe expected_fingerprint malformed", "provider", "api_key_probe",
         {"health_url": v("health_url"), "expected_fingerprint": "md5:1234"}, "expected_fingerprint must be sha256:"),
    case("probe health_url without expected_fingerprint", "provider", "api_key_probe",
         {"health_url": v("health_url")}, "expected_fingerprint"),
    case("probe api_key and health_url", "provider", "api_key_probe",
         {"provider": "anthropic", "api_key": ANTHROPIC_KEY, "health_url": v("health_url"),
          "expected_fingerprint": v("or_key_fp")}, "mutually exclusive", "health_url"),
]

# Cases that would change state if a check were missing, in a batch of their own: each watched key is checked.
STATEFUL_CASES = [
    case("revoke protect_fingerprint malformed", "stateful", "provider_key_revoke",
         args(OR, key_id=v("watched_key_1"), fingerprint=v("watched_fp_1"), protect_fingerprint="sha1:zz"),
         "protect_fingerprint", watch=1),
    case("revoke fingerprint malformed", "stateful", "provider_key_revoke",
         args(OR, key_id=v("watched_key_2"), fingerprint="0xdeadbeef", protect_fingerprint=v("watched_fp_2")),
         "fingerprint", watch=2),
    case("probe health negative timeout", "stateful", "api_key_probe",
         {"health_url": v("health_url"), "expected_fingerprint": v("or_key_fp"), "timeout": -1}, "timeout"),
    case("probe health negative retries", "stateful", "api_key_probe",
         {"health_url": v("health_url"), "expected_fingerprint": v("or_key_fp"), "retries": -1}, "retries"),
    case("probe health negative max_retry_wait", "stateful", "api_key_probe",
         {"health_url": v("health_url"), "expected_fingerprint": v("or_key_fp"), "max_retry_wait": -1}, "max_retry_wait"),
]

# The rotation role: one inventory host per case (inventory variables), all through apikeys.rotation.rotate.
ROLE_CASES = [
    case("role-unknown-provider", "role", "", {"provider": "azure"},
         "provider must be one of anthropic, openai, openrouter, got 'azure'"),
    case("role-negative-retries", "role", "", {"rotate_probe_retries": -1},
         "rotate_probe_retries must be a whole number from 1 to 1000, got '-1'"),
    case("role-retries-not-a-number", "role", "", {"rotate_probe_retries": "three"}, "rotate_probe_retries", "'three'"),
    case("role-force-maybe", "role", "", {"rotate_force": "maybe"}, "rotate_force must be true or false, got 'maybe'"),
    case("role-insecure-perhaps", "role", "", {"allow_insecure_http": "perhaps"},
         "allow_insecure_http must be true or false, got 'perhaps'"),
    case("role-bad-max-age", "role", "", {"max_age": "thirty days"}, "max_age", "thirty days"),
    case("role-negative-max-age", "role", "", {"max_age": "-5d"}, "max_age", "-5d"),
    case("role-openai-no-project", "role", "", {"provider": "openai"}, "openai_project_id"),
    case("role-retire-state", "role", "", {"rotate_retire_state": "archived"}, "rotate_retire_state", "archived"),
    case("role-empty-vault-path", "role", "", {"vault_path": ""}, "vault_path"),
    case("role-ftp-health-url", "role", "", {"health_url": "ftp://127.0.0.1/health", "rotate_force": True,
                                             "rotate_probe_retries": 1, "rotate_verify_successes": 1}, "health_url",
         "must be an https:// URL"),
    case("role-javascript-health-url", "role", "", {"health_url": "javascript:alert(1)"}, "health_url",
         "must be an https:// URL"),
    case("role-metadata-health-url", "role", "", {"health_url": "http://169.254.169.254/latest/meta-data",
                                                  "rotate_force": True}, "health_url", "link-local"),
    case("role-plain-http-health-url", "role", "", {"health_url": "http://app.example.com/healthz/key",
                                                    "rotate_force": True}, "health_url", "must be https://"),
    case("role-zero-max-age", "role", "", {"max_age": "0"}, "max_age must be between 1s and 3650d, got '0'"),
    case("role-zero-lease-ttl", "role", "", {"rotate_lease_ttl": "0s"}, "rotate_lease_ttl must be between 1s and 24h"),
    case("role-endless-retries", "role", "", {"rotate_probe_retries": 1000000000},
         "rotate_probe_retries must be a whole number from 1 to 1000"),
    case("role-endless-delay", "role", "", {"rotate_check_delay": 100000}, "rotate_check_delay must be a number of seconds from 0 to 600"),
    case("role-bogus-current-key-id", "role", "", {"current_key_id": "f" * 64, "rotate_force": True},
         "current_key_id (rotate_current_key_id) is " + "f" * 64 + ", but no openrouter key has that id. Set current_key_id"),
]

CASES = VAULT_CASES + PROVIDER_CASES + STATEFUL_CASES
SECRETS = (CANARY_VAULT, CANARY_DATA, OPENAI_KEY, ANTHROPIC_KEY, GARBAGE_KEY, UNICODE_KEY, HUGE_KEY)


# -- running the batches ------------------------------------------------------------------


def task_of(item: Case) -> t.Dict[str, t.Any]:
    return {"name": item.id, NS + item.module: item.args, "ignore_errors": True}


def vault_snapshot(client: t.Any) -> t.Dict[str, t.Any]:
    """Every secret below BASE_PATH with its metadata and data, read with plain hvac."""
    snap: t.Dict[str, t.Any] = {}
    try:
        names = client.secrets.kv.v2.list_secrets(path=BASE_PATH, mount_point="secret")["data"]["keys"]
    except hvac.exceptions.InvalidPath:
        names = []
    for name in names:
        path = BASE_PATH + "/" + name
        meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]
        data = client.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                        raise_on_deleted_version=False)["data"]["data"]
        snap[path] = {"current_version": meta["current_version"], "versions": sorted(meta["versions"]),
                      "updated_time": meta["updated_time"], "custom_metadata": meta["custom_metadata"], "data": data}
    snap["kv1"] = client.read("%s/app" % KV1_MOUNT)["data"]
    snap["mounts"] = sorted(client.sys.list_mounted_secrets_engines()["data"])
    return snap


def emulator_snapshot(emulator: t.Any) -> t.Dict[str, t.Any]:
    state = emulator.control("GET", "state")
    snap = {provider: sorted((k["id"], k["name"], k["status"]) for k in body["keys"])
            for provider, body in state.items() if "keys" in body}
    snap["cloudflare"] = state.get("cloudflare", {})
    return snap


def write_hits(emulator: t.Any) -> t.List[dict]:
    return [r for r in emulator.control("GET", "hits")["requests"] if r["method"] in WRITE_METHODS]


class Batch(t.NamedTuple):
    result: t.Any
    before: t.Any
    after: t.Any
    writes: t.List[dict]


def run_batch(env: AnsibleEnv, cases: t.Sequence[Case], extra_vars: dict, defaults: t.Optional[dict] = None) -> t.Any:
    play = {"hosts": "localhost", "gather_facts": False, "tasks": [task_of(c) for c in cases]}
    if defaults:
        play["module_defaults"] = defaults
    return env.run_playbook([play], extra_vars=extra_vars, verbosity=4)


def run_vault(env: AnsibleEnv, client: t.Any, openbao: t.Any) -> Batch:
    before = vault_snapshot(client)
    defaults = {"group/apikeys.rotation.vault": {"url": openbao.addr, "token": v("vault_token")}}
    result = run_batch(env, [c for c in CASES if c.group == "vault"],
                       {"vault_token": openbao.root_token, "huge_text": "\u00e9" * HUGE}, defaults)
    return Batch(result, before, vault_snapshot(client), [])


def run_providers(env: AnsibleEnv, emulator: t.Any) -> t.Tuple[t.Dict[str, Batch], t.Tuple[str, ...], t.List[dict]]:
    """One run of the provider cases, one of the stateful cases (each revoke case on a key of its own)."""
    emulator.control("POST", "reset")
    seed = {}
    for provider in ("anthropic", "openai", "openrouter"):
        seed[provider + "_admin"] = emulator.control("POST", "keys", {"provider": provider, "kind": "admin"})["value"]
    project = emulator.control("POST", "openai/projects", {"name": "bad-input"})["id"]
    or_key = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "live"})
    oa_key = emulator.control("POST", "keys", {"provider": "openai", "kind": "api", "name": "live", "project_id": project})
    an_key = emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "live"})
    watched_keys = [emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "watched-%d" % n})
                    for n in (1, 2)]
    extra_vars = {
        "or_url": emulator.base_url("openrouter"), "oa_url": emulator.base_url("openai"),
        "an_url": emulator.base_url("anthropic"),
        "or_admin": seed["openrouter_admin"], "oa_admin": seed["openai_admin"], "an_admin": seed["anthropic_admin"],
        "oa_project": project, "or_key_id": or_key["id"], "or_key_fp": or_key["fingerprint"], "oa_key_id": oa_key["id"],
        "health_url": emulator.url + "/_emulator/health", "huge_key": HUGE_KEY,
    }
    for number, key in enumerate(watched_keys, 1):
        extra_vars.update({"watched_key_%d" % number: key["id"], "watched_fp_%d" % number: key["fingerprint"]})
    secrets = tuple(seed.values()) + tuple(k["value"] for k in [or_key, oa_key, an_key] + watched_keys)

    def one_run(cases):
        before = emulator_snapshot(emulator)
        writes_before = len(write_hits(emulator))
        result = run_batch(env, cases, extra_vars)
        return Batch(result, before, emulator_snapshot(emulator), write_hits(emulator)[writes_before:])

    batches = {group: one_run([c for c in CASES if c.group == group]) for group in ("provider", "stateful")}
    return batches, secrets, watched_keys


def run_role(env: AnsibleEnv, client: t.Any, openbao: t.Any, emulator: t.Any) -> t.Tuple[Batch, t.Tuple[str, ...]]:
    """The rotate entry point once, one inventory host per bad setting, each host's key seeded in Vault."""
    admin = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "admin"})["value"]
    hosts = {}
    values = [admin]
    for item in ROLE_CASES:
        key = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": item.id})
        values.append(key["value"])
        client.secrets.kv.v2.create_or_update_secret(path=ROLE_PATH + "/" + item.id, secret={"api_key": key["value"]},
                                                     mount_point="secret")
        host = {"ansible_connection": "local", "provider": "openrouter", "vault_path": ROLE_PATH + "/" + item.id,
                "allow_without_deploy": True}
        host.update(item.args)
        hosts[item.id] = host
    env_vars = {"VAULT_ADDR": openbao.addr, "VAULT_TOKEN": openbao.root_token, "OPENROUTER_MANAGEMENT_KEY": admin,
                "OPENROUTER_BASE_URL": emulator.base_url("openrouter")}
    before = (role_vault_snapshot(client), emulator_snapshot(emulator))
    writes_before = len(write_hits(emulator))
    result = env.run_playbook(ROLE_PLAYBOOK, inventory={"all": {"hosts": hosts}}, env=env_vars, verbosity=4,
                              extra_vars={"rotate_probe_delay": 0})
    after = (role_vault_snapshot(client), emulator_snapshot(emulator))
    return Batch(result, before, after, write_hits(emulator)[writes_before:]), tuple(values)


def role_vault_snapshot(client: t.Any) -> t.Dict[str, t.Any]:
    snap = {}
    for item in ROLE_CASES:
        path = ROLE_PATH + "/" + item.id
        meta = client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]
        snap[item.id] = {"current_version": meta["current_version"], "versions": sorted(meta["versions"]),
                         "custom_metadata": meta["custom_metadata"]}
    return snap


def role_ready() -> t.Optional[str]:
    """Why the role cannot be exercised yet, or None."""
    for path in (ROLE_PLAYBOOK_FILE, os.path.join(REPO_ROOT, "roles", "rotate", "meta", "argument_specs.yml"),
                 os.path.join(REPO_ROOT, "roles", "rotate", "tasks", "main.yml")):
        if not os.path.exists(path):
            return "%s does not exist yet" % os.path.relpath(path, REPO_ROOT)
    return None


@pytest.fixture(scope="module")
def batches(tmp_path_factory, collections_path, openbao, emulator_server):
    """Every batch, run in two threads: Vault then the role (on an emulator of its own), and the provider batches."""
    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    client.sys.enable_secrets_engine("kv", path=KV1_MOUNT, options={"version": "1"})
    client.write_data("%s/app" % KV1_MOUNT, data={"api_key": CANARY_VAULT})
    for value in (CANARY_VAULT + "-v1", CANARY_VAULT):
        client.secrets.kv.v2.create_or_update_secret(path=BASE_PATH + "/seeded", secret={"api_key": value},
                                                     mount_point="secret")
    client.secrets.kv.v2.update_metadata(path=BASE_PATH + "/seeded", mount_point="secret", custom_metadata={"owner": "team-a"})
    workdir = str(tmp_path_factory.mktemp("bad-input"))
    role_emulator = Emulator(os.path.join(workdir, "emulator")) if role_ready() is None else None

    def vault_then_role():
        found = {"vault": run_vault(AnsibleEnv(os.path.join(workdir, "vault"), collections_path), client, openbao)}
        if role_emulator is not None:
            role_emulator.start()
            found["role"] = run_role(AnsibleEnv(os.path.join(workdir, "role"), collections_path), client, openbao,
                                     role_emulator)
        return found

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            first = pool.submit(vault_then_role)
            second = pool.submit(run_providers, AnsibleEnv(os.path.join(workdir, "providers"), collections_path),
                                 emulator_server)
            found = first.result()
            found["providers"] = second.result()
        found["client"] = client
        yield found
    finally:
        if role_emulator is not None:
            role_emulator.stop()
        client.sys.disable_secrets_engine(KV1_MOUNT)
        for path in [BASE_PATH + "/seeded"] + [ROLE_PATH + "/" + c.id for c in ROLE_CASES]:
            client.secrets.kv.v2.delete_metadata_and_all_versions(path=path, mount_point="secret")


def events_text(result) -> str:
    return "\n".join(json.dumps(e, ensure_ascii=False) for e in result.events)


def check_output_clean(result: t.Any, secrets: t.Sequence[str]) -> None:
    for text in (result.output, events_text(result)):
        assert "Traceback" not in text
        assert_no_secret(text, *(tuple(SECRETS) + tuple(secrets)))


def check_batch_clean(batch: Batch, names: t.List[str], secrets: t.Sequence[str], state: bool = True) -> None:
    """The whole -vvvv output and every event: no traceback, no secret; nothing changed out of band."""
    result = batch.result
    assert [e["task"] for e in result.results()] == names, result
    assert result.rc == 0, result  # every task failed under ignore_errors
    check_output_clean(result, secrets)
    if state:
        assert batch.after == batch.before
        assert batch.writes == []


def batch_of(item: Case, found: dict) -> t.Tuple[Batch, t.Tuple[str, ...]]:
    if item.group == "vault":
        return found["vault"], ()
    provider_batches, secrets, _keys = found["providers"]
    return provider_batches[item.group], secrets


# -- the checks --------------------------------------------------------------------------------


def params():
    for item in CASES:
        yield pytest.param(item, id=item.id.replace(" ", "-"))


@pytest.mark.parametrize("item", list(params()))
def test_bad_input(item, batches):
    batch, secrets = batch_of(item, batches)
    event = batch.result.result(item.id)
    text = json.dumps(event, ensure_ascii=False)
    assert event["event"] == "failed", "the task did not fail: %s" % text[:2000]
    # ansible-core records "(traceback unavailable)" for every module failure without an exception
    assert "Traceback" not in text and "module_stderr" not in event["result"], text[:4000]
    assert event["result"].get("exception", "(traceback unavailable)") == "(traceback unavailable)", text[:4000]
    message = event["result"].get("msg", "")
    for expected in item.expect:
        assert expected in message, "%r not in the message %r" % (expected, message[:1000])
    assert event["result"].get("changed") is not True
    assert_no_secret(text, *(SECRETS + secrets))
    if item.watch is not None:
        key = batches["providers"][2][item.watch - 1]
        before = [k for k in batch.before["openrouter"] if k[0] == key["id"]]
        after = [k for k in batch.after["openrouter"] if k[0] == key["id"]]
        assert after == before == [(key["id"], key["name"], "active")]
        assert [w for w in batch.writes if key["id"] in w["path"]] == []


@pytest.mark.parametrize("group", ["vault", "provider", "stateful"])
def test_batch_clean(group, batches):
    """The batch ran every case in order; the run as a whole leaked nothing and (but for the stateful batch) changed nothing."""
    names = [c.id for c in CASES if c.group == group]
    batch, secrets = batch_of(next(c for c in CASES if c.group == group), batches)
    # a missing check in the stateful batch would change state (checked per key in test_bad_input): only output here
    check_batch_clean(batch, names, secrets, state=group != "stateful")


def test_unseeded_paths_stay_absent(batches):
    """The bad paths and mounts did not create anything (``..`` did not escape, no new mount)."""
    assert batches["vault"].result.rc == 0
    vault_client = batches["client"]
    for path in (BASE_PATH + "/absent", "tests/escape", "escape", "a/b"):
        with pytest.raises(hvac.exceptions.InvalidPath):
            vault_client.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")
    assert "no-such-mount-%s/" % RUN not in vault_client.sys.list_mounted_secrets_engines()["data"]


def role_params():
    for item in ROLE_CASES:
        yield pytest.param(item, id=item.id)


def role_batch(batches: dict) -> t.Tuple[Batch, t.Tuple[str, ...]]:
    reason = role_ready()
    if reason or "role" not in batches:
        pytest.skip("the rotation role cannot run yet: %s" % reason)
    return batches["role"]


@pytest.mark.parametrize("item", list(role_params()))
def test_role_bad_input(item, batches):
    batch, secrets = role_batch(batches)
    failed = [e for e in batch.result.results(host=item.id) if e["event"] == "failed"]
    assert len(failed) == 1, "host %s: %d failed tasks\n%s" % (item.id, len(failed), batch.result)
    event = failed[0]
    text = json.dumps(event, ensure_ascii=False)
    assert "Traceback" not in text and "module_stderr" not in event["result"], text[:4000]
    message = event["result"].get("msg", "")
    # one line naming the setting: no argument spec, no task dump
    assert "argument_spec" not in text and len(text) < 4000, text[:4000]
    for expected in item.expect:
        assert expected in message, "%r not in the message %r" % (expected, message[:1000])
    assert_no_secret(text, *(SECRETS + secrets))
    # nothing changed for this key: its secret in Vault, its key at the provider, no key made under its name
    (vault_before, emulator_before), (vault_after, emulator_after) = batch.before, batch.after
    assert vault_after[item.id] == vault_before[item.id]
    mine_before = [k for k in emulator_before["openrouter"] if k[1].startswith(item.id)]
    mine_after = [k for k in emulator_after["openrouter"] if k[1].startswith(item.id)]
    assert mine_after == mine_before and [k[2] for k in mine_before] == ["active"]


def test_role_batch_clean(batches):
    """The role run: every host failed (none was left running), no traceback, no secret in the -vvvv output."""
    batch, secrets = role_batch(batches)
    assert batch.result.rc != 0
    check_output_clean(batch.result, secrets)
