# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure logic of module_utils/vault.py: no server, no network."""

from __future__ import annotations

import hashlib
import json
import os
import pathlib

import pytest

hvac_exceptions = pytest.importorskip("hvac.exceptions")
requests = pytest.importorskip("requests")

# pylint: disable=wrong-import-position
from ansible_collections.apikeys.rotation.plugins.module_utils import vault  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError  # noqa: E402
from ansible_collections.apikeys.rotation.plugins.module_utils.vault import (  # noqa: E402
    AUTH_METHODS, AppRoleAuth, JwtAuth, Op, SecretVersion, TokenAuth, VaultConnection, VaultError,
    backoff_delay, cas_conflict_error, describe_secret, error_texts, fingerprint_map, is_retryable, map_error,
    merge_custom_metadata, normalize_path, secret_view, select_auth, validate_custom_metadata, validate_data,
    version_state, vault_argument_spec, write_secret,
)

URL = "http://vault.test:8200"
READ_DATA = Op("read the latest version of the secret secret/apps/x", "secret/data/apps/x", "read")


def fp(value):
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


# --- pure helpers ---------------------------------------------------------------------

def test_fingerprint_map_and_view_never_hold_values():
    data = {"api_key": "sk-secret-value-123", "org": "acme"}
    assert fingerprint_map(data) == {"api_key": fp("sk-secret-value-123"), "org": fp("acme")}
    view = secret_view(3, data, {"stage": "done"})
    assert view == {"version": 3, "data_keys": ["api_key", "org"], "fingerprints": fingerprint_map(data),
                    "custom_metadata": {"stage": "done"}}
    assert "sk-secret-value-123" not in json.dumps(view)
    assert secret_view(None, None, None) == {"version": None, "data_keys": [], "fingerprints": {}, "custom_metadata": {}}


def test_fingerprint_of_non_string_value_is_stable():
    assert fingerprint_map({"n": {"b": 1, "a": 2}}) == {"n": fp('{"a":2,"b":1}')}


def test_merge_custom_metadata_sets_and_removes():
    current = {"provider": "openai", "stage": "creating"}
    merged = merge_custom_metadata(current, {"stage": None, "key_id": "key_1", "absent": None})
    assert merged == {"provider": "openai", "key_id": "key_1"}
    assert current == {"provider": "openai", "stage": "creating"}, "the input is not modified"
    assert merge_custom_metadata(None, None) == {}


def test_merge_custom_metadata_key_limit():
    with pytest.raises(VaultError, match="would hold 65 keys"):
        merge_custom_metadata({"k%d" % i: "v" for i in range(64)}, {"one_more": "v"})


@pytest.mark.parametrize("changes, fragment", [
    ({"max_age": 30}, "custom_metadata.max_age must be a string (or null to remove it), got a number"),
    ({"enabled": True}, "custom_metadata.enabled must be a string (or null to remove it), got a boolean"),
    ({"tags": ["a"]}, "custom_metadata.tags must be a string (or null to remove it), got a list"),
    ({"long": "x" * 513}, "custom_metadata.long is 513 characters long"),
    ({"k" * 129: "v"}, "longer than Vault's limit of 128"),
    (["a"], "custom_metadata must be a dictionary"),
])
def test_validate_custom_metadata_names_the_key(changes, fragment):
    with pytest.raises(VaultError) as info:
        validate_custom_metadata(changes)
    assert fragment in info.value.message
    assert info.value.category == "invalid_input"


def test_validate_custom_metadata_accepts_strings_and_null():
    validate_custom_metadata({"a": "1", "b": None})
    validate_custom_metadata(None)


def test_validate_data_names_the_key_not_the_value():
    with pytest.raises(VaultError) as info:
        validate_data({"api_key": "fine", "port": 8080})
    assert info.value.message.startswith("data.port must be a string, got a number")
    assert "8080" not in info.value.message
    validate_data({"api_key": "x"})
    validate_data(None)


def test_normalize_path():
    assert normalize_path("/apps/web/openai/") == "apps/web/openai"
    for bad in ("", "/", "apps//x", "apps/../x"):
        with pytest.raises(VaultError):
            normalize_path(bad)


def test_version_state():
    versions = {
        "1": {"deletion_time": "", "destroyed": True},
        "2": {"deletion_time": "2025-01-01T00:00:00Z", "destroyed": False},
        "3": {"deletion_time": "", "destroyed": False},
    }
    assert [version_state(versions, v) for v in (1, 2, 3, 4)] == ["destroyed", "deleted", "live", "missing"]


def test_error_texts_flattens_multierror():
    assert error_texts(["1 error occurred:\n\t* permission denied\n\n"]) == ["permission denied"]
    assert error_texts(["Vault is sealed"]) == ["Vault is sealed"]
    assert error_texts(None) == [] and error_texts([]) == []


