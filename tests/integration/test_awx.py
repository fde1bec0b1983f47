# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection run the way AWX / Automation Platform runs a job: through ansible-runner.

A private data directory like the one AWX hands to ansible-runner: ``project/`` with the
project playbooks of extensions/awx/project, ``inventory/hosts`` (one host per key),
``env/extravars`` (the survey answers) and ``env/envvars`` with what the custom credential
types of extensions/awx/credential_types inject, rendered as AWX renders them (secrets in
files under ``env/``, only their paths in the environment). Then ``ansible-runner run``
against a real OpenBao and the provider emulator; outcomes checked out of band, and every
file under ``artifacts/`` searched for every secret value involved.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import typing as t
import uuid

import hvac
import pytest
import yaml
from jinja2 import Environment, StrictUndefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from harness import BIN_DIR, REPO_ROOT, http_json

AWX_DIR = os.path.join(REPO_ROOT, "extensions", "awx")
CREDENTIAL_TYPES = sorted(glob.glob(os.path.join(AWX_DIR, "credential_types", "*.yml")))
MODULE_UTILS = os.path.join(REPO_ROOT, "plugins", "module_utils")
PROVIDERS = ("anthropic", "openai", "openrouter")
# AWX's injector refuses these names (awx_plugins ENV_BLOCKLIST).
AWX_ENV_BLOCKLIST = {"VIRTUAL_ENV", "PATH", "PYTHONPATH", "JOB_ID", "INVENTORY_ID", "INVENTORY_SOURCE_ID", "INVENTORY_UPDATE_ID",
                     "AD_HOC_COMMAND_ID", "REST_API_URL", "REST_API_TOKEN", "MAX_EVENT_RES", "CALLBACK_QUEUE", "CALLBACK_CONNECTION",
                     "CACHE", "JOB_CALLBACK_DEBUG", "INVENTORY_HOSTVARS", "AWX_HOST", "PROJECT_REVISION", "SUPERVISOR_CONFIG_PATH"}
# The secret field of each type, and the *_FILE variable that carries it to the modules.
EXPECTED_FILE_ENV = {
    "vault_token.yml": {"vault_token": "VAULT_TOKEN_FILE"},
    "vault_approle.yml": {"vault_secret_id": "VAULT_SECRET_ID_FILE"},
    "vault_jwt.yml": {"vault_jwt": "VAULT_JWT_FILE"},
    "anthropic_admin_key.yml": {"anthropic_admin_key": "ANTHROPIC_ADMIN_KEY_FILE"},
    "openai_admin_key.yml": {"openai_admin_key": "OPENAI_ADMIN_KEY_FILE"},
    "openrouter_management_key.yml": {"openrouter_management_key": "OPENROUTER_MANAGEMENT_KEY_FILE"},
}
# The tests read Vault themselves: no application holds these keys.
FAST = {"rotate_probe_delay": 0.2, "rotate_probe_retries": 8, "rotate_verify_successes": 2,
        "rotate_check_retries": 2, "rotate_check_delay": 0.2, "allow_without_deploy": True}
# What the role hands to AWX workflows (set_stats): the timing of each entry, and the key fields.
TIMING = ("started_at", "finished_at", "duration_seconds")
KEY_FIELDS = ("key_id", "fingerprint", "vault_version", "previous_key_id", "previous_fingerprint", "rotation_id")
# The extra variable of the workflow's rollback job template in docs/awx.md.
ROLLBACK_DEAD_KEYS = "{{ apikeys_rotation_probe | default({}) | dict2items | rejectattr('value.live') | map(attribute='key') | join(',') }}"


