# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vault_secret_write and vault_secret_info through real ansible-playbook against a real OpenBao.

Every side effect is checked with plain hvac, never with the modules under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
import uuid

import hvac
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from harness import assert_no_secret
from harness import OpenBaoDev, free_port, http_json

WRITE = "apikeys.rotation.vault_secret_write"
INFO = "apikeys.rotation.vault_secret_info"


def root_client(server) -> hvac.Client:
    return hvac.Client(url=server.addr, token=server.root_token)


def conn(server, **extra):
    args = {"url": server.addr, "token": server.root_token}
    args.update(extra)
    return args


def play(tasks, **extra):
    body = {"hosts": "localhost", "gather_facts": False, "tasks": tasks}
    body.update(extra)
    return [body]


def task(name, module, args, **extra):
    body = {"name": name, module: args}
    body.update(extra)
    return body


def read_latest(client, path, mount="secret"):
    return client.secrets.kv.v2.read_secret_version(path=path, mount_point=mount, raise_on_deleted_version=True)["data"]


def read_meta(client, path, mount="secret"):
    return client.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount)["data"]


def fingerprint(value):
    """Computed here, independently of the collection's own helper."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


def canary(label):
    return "canary-%s-%s" % (label, secrets.token_hex(16))


def signed_jwt(key, claims):
    """An RS256 JWT, built by hand (no JWT library needed)."""
    def b64(raw):
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")

    signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return signing_input + "." + b64(signature)


def no_traceback(result):
    assert "Traceback" not in result.output, result


def test_check_mode_then_write_then_idempotent(openbao, ansible, kv_path):
    """Check mode plans version N+1 and writes nothing; the write makes N+1; the same write again changes nothing."""
    client = root_client(openbao)
    client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": "old-value-1"}, mount_point="secret")
    new = canary("new")
    args = conn(openbao, path=kv_path, data={"api_key": new, "org": "acme"})
    result = ansible.run_playbook(play([
        task("plan", WRITE, args, check_mode=True),
        task("write", WRITE, args),
        task("again", WRITE, args),
    ]), diff=True)
    assert result.rc == 0, result
    plan = result.result("plan")["result"]
    write = result.result("write")["result"]
    again = result.result("again")["result"]

    # the plan is the real one, and check mode wrote nothing (else "write" would be version 3 or unchanged)
    assert plan["changed"] is True and plan["version"] == 2 and plan["previous_version"] == 1
    assert plan["diff"]["before"]["data_keys"] == ["api_key"]
    assert plan["diff"]["after"]["data_keys"] == ["api_key", "org"]
    assert plan["diff"]["after"]["fingerprints"]["api_key"] == fingerprint(new)
    assert plan["diff"]["before"]["version"] == 1 and plan["diff"]["after"]["version"] == 2

    assert write["changed"] is True and write["version"] == 2 and write["created"] is False
    assert write["fingerprints"] == {"api_key": fingerprint(new), "org": fingerprint("acme")}
    assert again["changed"] is False and again["version"] == 2 and again["previous_version"] == 2

    meta = read_meta(client, kv_path)
    assert meta["current_version"] == 2
    assert read_latest(client, kv_path)["data"] == {"api_key": new, "org": "acme"}
    assert fingerprint(new) in result.output, "diff mode shows the fingerprints"
    assert_no_secret(result.output, new)
    assert_no_secret(json.dumps(result.events), new)


def test_first_write_creates_secret(openbao, ansible, kv_path):
    value = canary("first")
    result = ansible.run_playbook(play([task("create", WRITE, conn(openbao, path=kv_path, data={"api_key": value}))]))
    assert result.rc == 0, result
    created = result.result("create")["result"]
    assert created["changed"] is True and created["created"] is True
    assert created["version"] == 1 and created["previous_version"] is None
    assert read_latest(root_client(openbao), kv_path)["data"] == {"api_key": value}


def test_custom_metadata_merges_and_null_removes(openbao, ansible, kv_path):
    client = root_client(openbao)
    client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": "v1"}, mount_point="secret")
    client.secrets.kv.v2.update_metadata(path=kv_path, custom_metadata={"provider": "openai", "stage": "creating"},
                                         mount_point="secret")
    args = conn(openbao, path=kv_path, custom_metadata={"stage": None, "key_id": "key_123"})
    result = ansible.run_playbook(play([
        task("merge", WRITE, args),
        task("again", WRITE, args),
        task("not a string", WRITE, conn(openbao, path=kv_path, custom_metadata={"max_age": 30}), ignore_errors=True),
        task("data not a string", WRITE, conn(openbao, path=kv_path, data={"port": 8080}), ignore_errors=True),
    ]), diff=True)
    assert result.rc == 0, result
    merge = result.result("merge")["result"]
    assert merge["changed"] is True
    assert merge["custom_metadata"] == {"provider": "openai", "key_id": "key_123"}
    assert merge["version"] == 1, "a metadata-only change must not write a new version"
    assert merge["diff"]["before"]["custom_metadata"] == {"provider": "openai", "stage": "creating"}
    assert result.result("again")["result"]["changed"] is False

    bad_meta = result.result("not a string")
    assert bad_meta["event"] == "failed"
    assert "custom_metadata.max_age must be a string" in bad_meta["result"]["msg"]
    bad_data = result.result("data not a string")
    assert bad_data["event"] == "failed" and "data.port must be a string" in bad_data["result"]["msg"]

    meta = read_meta(client, kv_path)
    assert meta["custom_metadata"] == {"provider": "openai", "key_id": "key_123"}
    assert meta["current_version"] == 1
    no_traceback(result)


def test_stale_cas_fails_clearly_and_writes_nothing(openbao, ansible, kv_path):
    client = root_client(openbao)
    for value in ("v1", "v2", "v3"):
        client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": value}, mount_point="secret")
    attempt = canary("stale")
    result = ansible.run_playbook(play([
        task("stale", WRITE, conn(openbao, path=kv_path, data={"api_key": attempt}, cas=2,
                                  custom_metadata={"stage": "storing"}), ignore_errors=True),
        task("must not exist", WRITE, conn(openbao, path=kv_path, data={"api_key": attempt}, cas=0), ignore_errors=True),
        task("fresh", WRITE, conn(openbao, path=kv_path, data={"api_key": "v4"}, cas=3)),
    ]), verbosity=4)
    assert result.rc == 0, result
    stale = result.result("stale")
    assert stale["event"] == "failed"
    msg = stale["result"]["msg"]
    assert "Check-and-set conflict on secret/%s" % kv_path in msg
    assert "expected version 2, but Vault holds version 3" in msg and "nothing was written" in msg
    assert stale["result"]["vault_error"] == "cas_conflict" and stale["result"]["cas_conflict"] is True
    assert stale["result"]["expected_version"] == 2 and stale["result"]["current_version"] == 3
    zero = result.result("must not exist")["result"]
    assert "expected no version (a new secret, cas=0), but Vault holds version 3" in zero["msg"]
    assert result.result("fresh")["result"]["version"] == 4

    meta = read_meta(client, kv_path)
    assert meta["current_version"] == 4
    assert not meta["custom_metadata"], "a failed write must not touch custom_metadata either"
    assert read_latest(client, kv_path)["data"] == {"api_key": "v4"}
    no_traceback(result)
    assert_no_secret(result.output, attempt)
    assert_no_secret(json.dumps(result.events), attempt)


def test_data_from_version_restores_and_refuses_deleted(openbao, ansible, kv_path):
    client = root_client(openbao)
    for value in ("old-key", "new-key", "gone-key", "deleted-key"):
        client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": value}, mount_point="secret")
    client.secrets.kv.v2.destroy_secret_versions(path=kv_path, versions=[3], mount_point="secret")
    client.secrets.kv.v2.delete_secret_versions(path=kv_path, versions=[4], mount_point="secret")
    result = ansible.run_playbook(play([
        task("deleted source", WRITE, conn(openbao, path=kv_path, data_from_version=4), ignore_errors=True),
        task("destroyed source", WRITE, conn(openbao, path=kv_path, data_from_version=3), ignore_errors=True),
        task("future source", WRITE, conn(openbao, path=kv_path, data_from_version=9), ignore_errors=True),
        task("rollback plan", WRITE, conn(openbao, path=kv_path, data_from_version=1), check_mode=True),
        task("rollback", WRITE, conn(openbao, path=kv_path, data_from_version=1)),
        task("rollback again", WRITE, conn(openbao, path=kv_path, data_from_version=1)),
    ]), diff=True)
    assert result.rc == 0, result
    deleted = result.result("deleted source")["result"]
    assert deleted["vault_error"] == "version_deleted"
    assert "version 4 of secret/%s is deleted" % kv_path in deleted["msg"] and "Nothing was written" in deleted["msg"]
    destroyed = result.result("destroyed source")["result"]
    assert destroyed["vault_error"] == "version_destroyed" and "is destroyed" in destroyed["msg"]
    assert "no such version (the current version is 4)" in result.result("future source")["result"]["msg"]

    plan = result.result("rollback plan")["result"]
    assert plan["changed"] is True and plan["version"] == 5
    rollback = result.result("rollback")["result"]
    assert rollback["changed"] is True and rollback["version"] == 5 and rollback["previous_version"] == 4
    assert rollback["fingerprints"] == {"api_key": fingerprint("old-key")}
    again = result.result("rollback again")["result"]
    assert again["changed"] is False and again["version"] == 5

    assert read_meta(client, kv_path)["current_version"] == 5
    assert read_latest(client, kv_path)["data"] == {"api_key": "old-key"}
    no_traceback(result)
    assert_no_secret(result.output, "old-key", "new-key")


def test_approle_login_and_module_defaults_group(openbao, ansible, kv_path):
    client = root_client(openbao)
    mount = "approle-" + uuid.uuid4().hex[:8]
    policy = "rw-" + uuid.uuid4().hex[:8]
    client.sys.enable_auth_method("approle", path=mount)
    client.sys.create_or_update_policy(policy, (
        'path "secret/data/%(p)s" { capabilities = ["create", "read", "update"] }\n'
        'path "secret/metadata/%(p)s" { capabilities = ["create", "read", "update"] }\n') % {"p": kv_path})
    client.auth.approle.create_or_update_approle("rotator", token_policies=[policy], mount_point=mount)
    role_id = client.auth.approle.read_role_id("rotator", mount_point=mount)["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("rotator", mount_point=mount)["data"]["secret_id"]
    value = canary("approle")
    defaults = {"url": openbao.addr, "auth_method": "approle", "auth_mount_point": mount,
                "role_id": role_id, "secret_id": secret_id, "path": kv_path}
    result = ansible.run_playbook(play([
        task("write", WRITE, {"data": {"api_key": value}, "custom_metadata": {"provider": "openai"}}),
        task("read", INFO, {}),
        task("bad secret_id", WRITE, {"secret_id": "not-the-secret-id", "data": {"api_key": "x"}}, ignore_errors=True),
        task("no such auth mount", INFO, {"auth_mount_point": "nowhere"}, ignore_errors=True),
    ], module_defaults={"group/apikeys.rotation.vault": defaults}))
    assert result.rc == 0, result
    assert result.result("write")["result"]["version"] == 1
    info = result.result("read")["result"]
    assert info["exists"] is True and info["fingerprints"] == {"api_key": fingerprint(value)}
    assert info["custom_metadata"] == {"provider": "openai"}
    bad = result.result("bad secret_id")["result"]
    assert bad["vault_error"] == "auth_failed"
    assert "Login failed: could not log in with AppRole at auth/%s" % mount in bad["msg"]
    assert "invalid role or secret ID" in bad["msg"]
    missing = result.result("no such auth mount")["result"]
    assert missing["vault_error"] == "auth_failed" and "enabled at 'auth/nowhere/'" in missing["msg"]

    assert read_latest(client, kv_path)["data"] == {"api_key": value}
    assert read_meta(client, kv_path)["current_version"] == 1
    no_traceback(result)
    assert_no_secret(result.output, value, secret_id)


def test_jwt_login_from_env_files_and_namespace(openbao, ansible, kv_path, tmp_path):
    """JWT login with the token and role from the environment; a write inside a namespace."""
    client = root_client(openbao)
    mount = "jwt-" + uuid.uuid4().hex[:8]
    policy = "jwt-" + uuid.uuid4().hex[:8]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    client.sys.enable_auth_method("jwt", path=mount)
    client.auth.jwt.configure(jwt_validation_pubkeys=[public_pem], path=mount)
    client.sys.create_or_update_policy(policy, 'path "secret/data/%(p)s" { capabilities = ["create", "read", "update"] }\n'
                                       % {"p": kv_path})
    client.auth.jwt.create_role("ci", allowed_redirect_uris=[], role_type="jwt", bound_audiences=["vault"],
                                user_claim="sub", token_policies=[policy], path=mount)
    now = int(time.time())
    token = signed_jwt(key, {"sub": "ci-job", "aud": "vault", "iat": now, "nbf": now - 5, "exp": now + 300})
    expired = signed_jwt(key, {"sub": "ci-job", "aud": "vault", "iat": now - 600, "nbf": now - 600, "exp": now - 300})
    jwt_file = tmp_path / "jwt"
    jwt_file.write_text(token)

    namespace = "ns" + uuid.uuid4().hex[:8]
    client.adapter.post("/v1/sys/namespaces/" + namespace)
    in_namespace = hvac.Client(url=openbao.addr, token=openbao.root_token, namespace=namespace)
    in_namespace.sys.enable_secrets_engine("kv", path="secret", options={"version": "2"})

    value = canary("jwt")
    result = ansible.run_playbook(play([
        task("jwt write", WRITE, {"auth_method": "jwt", "auth_mount_point": mount, "path": kv_path,
                                  "data": {"api_key": value}}),
        task("expired jwt", WRITE, {"auth_method": "jwt", "auth_mount_point": mount, "jwt": expired, "path": kv_path,
                                    "data": {"api_key": "other"}}, ignore_errors=True),
        task("namespace write", WRITE, conn(openbao, namespace=namespace, path=kv_path, data={"api_key": value})),
    ]), env={"VAULT_ADDR": openbao.addr, "VAULT_JWT_FILE": str(jwt_file), "VAULT_JWT_ROLE": "ci"})
    assert result.rc == 0, result
    assert result.result("jwt write")["result"]["version"] == 1
    expired_result = result.result("expired jwt")["result"]
    assert expired_result["vault_error"] == "auth_failed"
    assert "Login failed: could not log in with JWT role 'ci' at auth/%s" % mount in expired_result["msg"]
    assert result.result("namespace write")["result"]["created"] is True

    assert read_latest(client, kv_path)["data"] == {"api_key": value}
    assert read_latest(in_namespace, kv_path)["data"] == {"api_key": value}
    no_traceback(result)
    assert_no_secret(result.output, value, token, expired)


def test_limited_token_without_default_policy(openbao, ansible, kv_path, tmp_path):
    """A token that cannot look itself up still works; elsewhere it gets a permission error naming the path."""
    client = root_client(openbao)
    policy = "only-" + uuid.uuid4().hex[:8]
    client.sys.create_or_update_policy(policy, (
        'path "secret/data/%(p)s" { capabilities = ["create", "read", "update"] }\n'
        'path "secret/metadata/%(p)s" { capabilities = ["create", "read", "update"] }\n') % {"p": kv_path})
    token = client.auth.token.create(policies=[policy], no_default_policy=True, ttl="10m")["auth"]["client_token"]
    limited = hvac.Client(url=openbao.addr, token=token)
    assert limited.is_authenticated() is False, "the premise: this token cannot look itself up"
    token_file = tmp_path / "vault-token"
    token_file.write_text(token + "\n")
    other = kv_path + "-other"
    value = canary("limited")
    result = ansible.run_playbook(play([
        task("write own", WRITE, {"path": kv_path, "data": {"api_key": value}}),
        task("read own", INFO, {"path": kv_path}),
        task("write other", WRITE, {"path": other, "data": {"api_key": value}}, ignore_errors=True),
        task("read other", INFO, {"path": other}, ignore_errors=True),
    ]), env={"VAULT_ADDR": openbao.addr, "VAULT_TOKEN_FILE": str(token_file)})
    assert result.rc == 0, result
    assert result.result("write own")["result"]["version"] == 1
    assert result.result("read own")["result"]["fingerprints"] == {"api_key": fingerprint(value)}
    denied = result.result("write other")["result"]
    assert denied["vault_error"] == "permission_denied"
    assert "Permission denied" in denied["msg"]
    assert "'read' capability on the path 'secret/data/%s'" % other in denied["msg"]
    denied_info = result.result("read other")["result"]
    assert "'read' capability on the path 'secret/metadata/%s'" % other in denied_info["msg"]

    assert read_latest(client, kv_path)["data"] == {"api_key": value}
    with pytest.raises(hvac.exceptions.InvalidPath):
        read_meta(client, other)
    no_traceback(result)
    assert_no_secret(result.output, value, token)


def test_kv1_and_missing_mounts_are_named(openbao, ansible, kv_path):
    client = root_client(openbao)
    kv1 = "kv1-" + uuid.uuid4().hex[:8]
    client.sys.enable_secrets_engine("kv", path=kv1, options={"version": "1"})
    result = ansible.run_playbook(play([
        task("write kv1", WRITE, conn(openbao, mount=kv1, path=kv_path, data={"api_key": "x"}), ignore_errors=True),
        task("info kv1", INFO, conn(openbao, mount=kv1, path=kv_path), ignore_errors=True),
        task("no mount", WRITE, conn(openbao, mount="nomount", path=kv_path, data={"api_key": "x"}), ignore_errors=True),
        task("inside a mount", INFO, conn(openbao, mount="secret/apps", path=kv_path), ignore_errors=True),
    ]))
    assert result.rc == 0, result
    for name in ("write kv1", "info kv1"):
        failed = result.result(name)
        assert failed["event"] == "failed"
        assert failed["result"]["vault_error"] == "not_kv2"
        assert "The secrets engine at '%s/' is KV version 1, not KV version 2" % kv1 in failed["result"]["msg"]
    missing = result.result("no mount")["result"]
    assert missing["vault_error"] == "mount_missing" and "No secrets engine is mounted at 'nomount/'" in missing["msg"]
    inside = result.result("inside a mount")["result"]
    assert "lies inside the 'secret/' mount" in inside["msg"]
    with pytest.raises(hvac.exceptions.InvalidPath):
        client.secrets.kv.v1.list_secrets(path="", mount_point=kv1)  # nothing was written to the KV v1 mount
    no_traceback(result)


def test_sealed_and_unreachable_servers(ansible, kv_path, tmp_path):
    # A private dev server, sealed for good (0.2 s to start; a raft server takes several seconds).
    server = OpenBaoDev(str(tmp_path / "sealed-openbao")).start()
    try:
        sealing = http_json("PUT", server.addr + "/v1/sys/seal", headers={"X-Vault-Token": server.root_token})
        assert sealing[0] == 204 and http_json("GET", server.addr + "/v1/sys/health")[0] == 503
        unreachable = "http://127.0.0.1:%d" % free_port()
        result = ansible.run_playbook(play([
            task("sealed", WRITE, conn(server, path=kv_path, data={"api_key": "x"}), ignore_errors=True),
            task("unreachable", INFO, {"url": unreachable, "token": "unused-token-value", "path": kv_path, "retries": 1},
                 ignore_errors=True),
        ]))
    finally:
        server.stop()
    assert result.rc == 0, result
    sealed = result.result("sealed")["result"]
    assert sealed["vault_error"] == "sealed"
    assert "The Vault server at %s is sealed" % server.addr in sealed["msg"] and "Unseal it" in sealed["msg"]
    down = result.result("unreachable")["result"]
    assert down["vault_error"] == "unreachable"
    assert "Cannot reach the Vault server at %s (connection refused)" % unreachable in down["msg"]
    assert "(after 2 attempts)" in down["msg"]
    no_traceback(result)


def test_info_fingerprints_versions_and_data_on_request(openbao, ansible, kv_path):
    client = root_client(openbao)
    first, second = canary("info1"), canary("info2")
    client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": first}, mount_point="secret")
    client.secrets.kv.v2.create_or_update_secret(path=kv_path, secret={"api_key": second, "org": "acme"},
                                                 mount_point="secret")
    client.secrets.kv.v2.update_metadata(path=kv_path, custom_metadata={"provider": "anthropic"}, mount_point="secret")
    result = ansible.run_playbook(play([
        task("latest", INFO, conn(openbao, path=kv_path)),
        task("older", INFO, conn(openbao, path=kv_path, version=1)),
        task("absent", INFO, conn(openbao, path=kv_path + "-absent")),
        task("missing version", INFO, conn(openbao, path=kv_path, version=7), ignore_errors=True),
        task("data without no_log", INFO, conn(openbao, path=kv_path, return_data=True), ignore_errors=True),
        task("data", INFO, conn(openbao, path=kv_path, return_data=True), register="secret", no_log=True),
        {"name": "use data", "no_log": True,
         "ansible.builtin.assert": {"that": ["secret.data.api_key == %s" % json.dumps(second),
                                             "secret.data.org == 'acme'"]}},
    ]), check=True)
    assert result.rc == 0, result
    latest = result.result("latest")["result"]
    assert latest["exists"] is True and latest["changed"] is False
    assert latest["version"] == 2 and latest["current_version"] == 2 and latest["oldest_version"] == 1
    assert sorted(latest["versions"]) == ["1", "2"] and latest["versions"]["1"]["destroyed"] is False
    assert latest["data_keys"] == ["api_key", "org"]
    assert latest["fingerprints"] == {"api_key": fingerprint(second), "org": fingerprint("acme")}
    assert latest["custom_metadata"] == {"provider": "anthropic"}
    assert latest["created_time"] and latest["updated_time"]
    assert "data" not in latest
    older = result.result("older")["result"]
    assert older["version"] == 1 and older["fingerprints"] == {"api_key": fingerprint(first)}
    absent = result.result("absent")["result"]
    assert absent["exists"] is False and absent["version"] is None and absent["fingerprints"] == {}
    assert "Version 7 of secret/%s does not exist" % kv_path in result.result("missing version")["result"]["msg"]
    refused = result.result("data without no_log")["result"]
    assert "set no_log: true on this task" in refused["msg"]
    assert result.result("use data")["event"] == "ok"
    assert_no_secret(result.output, first, second)
    assert_no_secret(json.dumps(result.events), first, second)


def test_canary_never_leaks_at_high_verbosity(openbao, ansible, kv_path):
    """-vvvv, diff mode, no_log tasks, a failing CAS write and a data read: the value appears nowhere."""
    client = root_client(openbao)
    first, second, third = canary("c1"), canary("c2"), canary("c3")
    base = conn(openbao, path=kv_path)
    result = ansible.run_playbook(play([
        task("write", WRITE, dict(base, data={"api_key": first}), no_log=True),
        task("stale cas", WRITE, dict(base, data={"api_key": second}, cas=0), no_log=True, ignore_errors=True),
        task("rewrite", WRITE, dict(base, data={"api_key": third}, custom_metadata={"stage": "done"})),
        task("rollback", WRITE, dict(base, data_from_version=1)),
        task("read", INFO, dict(base, return_data=True), no_log=True, register="stored"),
    ]), verbosity=4, diff=True)
    assert result.rc == 0, result
    assert result.result("stale cas")["event"] == "failed"
    assert result.result("rollback")["result"]["version"] == 3
    meta = read_meta(client, kv_path)
    assert meta["current_version"] == 3
    assert read_latest(client, kv_path)["data"] == {"api_key": first}
    assert_no_secret(result.output, first, second, third)
    assert_no_secret(json.dumps(result.events), first, second, third)
    no_traceback(result)