def test_backoff_is_bounded():
    delays = [backoff_delay(a) for a in range(8)]
    assert delays[:4] == [0.25, 0.5, 1.0, 2.0]
    assert max(delays) == vault.BACKOFF_MAX


@pytest.mark.parametrize("status, errors, expected", [
    (412, [], True), (429, [], True), (500, [], True), (502, [], True), (504, [], True),
    (503, ["Vault is sealed"], False), (503, ["upstream busy"], True),
    (400, [], False), (403, ["permission denied"], False), (404, [], False), (None, [], False),
])
def test_is_retryable(status, errors, expected):
    assert is_retryable(status, errors) is expected


def test_argument_spec_is_a_fresh_copy_with_env_fallbacks_and_no_log():
    spec = vault_argument_spec()
    spec["url"]["default"] = "changed"
    assert "default" not in vault_argument_spec()["url"]
    assert spec["token"]["no_log"] is True and spec["secret_id"]["no_log"] is True and spec["jwt"]["no_log"] is True
    assert spec["role_id"]["no_log"] is False
    assert spec["token"]["fallback"][1] == ["VAULT_TOKEN"]
    assert spec["url"]["fallback"][1] == ["VAULT_ADDR"]
    assert set(spec["auth_method"]["choices"]) == set(AUTH_METHODS)


# --- error mapping --------------------------------------------------------------------

def test_forbidden_names_path_and_capability():
    exc = hvac_exceptions.Forbidden(errors=["1 error occurred:\n\t* permission denied\n\n"])
    err = map_error(exc, Op("write a new version of the secret secret/apps/x", "secret/data/apps/x", "update"), URL)
    assert isinstance(err, RotationError)
    assert err.category == "permission_denied" and err.status == 403
    assert "could not write a new version of the secret secret/apps/x" in err.message
    assert "'update' capability on the path 'secret/data/apps/x'" in err.message
    assert err.details["vault_path"] == "secret/data/apps/x"


def test_invalid_token_is_said_so():
    err = map_error(hvac_exceptions.Forbidden(errors=["invalid token"]), READ_DATA, URL)
    assert "the token is invalid or expired" in err.message


def test_sealed():
    err = map_error(hvac_exceptions.VaultDown(errors=["Vault is sealed"]), READ_DATA, URL)
    assert err.category == "sealed"
    assert err.message.startswith("The Vault server at %s is sealed" % URL)


def test_missing_mount():
    exc = hvac_exceptions.InvalidPath(errors=['no handler for route "nomount/data/x". route entry not found.'])
    err = map_error(exc, Op("read it", "nomount/data/x"), URL)
    assert err.category == "mount_missing" and "No secrets engine is mounted at 'nomount/'" in err.message


def test_server_error_counts_attempts():
    err = map_error(hvac_exceptions.InternalServerError(errors=["boom"]), READ_DATA, URL, attempts=4)
    assert err.category == "server_error"
    assert "HTTP 500 (after 4 attempts); Vault said: boom" in err.message


def test_unexpected_status_412_from_recorded_status():
    err = map_error(hvac_exceptions.UnexpectedError(errors=[]), READ_DATA, URL, status=412, attempts=2)
    assert err.category == "not_consistent" and "412" in err.message


def test_login_failures():
    approle = Op("log in with AppRole at auth/approle", "auth/approle/login", "approle", "login")
    err = map_error(hvac_exceptions.InvalidRequest(errors=["invalid role or secret ID"]), approle, URL)
    assert err.category == "auth_failed"
    assert "Login failed: could not log in with AppRole at auth/approle; Vault said: invalid role or secret ID" in err.message
    assert "secret_id" in err.message
    jwt = Op("log in with JWT role 'ci' at auth/gitlab", "auth/gitlab/login", "jwt", "login")
    err = map_error(hvac_exceptions.Forbidden(errors=["permission denied"]), jwt, URL)
    assert "enabled at 'auth/gitlab/'" in err.message
    err = map_error(hvac_exceptions.InvalidRequest(errors=["error validating token: token is expired"]), jwt, URL)
    assert "Check the JWT" in err.message


def test_connection_errors():
    refused = requests.exceptions.ConnectionError("HTTPConnectionPool(...): Failed to establish a new connection: "
                                                  "[Errno 111] Connection refused")
    err = map_error(refused, READ_DATA, URL, attempts=4)
    assert err.category == "unreachable"
    assert err.message.startswith("Cannot reach the Vault server at %s (connection refused)" % URL)
    assert "(after 4 attempts)" in err.message
    err = map_error(requests.exceptions.ReadTimeout("read timed out"), READ_DATA, URL, timeout=30.0)
    assert err.category == "timeout" and "within 30 seconds" in err.message
    err = map_error(requests.exceptions.SSLError("certificate verify failed"), READ_DATA, URL)
    assert err.category == "tls" and "ca_cert" in err.message


def test_map_error_keeps_our_errors():
    ours = VaultError("x", "invalid_input")
    assert map_error(ours, READ_DATA, URL) is ours