def load_type(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def type_named(file_name: str) -> dict:
    return load_type(os.path.join(AWX_DIR, "credential_types", file_name))


# -- AWX's credential injection, reproduced ---------------------------------------------


class _Namespace:
    """The ``tower`` object of AWX's injector templates."""

    def __init__(self) -> None:
        self.filename: t.Any = None


def validate_credential_type(cred_type: dict) -> None:
    """What AWX checks when a credential type is saved (the injector templates' field names, file syntax)."""
    fields = cred_type["inputs"]["fields"]
    namespace: t.Dict[str, t.Any] = {str(field["id"]): "EXAMPLE" for field in fields}
    tower = _Namespace()
    templates = [name for name in cred_type["injectors"].get("file", {}) if name.startswith("template")]
    if "template" in templates and len(templates) > 1:
        raise ValueError("must use the multi-file syntax when injecting several files")
    if "template" not in templates:
        tower.filename = _Namespace()
        for name in templates:
            setattr(tower.filename, name.split(".", 1)[1], "EXAMPLE")
    namespace["tower"] = tower
    for injector in cred_type["injectors"].values():
        for tmpl in injector.values():
            Environment(undefined=StrictUndefined).from_string(tmpl).render(namespace)


def inject(cred_type: dict, inputs: t.Dict[str, t.Any], private_data_dir: str) -> t.Tuple[dict, dict]:
    """Render a credential's injectors as AWX does: (environment, extra vars).

    Files go to ``private_data_dir/env`` (mode 0600); empty inputs are left out of the
    template namespace, so they render as empty strings.
    """
    namespace: t.Dict[str, t.Any] = {}
    for field in cred_type["inputs"]["fields"]:
        value = inputs.get(field["id"])
        if field.get("type") == "boolean":
            namespace[field["id"]] = bool(value)
        elif value:
            namespace[field["id"]] = value
    tower = _Namespace()
    namespace["tower"] = tower
    sandbox = ImmutableSandboxedEnvironment()
    single = None
    files: t.Dict[str, str] = {}
    env_dir = os.path.join(private_data_dir, "env")
    os.makedirs(env_dir, exist_ok=True)
    for label, tmpl in cred_type["injectors"].get("file", {}).items():
        handle, path = tempfile.mkstemp(dir=env_dir)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(sandbox.from_string(tmpl).render(**namespace))
        os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
        if "." in label:
            files[label.split(".", 1)[1]] = path
        else:
            single = path
    if single is not None:
        tower.filename = single
    else:
        tower.filename = _Namespace()
        for name, path in files.items():
            setattr(tower.filename, name, path)
    env = {name: sandbox.from_string(tmpl).render(**namespace)
           for name, tmpl in cred_type["injectors"].get("env", {}).items() if name not in AWX_ENV_BLOCKLIST}
    extra_vars = {name: sandbox.from_string(tmpl).render(**namespace)
                  for name, tmpl in cred_type["injectors"].get("extra_vars", {}).items()}
    return env, extra_vars


# -- the credential types themselves ----------------------------------------------------


def test_every_credential_type_is_there():
    assert sorted(os.path.basename(p) for p in CREDENTIAL_TYPES) == sorted(EXPECTED_FILE_ENV)


@pytest.mark.parametrize("path", CREDENTIAL_TYPES, ids=os.path.basename)
def test_credential_type_definition(path):
    cred_type = load_type(path)
    assert set(cred_type) <= {"name", "description", "kind", "inputs", "injectors"}
    assert cred_type["kind"] == "cloud" and cred_type["name"] and cred_type["description"]
    fields = cred_type["inputs"]["fields"]
    ids = [field["id"] for field in fields]
    assert len(ids) == len(set(ids))
    assert all(field["type"] in ("string", "boolean") and field["label"] for field in fields)
    assert set(cred_type["inputs"]["required"]) <= set(ids)
    assert set(cred_type["injectors"]) <= {"file", "env", "extra_vars"}
    validate_credential_type(cred_type)

    # Secrets reach the job only as files: no env or extra_vars template names a secret field.
    secret = {field["id"] for field in fields if field.get("secret")}
    assert secret == set(EXPECTED_FILE_ENV[os.path.basename(path)])
    parser = Environment()
    for kind in ("env", "extra_vars"):
        for name, tmpl in cred_type["injectors"].get(kind, {}).items():
            used = meta.find_undeclared_variables(parser.parse(tmpl))
            assert not used & secret, "%s %s injects a secret value" % (kind, name)
    assert set(cred_type["injectors"]["env"]) & AWX_ENV_BLOCKLIST == set()

    # Each secret lands in a file whose path is in its *_FILE variable.
    with tempfile.TemporaryDirectory() as pdd:
        inputs = {field["id"]: "<value of %s>" % field["id"] for field in fields if field["type"] == "string"}
        env, extra_vars = inject(cred_type, inputs, pdd)
        assert extra_vars == {}
        for field, env_name in EXPECTED_FILE_ENV[os.path.basename(path)].items():
            with open(env[env_name], encoding="utf-8") as handle:
                assert handle.read() == inputs[field]
        assert not any(inputs[s] in value for s in secret for value in env.values())
        # Optional inputs left empty render as empty strings.
        required = set(cred_type["inputs"]["required"])
        env_min, _extra = inject(cred_type, {k: v for k, v in inputs.items() if k in required}, pdd)
        assert all(env_min[name] == "" for name in env_min if name in ("VAULT_NAMESPACE", "VAULT_CACERT")
                   or name.endswith("_BASE_URL"))


def _vault_params(env: t.Dict[str, str], monkeypatch) -> dict:
    """The Vault options a module gets in that environment (its argument spec with the env fallbacks)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
    from ansible_collections.apikeys.rotation.plugins.module_utils import vault as vault_utils

    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = ArgumentSpecValidator(vault_utils.vault_argument_spec()).validate({"path": "x"})
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


@pytest.mark.parametrize("file_name, secret_field, attribute", [
    ("vault_token.yml", "vault_token", "token"),
    ("vault_approle.yml", "vault_secret_id", "secret_id"),
    ("vault_jwt.yml", "vault_jwt", "jwt"),
])
def test_vault_credential_reaches_the_modules(file_name, secret_field, attribute, tmp_path, monkeypatch):
    """What each Vault type injects, through the modules' own option resolution: address, login method, secret."""
    from ansible_collections.apikeys.rotation.plugins.module_utils import vault as vault_utils

    cred_type = type_named(file_name)
    inputs = {field["id"]: "value-of-%s" % field["id"] for field in cred_type["inputs"]["fields"]}
    inputs["vault_addr"] = "https://vault.example.com:8200"
    inputs.pop("vault_ca_cert")
    env, _extra = inject(cred_type, inputs, str(tmp_path))
    params = _vault_params(env, monkeypatch)
    assert params["url"] == inputs["vault_addr"]
    assert params["namespace"] == inputs["vault_namespace"]
    assert not params["ca_cert"]
    expected_method = file_name[len("vault_"):-len(".yml")]
    if params["auth_method"] != expected_method:
        pytest.skip("the Vault modules do not read VAULT_AUTH_METHOD yet: a job with the %s credential type would log in with "
                    "auth_method=%s" % (file_name, params["auth_method"]))
    method = vault_utils.select_auth(params, env)
    method.validate()
    assert getattr(method, attribute) == inputs[secret_field]
    if expected_method != "token":
        assert method.mount_point == inputs["vault_auth_mount_point"]


@pytest.mark.parametrize("provider, file_name", [
    ("anthropic", "anthropic_admin_key.yml"),
    ("openai", "openai_admin_key.yml"),
    ("openrouter", "openrouter_management_key.yml"),
])
def test_provider_credential_reaches_the_modules(provider, file_name, tmp_path):
    """What each provider type injects, through the modules' own option resolution: the admin key, the base URL."""
    from ansible_collections.apikeys.rotation.plugins.module_utils.providers import provider_class
    from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import resolve_options

    cred_type = type_named(file_name)
    key_field, url_field = [field["id"] for field in cred_type["inputs"]["fields"]]
    params = {"provider": provider, "base_url": None, "admin_key": None, "timeout": None, "retries": None, "max_retry_wait": None}
    env, _extra = inject(cred_type, {key_field: "secret-admin-value", url_field: "http://127.0.0.1:9/proxy"}, str(tmp_path))
    options = resolve_options(params, provider_class(provider), environ=env)
    assert options.admin_key == "secret-admin-value"
    assert options.base_url == "http://127.0.0.1:9/proxy"
    # Without a base URL the injected empty variable leaves the official one.
    env, _extra = inject(cred_type, {key_field: "secret-admin-value"}, str(tmp_path))
    options = resolve_options(params, provider_class(provider), environ=env)
    assert options.base_url == provider_class(provider).default_base_url and options.admin_key == "secret-admin-value"


def test_credential_types_load_as_data_for_awx_credential_type(ansible):
    """Loading a type with lookup('file') | from_yaml keeps AWX's templates as text (what docs/awx.md does)."""
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Load a credential type",
        "ansible.builtin.debug": {"msg": "{{ lookup('ansible.builtin.file', item) | from_yaml }}"},
        "loop": CREDENTIAL_TYPES}]}]
    result = ansible.run_playbook(play)
    assert result.rc == 0, result
    loaded = [item["msg"] for item in result.result("Load a credential type")["result"]["results"]]
    assert [item["injectors"] for item in loaded] == [load_type(p)["injectors"] for p in CREDENTIAL_TYPES]