def test_cas_conflict_message():
    err = cas_conflict_error("secret", "apps/x", 4, 6)
    assert err.category == "cas_conflict"
    assert "Check-and-set conflict on secret/apps/x: expected version 4, but Vault holds version 6" in err.message
    assert "nothing was written" in err.message
    assert err.details["expected_version"] == 4 and err.details["current_version"] == 6
    assert err.details["cas_conflict"] is True
    assert "expected no version (a new secret, cas=0)" in cas_conflict_error("secret", "x", 0, 2).message


# --- auth methods ---------------------------------------------------------------------

def test_auth_table_names():
    assert AUTH_METHODS == {"token": TokenAuth, "approle": AppRoleAuth, "jwt": JwtAuth}


def test_token_from_option_then_file(tmp_path):
    method = select_auth({"auth_method": "token", "token": "s.abc"}, env={})
    assert isinstance(method, TokenAuth) and method.token == "s.abc" and method.secret_values() == []
    token_file = tmp_path / "token"
    token_file.write_text("s.from-file\n")
    method = select_auth({"auth_method": "token", "token": None}, env={"VAULT_TOKEN_FILE": str(token_file)})
    assert method.token == "s.from-file" and method.secret_values() == ["s.from-file"]


def test_token_missing_or_unreadable(tmp_path):
    with pytest.raises(VaultError, match="needs a token: set the token option, or VAULT_TOKEN, or VAULT_TOKEN_FILE"):
        select_auth({"auth_method": "token"}, env={})
    with pytest.raises(VaultError, match="Cannot read the Vault token from the file named by VAULT_TOKEN_FILE"):
        select_auth({"auth_method": "token"}, env={"VAULT_TOKEN_FILE": str(tmp_path / "missing")})
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    with pytest.raises(VaultError, match="is empty"):
        select_auth({"auth_method": "token"}, env={"VAULT_TOKEN_FILE": str(empty)})


def test_approle_validation(tmp_path):
    with pytest.raises(VaultError, match="needs role_id"):
        select_auth({"auth_method": "approle", "secret_id": "s"}, env={})
    with pytest.raises(VaultError, match="needs secret_id"):
        select_auth({"auth_method": "approle", "role_id": "r"}, env={})
    secret_file = tmp_path / "sid"
    secret_file.write_text("sid-from-file")
    method = select_auth({"auth_method": "approle", "role_id": "r"}, env={"VAULT_SECRET_ID_FILE": str(secret_file)})
    assert isinstance(method, AppRoleAuth)
    assert method.mount_point == "approle" and method.secret_id == "sid-from-file"
    assert method.secret_values() == ["sid-from-file"]
    method = select_auth({"auth_method": "approle", "role_id": "r", "secret_id": "s", "auth_mount_point": "/ci/"}, env={})
    assert method.mount_point == "ci"


def test_jwt_validation():
    with pytest.raises(VaultError, match="needs role"):
        select_auth({"auth_method": "jwt", "jwt": "a.b.c"}, env={})
    with pytest.raises(VaultError, match="needs jwt"):
        select_auth({"auth_method": "jwt", "role": "ci"}, env={})
    method = select_auth({"auth_method": "jwt", "role": "ci", "jwt": "a.b.c"}, env={})
    assert isinstance(method, JwtAuth) and method.mount_point == "jwt"


def test_unknown_auth_method():
    with pytest.raises(VaultError, match="auth_method must be one of approle, jwt, token"):
        select_auth({"auth_method": "ldap"}, env={})


class FakeLoginClient:
    def __init__(self):
        self.token = ""
        self.calls = []
        outer = self

        class AppRole:
            def login(self, **kwargs):
                outer.calls.append(("approle", kwargs))
                outer.token = "s.issued"

        class Jwt:
            def jwt_login(self, **kwargs):
                outer.calls.append(("jwt", kwargs))
                outer.token = "s.issued"

        class Auth:
            approle = AppRole()
            jwt = Jwt()

        self.auth = Auth()


def connection_with(params, sleep=None):
    base = {"url": URL, "auth_method": "token", "token": "s.root", "retries": 3, "timeout": 5}
    base.update(params)
    sleeps = []
    conn = VaultConnection(base, env={}, sleep=sleep or sleeps.append)
    conn.client = FakeLoginClient()
    return conn, sleeps


def test_authenticate_sends_the_right_login():
    conn = connection_with({"auth_method": "approle", "role_id": "r", "secret_id": "s", "auth_mount_point": "ci"})[0]
    conn.auth.authenticate(conn)
    assert conn.client.calls == [("approle", {"role_id": "r", "secret_id": "s", "mount_point": "ci"})]
    conn = connection_with({"auth_method": "jwt", "role": "deploy", "jwt": "a.b.c"})[0]
    conn.auth.authenticate(conn)
    assert conn.client.calls == [("jwt", {"role": "deploy", "jwt": "a.b.c", "path": "jwt"})]
    conn = connection_with({})[0]
    conn.auth.authenticate(conn)
    assert conn.client.token == "s.root" and conn.client.calls == [], "no lookup-self for tokens"


@pytest.mark.parametrize("params, fragment", [
    ({"url": None}, "url is required: set the url option or VAULT_ADDR"),
    ({"url": "vault:8200"}, "needs a scheme"),
    ({"timeout": 0}, "timeout must be a positive"),
    ({"retries": -1}, "retries must be 0 or more"),
    ({"ca_cert": "/nonexistent/ca.pem"}, "ca_cert file /nonexistent/ca.pem does not exist"),
])
def test_connection_option_errors(params, fragment):
    with pytest.raises(VaultError) as info:
        connection_with(params)
    assert fragment in info.value.message


# --- retries --------------------------------------------------------------------------

class Flaky:
    def __init__(self, *failures):
        self.failures = list(failures)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"ok": True}


def test_retries_on_5xx_and_412_then_succeeds():
    conn, sleeps = connection_with({})
    answers = [hvac_exceptions.InternalServerError(errors=["x"]), hvac_exceptions.UnexpectedError(errors=[])]

    def flaky():
        if answers:
            exc = answers.pop(0)
            conn.last_status = 500 if isinstance(exc, hvac_exceptions.InternalServerError) else 412
            raise exc
        return {"ok": True}

    assert conn.call(READ_DATA, flaky) == {"ok": True}
    assert answers == [] and sleeps == [0.25, 0.5]


def test_412_is_retried_from_the_recorded_status():
    conn, sleeps = connection_with({"retries": 1})

    def answer_412():
        conn.last_status = 412
        raise hvac_exceptions.UnexpectedError(errors=[])

    with pytest.raises(VaultError) as info:
        conn.call(READ_DATA, answer_412)
    assert info.value.category == "not_consistent" and sleeps == [0.25]


def test_retries_are_bounded():
    conn, sleeps = connection_with({"retries": 2})
    flaky = Flaky(*[hvac_exceptions.BadGateway(errors=["bad gateway"])] * 5)
    with pytest.raises(VaultError) as info:
        conn.call(READ_DATA, flaky)
    assert flaky.calls == 3 and sleeps == [0.25, 0.5]
    assert "HTTP 502 (after 3 attempts)" in info.value.message


def test_sealed_and_forbidden_are_not_retried():
    for exc, category in ((hvac_exceptions.VaultDown(errors=["Vault is sealed"]), "sealed"),
                          (hvac_exceptions.Forbidden(errors=["permission denied"]), "permission_denied")):
        conn, sleeps = connection_with({})
        flaky = Flaky(exc)
        with pytest.raises(VaultError) as info:
            conn.call(READ_DATA, flaky)
        assert flaky.calls == 1 and sleeps == [] and info.value.category == category


def test_refused_connection_retried_timeout_not():
    conn, sleeps = connection_with({"retries": 1})
    flaky = Flaky(requests.exceptions.ConnectionError("Connection refused"), requests.exceptions.ConnectionError("x"))
    with pytest.raises(VaultError) as info:
        conn.call(READ_DATA, flaky)
    assert flaky.calls == 2 and info.value.category == "unreachable"
    conn, sleeps = connection_with({})
    flaky = Flaky(requests.exceptions.ReadTimeout("timed out"))
    with pytest.raises(VaultError) as info:
        conn.call(READ_DATA, flaky)
    assert flaky.calls == 1 and sleeps == [] and info.value.category == "timeout"


# --- read-compare-write and describe, against an in-memory KV -------------------------

class FakeKV:
    """Just enough of KV2Secret, in memory: versions, deletion state, custom_metadata."""

    mount = "secret"
    path = "apps/x"
    name = "secret/apps/x"
    data_path = "secret/data/apps/x"

    def __init__(self, versions=(), custom_metadata=None, deleted=(), destroyed=()):
        self.versions = [dict(v) for v in versions]
        self.custom_metadata = dict(custom_metadata or {})
        self.deleted = set(deleted)
        self.destroyed = set(destroyed)
        self.writes = []
        self.metadata_writes = []

    def _state(self, number):
        return "destroyed" if number in self.destroyed else "deleted" if number in self.deleted else "live"

    def read_version(self, version=None):
        number = version or len(self.versions)
        if not number or number > len(self.versions):
            return None
        state = self._state(number)
        return SecretVersion(number, dict(self.versions[number - 1]) if state == "live" else None, state,
                             "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z" if state == "deleted" else None,
                             dict(self.custom_metadata))

    def read_metadata(self):
        if not self.versions and not self.custom_metadata:
            return None
        return {"current_version": len(self.versions), "oldest_version": 0, "custom_metadata": dict(self.custom_metadata),
                "created_time": "2025-01-01T00:00:00Z", "updated_time": "2025-01-03T00:00:00Z",
                "versions": {str(i + 1): {"created_time": "t", "deletion_time": "d" if self._state(i + 1) == "deleted" else "",
                                          "destroyed": self._state(i + 1) == "destroyed"}
                             for i in range(len(self.versions))}}

    def write(self, data, cas):
        assert cas == len(self.versions)
        self.writes.append((dict(data), cas))
        self.versions.append(dict(data))
        return len(self.versions)

    def update_custom_metadata(self, custom_metadata, exists):
        self.metadata_writes.append(dict(custom_metadata))
        self.custom_metadata = dict(custom_metadata)