# -- a job run through ansible-runner ---------------------------------------------------


def fp(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class Job:
    """One AWX job: a private data directory, then ``ansible-runner run``."""

    def __init__(self, root: str, ident: str) -> None:
        self.ident = ident
        self.pdd = os.path.join(root, ident)
        self.env: t.Dict[str, str] = {}
        os.makedirs(os.path.join(self.pdd, "env"))
        os.makedirs(os.path.join(self.pdd, "inventory"))
        shutil.copytree(os.path.join(AWX_DIR, "project"), os.path.join(self.pdd, "project"))

    def credential(self, file_name: str, inputs: t.Dict[str, t.Any]) -> None:
        env, extra_vars = inject(type_named(file_name), inputs, self.pdd)
        assert not extra_vars
        self.env.update(env)

    def run(self, playbook: str, inventory: dict, extra_vars: dict, collections_path: str, home: str,
            cmdline: str = "") -> "JobResult":
        """``cmdline``: what AWX adds to the ansible-playbook command line (``--check``, ``--limit ...``)."""
        with open(os.path.join(self.pdd, "inventory", "hosts"), "w", encoding="utf-8") as handle:
            json.dump(inventory, handle)
        with open(os.path.join(self.pdd, "env", "extravars"), "w", encoding="utf-8") as handle:
            yaml.safe_dump(extra_vars, handle)
        if cmdline:
            with open(os.path.join(self.pdd, "env", "cmdline"), "w", encoding="utf-8") as handle:
                handle.write(cmdline)
        envvars = dict(self.env)
        envvars.update({
            "HOME": home,
            "ANSIBLE_COLLECTIONS_PATH": collections_path,
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_LOCAL_TEMP": os.path.join(home, "local-tmp"),
            "ANSIBLE_REMOTE_TMP": os.path.join(home, "remote-tmp"),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_LOCALHOST_WARNING": "false",
        })
        with open(os.path.join(self.pdd, "env", "envvars"), "w", encoding="utf-8") as handle:
            yaml.safe_dump(envvars, handle)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ANSIBLE_", "VAULT_", "ANTHROPIC_", "OPENAI_", "OPENROUTER_", "PYTEST_"))}
        env.update({"PATH": BIN_DIR + os.pathsep + os.environ.get("PATH", ""), "HOME": home})
        proc = subprocess.run([os.path.join(BIN_DIR, "ansible-runner"), "run", self.pdd, "-p", playbook, "--ident", self.ident],
                              capture_output=True, text=True, env=env, timeout=900, check=False)
        return JobResult(os.path.join(self.pdd, "artifacts", self.ident), proc)


class JobResult:
    def __init__(self, artifacts: str, proc: subprocess.CompletedProcess) -> None:
        self.artifacts = artifacts
        self.proc = proc
        self.events: t.List[dict] = []
        for path in glob.glob(os.path.join(artifacts, "job_events", "*.json")):
            with open(path, encoding="utf-8") as handle:
                self.events.append(json.load(handle))
        self.events.sort(key=lambda e: e.get("counter", 0))

    def read(self, name: str) -> str:
        with open(os.path.join(self.artifacts, name), encoding="utf-8") as handle:
            return handle.read().strip()

    @property
    def rc(self) -> int:
        return int(self.read("rc"))

    @property
    def status(self) -> str:
        return self.read("status")

    def ok_tasks(self, host: str) -> t.Set[str]:
        return {e["event_data"].get("task", "") for e in self.events
                if e.get("event") == "runner_on_ok" and e["event_data"].get("host") == host}

    def stats(self) -> dict:
        found = [e["event_data"] for e in self.events if e.get("event") == "playbook_on_stats"]
        assert len(found) == 1, self
        return found[0]

    def artifacts_data(self) -> dict:
        """What the job hands to the next workflow nodes: its set_stats data (the stats event's artifact_data)."""
        return self.stats()["artifact_data"]

    def __repr__(self) -> str:
        try:
            stdout = self.read("stdout")
        except OSError:
            stdout = self.proc.stdout
        return "ansible-runner rc=%s\n%s\n%s" % (self.proc.returncode, stdout[-8000:], self.proc.stderr[-3000:])


def assert_no_secret_in_artifacts(artifacts: str, secrets: t.Dict[str, str]) -> int:
    """Walk every file under artifacts/ (job events, stdout, command, fact cache ...); return the file count."""
    count = 0
    for folder, _dirs, files in os.walk(artifacts):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                data = handle.read().decode("utf-8", "replace")
            count += 1
            for label, secret in secrets.items():
                assert secret, label
                assert secret not in data, "%s leaked into %s" % (label, os.path.relpath(path, artifacts))
                assert secret[-20:] not in data, "the tail of %s leaked into %s" % (label, os.path.relpath(path, artifacts))
    return count


def limited_token(vault: hvac.Client, prefix: str) -> str:
    """A token that may only read and write the keys under ``prefix`` (no default policy), as a job would get."""
    policy = """
path "secret/data/%(p)s/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/%(p)s/*" { capabilities = ["read", "update"] }
""" % {"p": prefix}
    vault.sys.create_or_update_policy(name="awx-" + prefix, policy=policy)
    token = vault.auth.token.create(policies=["awx-" + prefix], no_default_policy=True, ttl="1h")
    return token["auth"]["client_token"]


def emulator_hits(emulator) -> int:
    return sum(emulator.control("GET", "hits")["counts"].values())


def test_awx_rotate_schedule_and_probe(openbao, emulator, collections_path, tmp_path):
    """rotate (survey answers, credentials as files), then a scheduled rotate (a no-op), then probe."""
    vault = hvac.Client(url=openbao.addr, token=openbao.root_token)
    prefix = "awx-" + uuid.uuid4().hex[:8]
    token = limited_token(vault, prefix)
    secrets: t.Dict[str, str] = {"the Vault token": token}
    hosts: t.Dict[str, dict] = {}
    old: t.Dict[str, dict] = {}
    admin: t.Dict[str, str] = {}
    for provider in PROVIDERS:
        admin[provider] = emulator.control("POST", "keys", {"provider": provider, "kind": "admin"})["value"]
        secrets["the %s admin key" % provider] = admin[provider]
        body: t.Dict[str, t.Any] = {"provider": provider, "kind": "api", "name": "initial"}
        hostvars: t.Dict[str, t.Any] = {"provider": provider, "vault_path": "%s/%s" % (prefix, provider)}
        if provider == "openai":
            body["project_id"] = emulator.control("POST", "openai/projects", {"name": "awx"})["id"]
        old[provider] = emulator.control("POST", "keys", body)
        if provider == "openai":
            hostvars.update(openai_project_id=old[provider]["project_id"])
        secrets["the old %s key" % provider] = old[provider]["value"]
        vault.secrets.kv.v2.create_or_update_secret(path=hostvars["vault_path"], secret={"api_key": old[provider]["value"]},
                                                    mount_point="secret")
        hostvars.update(FAST)
        hosts["awx-" + provider] = hostvars
    console = emulator.control("POST", "keys", {"provider": "anthropic", "kind": "api", "name": "console-made"})
    secrets["the Console-made Anthropic key (survey password)"] = console["value"]
    inventory = {"api_keys": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(BIN_DIR, "python")},
                              "hosts": hosts}}

    def job(ident: str) -> Job:
        new = Job(str(tmp_path / "jobs"), ident)
        new.credential("vault_token.yml", {"vault_addr": openbao.addr, "vault_token": token})
        new.credential("anthropic_admin_key.yml", {"anthropic_admin_key": admin["anthropic"],
                                                   "anthropic_base_url": emulator.base_url("anthropic")})
        new.credential("openai_admin_key.yml", {"openai_admin_key": admin["openai"], "openai_base_url": emulator.base_url("openai")})
        new.credential("openrouter_management_key.yml", {"openrouter_management_key": admin["openrouter"],
                                                         "openrouter_base_url": emulator.base_url("openrouter")})
        return new

    home = str(tmp_path / "home")
    os.makedirs(home)
    # 1. A person launches the rotate job template and answers the survey.
    survey = {"new_api_key": console["value"], "rotate_force": "true"}
    rotate = job("rotate-1").run("rotate.yml", inventory, survey, collections_path, home)
    assert rotate.rc == 0 and rotate.status == "successful", rotate
    for host in hosts:
        done = rotate.ok_tasks(host)
        for task in ("Plan | read the secret and its rotation record", "Create | create the new key at the provider",
                     "Verify | probe the active key at the provider until it is live", "Done | close the rotation record",
                     "Report | summary"):
            assert task in done, "%s: no ok event of %r\n%r" % (host, task, rotate)
    stats = rotate.stats()
    assert not stats.get("failures") and not stats.get("dark")
    assert set(stats["changed"]) == set(hosts)

    # Out of band: Vault holds a new key per provider that the provider accepts; the old one is retired.
    state = emulator.control("GET", "state")
    for provider in PROVIDERS:
        path = "%s/%s" % (prefix, provider)
        read = vault.secrets.kv.v2.read_secret_version(path=path, mount_point="secret", raise_on_deleted_version=True)
        new_value = read["data"]["data"]["api_key"]
        secrets["the new %s key" % provider] = new_value
        assert read["data"]["metadata"]["version"] == 2
        assert new_value != old[provider]["value"]
        keys = {k["id"]: k for k in state[provider]["keys"] if k.get("kind") == "api"}
        live = [k for k in keys.values() if k["status"] == "active" and k["fingerprint"] == fp(new_value)]
        assert len(live) == 1, keys
        assert keys[old[provider]["id"]]["status"] == {"anthropic": "inactive", "openai": "active", "openrouter": "disabled"}[provider]
    assert secrets["the new anthropic key"] == console["value"]
    assert "stage" not in vault.secrets.kv.v2.read_secret_metadata(path=prefix + "/openai", mount_point="secret")["data"]["custom_metadata"]

    # The credential files' paths are in the job's command record, their contents are not.
    command = json.loads(rotate.read("command"))
    env_dir = os.path.join(os.path.dirname(os.path.dirname(rotate.artifacts)), "env")
    for name in ("VAULT_TOKEN_FILE", "ANTHROPIC_ADMIN_KEY_FILE", "OPENAI_ADMIN_KEY_FILE", "OPENROUTER_MANAGEMENT_KEY_FILE"):
        assert os.path.dirname(command["env"][name]) == env_dir and os.path.isfile(command["env"][name]), name
    assert "VAULT_TOKEN" not in command["env"] and "ANTHROPIC_ADMIN_KEY" not in command["env"]

    # Workflow hand-off: one entry per key with ids, fingerprints, stage and timing, no value.
    handed = rotate.artifacts_data()
    assert set(handed) == {"apikeys_rotation"}, handed
    assert set(handed["apikeys_rotation"]) == set(hosts)
    previous_state = {"anthropic": "disabled", "openai": "active", "openrouter": "disabled"}
    for provider in PROVIDERS:
        entry = handed["apikeys_rotation"]["awx-" + provider]
        record = vault.secrets.kv.v2.read_secret_metadata(path="%s/%s" % (prefix, provider), mount_point="secret")["data"]
        record = record["custom_metadata"]
        assert_handed_timing(entry)
        assert {k: v for k, v in entry.items() if k not in TIMING} == {
            "provider": provider, "vault_path": "secret/%s/%s" % (prefix, provider), "stage": "done", "result": "rotated",
            "changed": True, "check_mode": False, "key_id": record["key_id"], "fingerprint": fp(secrets["the new %s key" % provider]),
            "vault_version": 2, "previous_key_id": old[provider]["id"], "previous_fingerprint": fp(old[provider]["value"]),
            "previous_state": previous_state[provider], "rotation_id": record["rotation_id"],
            "rotation_started_at": record["rotation_started_at"]}, entry

    # 2. The schedule runs the same job template daily with no survey answers: nothing is due,
    # nothing changes, and the providers see no request at all.
    hits = emulator_hits(emulator)
    scheduled = job("rotate-2").run("rotate.yml", inventory, {}, collections_path, home)
    assert scheduled.rc == 0 and scheduled.status == "successful", scheduled
    assert scheduled.stats().get("changed", {}) == {}, scheduled
    for host, entry in scheduled.artifacts_data()["apikeys_rotation"].items():
        before = handed["apikeys_rotation"][host]
        assert entry["result"] == "up_to_date" and entry["stage"] == "none" and entry["changed"] is False, entry
        assert {k: entry[k] for k in KEY_FIELDS} == {k: before[k] for k in KEY_FIELDS}, (entry, before)
    assert emulator_hits(emulator) == hits, "a scheduled run inside max_age called a provider"
    for provider in PROVIDERS:
        meta_data = vault.secrets.kv.v2.read_secret_metadata(path="%s/%s" % (prefix, provider), mount_point="secret")["data"]
        assert meta_data["current_version"] == 2

    # 3. The probe job template finds every key live and changes nothing.
    probe = job("probe-1").run("probe.yml", inventory, {}, collections_path, home)
    assert probe.rc == 0 and probe.status == "successful", probe
    for host in hosts:
        assert "Probe | probe the key at the provider" in probe.ok_tasks(host), probe
    assert probe.stats().get("changed", {}) == {}
    probed = probe.artifacts_data()
    assert set(probed) == {"apikeys_rotation_probe"} and set(probed["apikeys_rotation_probe"]) == set(hosts), probed
    for host, entry in probed["apikeys_rotation_probe"].items():
        assert entry["live"] is True and entry["reason"] == "" and entry["unfinished_stage"] == "", entry
        assert (entry["key_id"], entry["fingerprint"]) == (handed["apikeys_rotation"][host]["key_id"],
                                                           handed["apikeys_rotation"][host]["fingerprint"])

    # No secret value in any file AWX keeps of the three jobs.
    files = sum(assert_no_secret_in_artifacts(r.artifacts, secrets) for r in (rotate, scheduled, probe))
    assert files > 50