def test_write_identical_data_is_unchanged():
    kv = FakeKV([{"api_key": "a"}])
    result = write_secret(kv, data={"api_key": "a"})
    assert result["changed"] is False and result["version"] == 1 and kv.writes == []


def test_write_new_data_and_diff():
    kv = FakeKV([{"api_key": "a"}], {"provider": "openai"})
    result = write_secret(kv, data={"api_key": "b"}, custom_metadata={"stage": "done"})
    assert result["changed"] is True and result["version"] == 2 and result["previous_version"] == 1
    assert kv.writes == [({"api_key": "b"}, 1)]
    assert kv.metadata_writes == [{"provider": "openai", "stage": "done"}]
    assert result["diff"]["before"]["fingerprints"] == {"api_key": fp("a")}
    assert result["diff"]["after"]["fingerprints"] == {"api_key": fp("b")}
    assert result["diff"]["after"]["custom_metadata"] == {"provider": "openai", "stage": "done"}
    assert '"b"' not in json.dumps(result) and '"a"' not in json.dumps(result)


def test_check_mode_plans_without_writing():
    kv = FakeKV([{"api_key": "a"}])
    result = write_secret(kv, data={"api_key": "b"}, custom_metadata={"stage": "x"}, check_mode=True)
    assert result["changed"] is True and result["version"] == 2
    assert kv.writes == [] and kv.metadata_writes == []


def test_first_write_creates():
    kv = FakeKV()
    result = write_secret(kv, data={"api_key": "a"})
    assert result["created"] is True and result["version"] == 1 and result["previous_version"] is None
    assert kv.writes == [({"api_key": "a"}, 0)]


def test_deleted_latest_version_gets_a_new_version_on_top():
    kv = FakeKV([{"api_key": "a"}, {"api_key": "b"}], deleted={2})
    result = write_secret(kv, data={"api_key": "b"})
    assert result["changed"] is True and result["version"] == 3 and result["previous_version"] == 2
    assert kv.writes == [({"api_key": "b"}, 2)]
    assert result["diff"]["before"]["data_keys"] == []


def test_metadata_only_writes_no_version():
    kv = FakeKV([{"api_key": "a"}], {"stage": "creating"})
    result = write_secret(kv, custom_metadata={"stage": None})
    assert result["changed"] is True and result["version"] == 1 and kv.writes == []
    assert kv.metadata_writes == [{}]
    assert write_secret(kv, custom_metadata={"stage": None})["changed"] is False


@pytest.mark.parametrize("versions,deleted,held", [
    ([{"api_key": "a"}, {"api_key": "b"}], (), fp("b")),  # another key is the newest
    ([{"api_key": "a"}, {"other": "a"}], (), None),  # the newest has no such field
    ([{"api_key": "a"}, {"api_key": "a"}], {2}, None),  # the newest is deleted
    ([], (), None),  # no secret
])
def test_require_fingerprint_refuses_another_key(versions, deleted, held):
    kv = FakeKV(versions, {"stage": "verified"}, deleted=deleted)
    for check_mode in (True, False):
        with pytest.raises(VaultError) as info:
            write_secret(kv, custom_metadata={"stage": None}, require_fingerprint=fp("a"), check_mode=check_mode)
        error = info.value
        assert error.category == "fingerprint_conflict" and error.details["fingerprint_conflict"] is True
        assert error.details["current_version"] == (len(versions) or None)
        assert error.details["fingerprints"].get("api_key") == held
        assert ("holds %s in api_key, not %s. Nothing was written." % (held or "no value", fp("a"))) in error.message
        assert kv.writes == [] and kv.metadata_writes == []


def test_require_fingerprint_writes_when_the_key_is_there():
    kv = FakeKV([{"api_key": "b", "other": "a"}], {"stage": "verified"})
    with pytest.raises(VaultError):
        write_secret(kv, custom_metadata={"stage": None}, require_fingerprint=fp("a"))
    result = write_secret(kv, custom_metadata={"stage": None}, require_fingerprint=fp("a"), require_field="other")
    assert result["changed"] is True and kv.metadata_writes == [{}]
    result = write_secret(kv, custom_metadata={"done": "yes"}, require_fingerprint=fp("b"))
    assert result["changed"] is True and kv.metadata_writes == [{}, {"done": "yes"}]


def test_require_fingerprint_takes_any_form_of_the_fingerprint():
    full = "sha256:" + hashlib.sha256(b"a").hexdigest()
    for given in (full, full.upper().replace("SHA256", "sha256"), " %s " % fp("a").upper()):
        kv = FakeKV([{"api_key": "a"}], {"stage": "verified"})
        assert write_secret(kv, custom_metadata={"stage": None}, require_fingerprint=given)["changed"] is True


@pytest.mark.parametrize("given", ["", "0123456789ab", "sha256:0123", "md5:" + "0" * 12])
def test_require_fingerprint_refuses_a_malformed_value_before_reading(given):
    class Unread(FakeKV):
        def read_version(self, version=None):
            raise AssertionError("read before the fingerprint was checked")

    kv = Unread([{"api_key": "a"}])
    with pytest.raises(VaultError) as info:
        write_secret(kv, custom_metadata={"stage": None}, require_fingerprint=given)
    assert info.value.category == "invalid_input"
    assert info.value.message.startswith("require_fingerprint must be sha256: followed by 12 (or 64) hex digits")
    assert kv.writes == [] and kv.metadata_writes == []


def test_stale_cas_writes_nothing():
    kv = FakeKV([{"api_key": "a"}, {"api_key": "b"}])
    with pytest.raises(VaultError) as info:
        write_secret(kv, data={"api_key": "c"}, custom_metadata={"stage": "x"}, cas=1)
    assert info.value.category == "cas_conflict" and "expected version 1, but Vault holds version 2" in info.value.message
    assert kv.writes == [] and kv.metadata_writes == []


def test_data_from_version_copies_and_registers_values():
    kv = FakeKV([{"api_key": "old-value"}, {"api_key": "new-value"}])
    seen = []
    result = write_secret(kv, data_from_version=1, register_secret=seen.append)
    assert result["changed"] is True and result["version"] == 3
    assert kv.writes == [({"api_key": "old-value"}, 2)]
    assert seen == ["old-value"]
    assert write_secret(kv, data_from_version=1)["changed"] is False


@pytest.mark.parametrize("kv, version, category", [
    (FakeKV([{"k": "a"}, {"k": "b"}], deleted={1}), 1, "version_deleted"),
    (FakeKV([{"k": "a"}, {"k": "b"}], destroyed={1}), 1, "version_destroyed"),
    (FakeKV([{"k": "a"}]), 5, "version_missing"),
    (FakeKV([{"k": "a"}]), 0, "invalid_input"),
])
def test_data_from_version_refusals(kv, version, category):
    with pytest.raises(VaultError) as info:
        write_secret(kv, data_from_version=version)
    assert info.value.category == category and kv.writes == []


def test_write_input_errors():
    with pytest.raises(VaultError, match="mutually exclusive"):
        write_secret(FakeKV(), data={"a": "b"}, data_from_version=1)
    with pytest.raises(VaultError, match="cas must be 0"):
        write_secret(FakeKV(), data={"a": "b"}, cas=-1)


def test_describe_secret():
    kv = FakeKV([{"api_key": "a"}, {"api_key": "b", "org": "o"}], {"provider": "openai"})
    result = describe_secret(kv)
    assert result["exists"] is True and result["version"] == 2 and result["current_version"] == 2
    assert result["oldest_version"] == 1
    assert result["data_keys"] == ["api_key", "org"] and result["fingerprints"]["api_key"] == fp("b")
    assert "data" not in result
    assert describe_secret(kv, version=1, return_data=True)["data"] == {"api_key": "a"}
    with pytest.raises(VaultError, match="Version 9 of secret/apps/x does not exist"):
        describe_secret(kv, version=9)


def test_describe_absent_and_deleted():
    absent = describe_secret(FakeKV(), return_data=True)
    assert absent["exists"] is False and absent["data"] is None and absent["fingerprints"] == {}
    deleted = describe_secret(FakeKV([{"k": "a"}, {"k": "b"}], deleted={2}))
    assert deleted["exists"] is True and deleted["version"] == 2 and deleted["data_keys"] == []
    assert deleted["versions"]["2"]["deletion_time"] == "d"


# --- KV2Secret against recorded answers (shapes as OpenBao 2.7 sends them) ------------

DELETED_LATEST_404 = {"data": {"data": None, "metadata": {"created_time": "2025-01-01T00:00:00Z", "custom_metadata": None,
                                                          "deletion_time": "2025-01-02T00:00:00Z", "destroyed": False,
                                                          "version": 2}}}
KV1_MOUNT = {"data": {"type": "kv", "options": {"version": "1"}, "path": "kv1/"}}
KV2_MOUNT = {"data": {"type": "kv", "options": {"version": "2"}, "path": "secret/"}}