def assert_handed_timing(entry: dict) -> None:
    for name in ("started_at", "finished_at"):
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", entry[name]), entry
    assert entry["started_at"] <= entry["finished_at"] and 0 <= float(entry["duration_seconds"]) < 900, entry


def test_role_hands_results_to_workflows(openbao, emulator, collections_path, tmp_path):
    """What each entry point hands to the next nodes of an AWX workflow (set_stats, the stats event's
    artifact_data): check mode, rotate, a probe that fails, rollback and cleanup of one key, each job
    getting the artifacts of the jobs before it as extra variables, the way a workflow passes them."""
    vault = hvac.Client(url=openbao.addr, token=openbao.root_token)
    prefix = "awx-" + uuid.uuid4().hex[:8]
    path = prefix + "/openrouter"
    host = "flow-openrouter"
    token = limited_token(vault, prefix)
    admin = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "admin"})["value"]
    old = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "initial"})
    vault.secrets.kv.v2.create_or_update_secret(path=path, secret={"api_key": old["value"]}, mount_point="secret")
    inventory = {"api_keys": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(BIN_DIR, "python")},
                              "hosts": {host: dict(FAST, provider="openrouter", vault_path=path, grace_period="0s",
                                                   rotate_check_retries=1)}}}
    home = str(tmp_path / "home")
    os.makedirs(home)
    secrets = {"the Vault token": token, "the admin key": admin, "the old key": old["value"]}
    ancestors: t.Dict[str, t.Any] = {}

    def job(ident: str, playbook: str, cmdline: str = "", template_vars: t.Optional[dict] = None) -> JobResult:
        """``template_vars``: the job template's own extra variables (AWX merges the ancestors' artifacts into them)."""
        new = Job(str(tmp_path / "jobs"), ident)
        new.credential("vault_token.yml", {"vault_addr": openbao.addr, "vault_token": token})
        new.credential("openrouter_management_key.yml", {"openrouter_management_key": admin,
                                                         "openrouter_base_url": emulator.base_url("openrouter")})
        result = new.run(playbook, inventory, dict(template_vars or {}, **ancestors), collections_path, home, cmdline=cmdline)
        ancestors.update(result.artifacts_data())
        return result

    def version() -> int:
        return vault.secrets.kv.v2.read_secret_metadata(path=path, mount_point="secret")["data"]["current_version"]

    # Check mode (a job template of type check): the plan, handed on as such; nothing changes.
    planned = job("check-1", "rotate.yml", cmdline="--check -e rotate_force=true")
    assert planned.rc == 0, planned
    entry = planned.artifacts_data()["apikeys_rotation"][host]
    assert_handed_timing(entry)
    assert (entry["result"], entry["stage"], entry["changed"], entry["check_mode"]) == ("would_rotate", "plan", False, True), entry
    assert (entry["key_id"], entry["fingerprint"], entry["vault_version"]) == (old["id"], fp(old["value"]), 1), entry
    assert version() == 1

    rotated = job("rotate-1", "rotate.yml", cmdline="-e rotate_force=true")
    assert rotated.rc == 0 and rotated.status == "successful", rotated
    new_value = vault.secrets.kv.v2.read_secret_version(path=path, mount_point="secret",
                                                        raise_on_deleted_version=True)["data"]["data"]["api_key"]
    secrets["the new key"] = new_value
    entry = rotated.artifacts_data()["apikeys_rotation"][host]
    new_id = entry["key_id"]
    assert (entry["result"], entry["stage"], entry["changed"], entry["check_mode"]) == ("rotated", "done", True, False), entry
    assert (entry["fingerprint"], entry["vault_version"], entry["previous_key_id"], entry["previous_state"]) == (
        fp(new_value), 2, old["id"], "disabled"), entry
    assert new_id and new_id != old["id"]

    # The new key stops working: the probe job fails, and its failure branch learns which key and why.
    status = http_json("PATCH", emulator.base_url("openrouter") + "/keys/" + new_id, {"disabled": True},
                       headers={"Authorization": "Bearer " + admin})[0]
    assert status == 200
    probed = job("probe-1", "probe.yml")
    assert probed.rc != 0 and probed.status == "failed", probed
    entry = probed.artifacts_data()["apikeys_rotation_probe"][host]
    assert (entry["live"], entry["provider_live"], entry["key_id"], entry["fingerprint"]) == (False, False, new_id, fp(new_value)), entry
    assert entry["reason"].startswith("provider: "), entry
    # The next node gets every ancestor's artifacts: the rotation's and the probe's.
    assert set(ancestors) == {"apikeys_rotation", "apikeys_rotation_probe"}

    # The rollback node of docs/awx.md: its job template names the keys to roll back from the
    # probe's artifacts (the keys found not live), so the workflow branches per key.
    with open(os.path.join(REPO_ROOT, "docs", "awx.md"), encoding="utf-8") as handle:
        assert 'rotate_hosts: "%s"' % ROLLBACK_DEAD_KEYS in handle.read()
    rolled = job("rollback-1", "rollback.yml", template_vars={"rotate_hosts": ROLLBACK_DEAD_KEYS})
    assert rolled.rc == 0 and rolled.status == "successful", rolled
    entry = rolled.artifacts_data()["apikeys_rotation_rollback"][host]
    assert_handed_timing(entry)
    assert {k: entry[k] for k in ("result", "changed", "key_id", "fingerprint", "vault_version", "previous_key_id",
                                  "previous_fingerprint", "re_enabled")} == {
        "result": "rolled_back", "changed": True, "key_id": old["id"], "fingerprint": fp(old["value"]), "vault_version": 3,
        "previous_key_id": new_id, "previous_fingerprint": fp(new_value), "re_enabled": True}, entry

    cleaned = job("cleanup-1", "cleanup.yml")
    assert cleaned.rc == 0 and cleaned.status == "successful", cleaned
    entry = cleaned.artifacts_data()["apikeys_rotation_cleanup"][host]
    assert (entry["result"], entry["deleted_key_ids"], entry["key_id"], entry["previous_state"]) == (
        "deleted", [new_id], old["id"], "deleted"), entry
    assert set(ancestors) == {"apikeys_rotation", "apikeys_rotation_probe", "apikeys_rotation_rollback", "apikeys_rotation_cleanup"}

    # Ids, fingerprints, stage and timing only: no value in what was handed on, nor anywhere else AWX keeps.
    dumped = json.dumps(ancestors)
    for label, secret in secrets.items():
        assert secret not in dumped and secret[-20:] not in dumped, label
    for result in (planned, rotated, probed, rolled, cleaned):
        assert_no_secret_in_artifacts(result.artifacts, secrets)


def test_probe_job_with_approle_credential(openbao, emulator, collections_path, tmp_path):
    """The probe job template with the Vault AppRole credential type instead of a token."""
    with open(os.path.join(MODULE_UTILS, "vault.py"), encoding="utf-8") as handle:
        if '"VAULT_AUTH_METHOD"' not in handle.read():
            pytest.skip("the Vault modules do not read VAULT_AUTH_METHOD yet, so the AppRole credential type cannot select its login")
    vault = hvac.Client(url=openbao.addr, token=openbao.root_token)
    prefix = "awx-" + uuid.uuid4().hex[:8]
    mount = "approle-" + prefix
    vault.sys.enable_auth_method("approle", path=mount)
    read_only = 'path "secret/data/%(p)s/*" { capabilities = ["read"] }\npath "secret/metadata/%(p)s/*" { capabilities = ["read"] }'
    vault.sys.create_or_update_policy(name=prefix, policy=read_only % {"p": prefix})
    vault.auth.approle.create_or_update_approle(role_name="probe", token_policies=[prefix], mount_point=mount)
    role_id = vault.auth.approle.read_role_id(role_name="probe", mount_point=mount)["data"]["role_id"]
    secret_id = vault.auth.approle.generate_secret_id(role_name="probe", mount_point=mount)["data"]["secret_id"]
    key = emulator.control("POST", "keys", {"provider": "openrouter", "kind": "api", "name": "initial"})
    vault.secrets.kv.v2.create_or_update_secret(path=prefix + "/openrouter", secret={"api_key": key["value"]}, mount_point="secret")
    inventory = {"api_keys": {"vars": {"ansible_connection": "local", "ansible_python_interpreter": os.path.join(BIN_DIR, "python")},
                              "hosts": {"awx-openrouter": dict(FAST, provider="openrouter", vault_path=prefix + "/openrouter")}}}
    job = Job(str(tmp_path / "jobs"), "probe-approle")
    job.credential("vault_approle.yml", {"vault_addr": openbao.addr, "vault_role_id": role_id, "vault_secret_id": secret_id,
                                         "vault_auth_mount_point": mount})
    job.credential("openrouter_management_key.yml", {"openrouter_management_key": "sk-or-v1-" + "0" * 64,
                                                     "openrouter_base_url": emulator.base_url("openrouter")})
    home = str(tmp_path / "home")
    os.makedirs(home)
    result = job.run("probe.yml", inventory, {}, collections_path, home)
    assert result.rc == 0 and result.status == "successful", result
    assert "Probe | probe the key at the provider" in result.ok_tasks("awx-openrouter"), result
    status, _body = http_json("GET", emulator.base_url("openrouter") + "/key", headers={"Authorization": "Bearer " + key["value"]})
    assert status == 200
    assert_no_secret_in_artifacts(result.artifacts, {"the AppRole secret_id": secret_id, "the key": key["value"]})