class FakeAdapter:
    """Answers by (method, url): a dict is returned, an exception raised; records each request."""

    def __init__(self, answers):
        self.answers = {key: list(value) if isinstance(value, list) else [value] for key, value in answers.items()}
        self.requests = []

    def request(self, method, url, **kwargs):
        self.requests.append((method, url, kwargs))
        queue = self.answers[(method, url)]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def kv_with(answers, mount="secret"):
    conn = connection_with({})[0]
    conn.client.adapter = FakeAdapter(answers)
    return vault.KV2Secret(conn, mount, "apps/x"), conn.client.adapter


def test_read_version_absent_checks_the_mount():
    kv, adapter = kv_with({("GET", "/v1/secret/data/apps/x"): hvac_exceptions.InvalidPath(errors=[]),
                           ("GET", "/v1/sys/internal/ui/mounts/secret"): KV2_MOUNT})
    assert kv.read_version() is None
    assert [r[1] for r in adapter.requests] == ["/v1/secret/data/apps/x", "/v1/sys/internal/ui/mounts/secret"]


def test_read_version_deleted_latest_from_404_body():
    kv = kv_with({("GET", "/v1/secret/data/apps/x"): hvac_exceptions.InvalidPath(json=DELETED_LATEST_404)})[0]
    read = kv.read_version()
    assert read.version == 2 and read.state == "deleted" and read.data is None


def test_kv1_mount_is_named():
    kv = kv_with({("GET", "/v1/kv1/data/apps/x"): hvac_exceptions.InvalidPath(errors=[]),
                  ("GET", "/v1/sys/internal/ui/mounts/kv1"): KV1_MOUNT}, mount="kv1")[0]
    with pytest.raises(VaultError) as info:
        kv.read_version()
    assert info.value.category == "not_kv2"
    assert "The secrets engine at 'kv1/' is KV version 1, not KV version 2" in info.value.message


def test_write_cas_race_reads_the_current_version():
    cas_error = hvac_exceptions.InvalidRequest(errors=["check-and-set parameter did not match the current version"])
    current = {"data": {"data": {"api_key": "someone-else"},
                        "metadata": {"version": 6, "created_time": "t", "deletion_time": "", "destroyed": False}}}
    kv = kv_with({("POST", "/v1/secret/data/apps/x"): cas_error, ("GET", "/v1/secret/data/apps/x"): current})[0]
    with pytest.raises(VaultError) as info:
        kv.write({"api_key": "mine"}, 5)
    assert info.value.category == "cas_conflict"
    assert "expected version 5, but Vault holds version 6" in info.value.message
    assert "someone-else" not in info.value.message and "mine" not in info.value.message


def test_write_applied_before_its_answer_was_lost_is_success():
    cas_error = hvac_exceptions.InvalidRequest(errors=["check-and-set parameter did not match the current version"])
    current = {"data": {"data": {"api_key": "mine"},
                        "metadata": {"version": 6, "created_time": "t", "deletion_time": "", "destroyed": False}}}
    kv, adapter = kv_with({("POST", "/v1/secret/data/apps/x"): [hvac_exceptions.BadGateway(errors=[]), cas_error],
                           ("GET", "/v1/secret/data/apps/x"): current})
    assert kv.write({"api_key": "mine"}, 5) == 6
    posts = [r for r in adapter.requests if r[0] == "POST"]
    assert len(posts) == 2 and posts[0][2]["json"] == {"data": {"api_key": "mine"}, "options": {"cas": 5}}


@pytest.mark.parametrize("params, expected", [
    ({"ca_cert": "CA"}, "CA"),
    ({"validate_certs": False}, False),
    ({}, True),
])
def test_the_ca_setting_reaches_the_session_hvac_uses(tmp_path, params, expected):
    """hvac takes verify from the session it is handed: the session must carry ca_cert / validate_certs."""
    if params.get("ca_cert"):
        params = dict(params, ca_cert=str(tmp_path / "ca.pem"))
        (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
        expected = params["ca_cert"]
    conn = VaultConnection(dict({"url": "https://vault.example.com:8200", "auth_method": "token", "token": "s.t"},
                                **params), env={})
    conn.connect()
    assert conn.client.adapter.session.verify == expected


def test_plain_http_to_a_tls_listener_is_named():
    conn = VaultConnection({"url": "http://127.0.0.1:8200", "auth_method": "token", "token": "s.t"}, env={})
    response = requests.models.Response()
    response.status_code = 400
    response._content = b"Client sent an HTTP request to an HTTPS server.\n"
    with pytest.raises(vault.VaultError) as info:
        conn._record_status(response)
    assert "speaks TLS, but url (or VAULT_ADDR) says http://" in str(info.value)
    assert "https://127.0.0.1:8200" in str(info.value)


@pytest.mark.parametrize("error", [requests.exceptions.ChunkedEncodingError("Connection broken: reset"),
                                   requests.exceptions.ConnectionError("Connection aborted: connection reset")],
                         ids=["answer cut off", "reset"])
@pytest.mark.parametrize("tls", [True, False])
def test_plain_http_to_a_tls_listener_is_named_when_the_400_is_lost(monkeypatch, error, tls):
    """The 400 of a TLS listener sent plain HTTP may reach the client as a reset or as an answer cut off while it
    was read: either way a TLS handshake with the server decides, and only a server that completes one is named."""
    tried = []
    monkeypatch.setattr(vault, "speaks_tls", lambda url, timeout=5.0: tried.append(url) or tls)
    err = map_error(error, READ_DATA, "http://127.0.0.1:8200")
    assert tried == ["http://127.0.0.1:8200"]
    if tls:
        assert "speaks TLS, but url (or VAULT_ADDR) says http://: use https://127.0.0.1:8200" in str(err)
        assert err.category == "tls"
    else:
        assert "speaks TLS" not in str(err) and err.category == "unreachable"


# --- one login per run: the session token file -------------------------------------------

def test_a_session_token_file_wins_over_every_auth_method(tmp_path):
    token_file = tmp_path / "apikeys-vault-x" / "token"
    token_file.parent.mkdir()
    token_file.write_text("s.session")
    env = {vault.SESSION_TOKEN_FILE_ENV: str(token_file)}
    method = select_auth({"auth_method": "approle", "role_id": "r", "secret_id": "s"}, env=env)
    assert isinstance(method, vault.SessionAuth) and method.token == "s.session"
    assert method.secret_values() == ["s.session"], "the token is masked in output"
    # vault_login itself never uses an open session: it makes a new one
    assert isinstance(select_auth({"auth_method": "approle", "role_id": "r", "secret_id": "s"}, env=env,
                                  use_session=False), AppRoleAuth)
    token_file.unlink()
    with pytest.raises(VaultError, match="The token of this run's Vault login is gone"):
        select_auth({"auth_method": "token", "token": "t"}, env=env)


def test_open_login_keeps_the_token_in_a_private_file(tmp_path):
    conn = connection_with({"auth_method": "approle", "role_id": "r", "secret_id": "s"})[0]

    def connect():
        conn.auth.authenticate(conn)
        conn.login_answer = {"auth": {"lease_duration": 3600, "renewable": True}}
        return conn
    conn.connect = connect
    result = vault.open_login(conn, str(tmp_path / "runs"))
    assert result == {"logged_in": True, "token_file": result["token_file"], "ttl": 3600, "renewable": True,
                      "auth_method": "approle"}
    folder = (tmp_path / "runs").iterdir().__next__()
    assert folder.name.startswith(vault.SESSION_DIR_PREFIX) and result["token_file"] == str(folder / "token")
    assert (folder / "token").read_text() == "s.issued"
    assert folder.stat().st_mode & 0o777 == 0o700 and (folder / "token").stat().st_mode & 0o777 == 0o600
    assert "s.issued" not in json.dumps(result)


def test_a_given_token_is_kept_for_the_run_and_never_revoked(tmp_path):
    conn = connection_with({})[0]
    result = vault.open_login(conn, str(tmp_path))
    assert result["logged_in"] is False and result["auth_method"] == "token" and result["ttl"] is None
    folder = os.path.dirname(result["token_file"])
    assert pathlib.Path(result["token_file"]).read_text(encoding="utf-8") == "s.root"
    assert sorted(os.listdir(folder)) == ["connection.json", "given", "token"]
    assert json.loads(pathlib.Path(folder, "connection.json").read_text(encoding="utf-8"))["url"] == URL
    # closing it removes the files without asking Vault to revoke anything (no server here)
    assert vault.close_login({"url": "http://127.0.0.1:9", "retries": 0}, result["token_file"], env={}) == {
        "revoked": False, "removed": True, "warning": None}
    assert not os.path.exists(folder)


def test_close_login_never_revokes_a_token_it_did_not_make(tmp_path):
    foreign = tmp_path / "my-token"
    foreign.write_text("s.mine")
    with pytest.raises(VaultError, match="was not written by vault_login"):
        vault.close_login({"url": URL}, str(foreign), env={})
    assert foreign.read_text() == "s.mine"
    assert vault.close_login({"url": URL}, str(tmp_path / "gone"), env={}) == {
        "revoked": False, "removed": False, "warning": None}


def test_close_login_warns_and_removes_the_file_when_vault_cannot_revoke(tmp_path):
    folder = tmp_path / (vault.SESSION_DIR_PREFIX + "abc")
    folder.mkdir()
    (folder / "token").write_text("s.issued")
    result = vault.close_login({"url": "http://127.0.0.1:9", "retries": 0, "timeout": 2}, str(folder / "token"), env={})
    assert result["revoked"] is False and result["removed"] is True
    assert result["warning"].startswith("Could not revoke this run's Vault token, so it lives until its TTL ends")
    assert "s.issued" not in result["warning"] and not folder.exists()
