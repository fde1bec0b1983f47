# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenAI: project API keys of service accounts (create, list, delete) and the zero-token probe.

Private to the apikeys.rotation collection. Keys can only be minted for service
accounts; there is no disable, a revoked key is deleted for good.

Deleting one key is safe under both readings of OpenAI's reference: the published
document says ``DELETE .../api_keys/{id}`` refuses a service account's key (400), newer
pages say it deletes it. A key that is the only key of a service account the collection
did not get as ``openai_service_account_id`` is revoked by deleting that account; any
other service-account key is deleted alone or, when OpenAI refuses, stays active and the
error says so (deleting its account would take the account's other keys with it).
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.http_client import ProviderError
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import (
    Capabilities,
    CreatedKey,
    KeyRecord,
    Provider,
    Refusal,
    StatusChange,
    error_code,
)

PAGE_LIMIT = 100
MAX_PAGES = 1000
#: the only 401 code that says the key itself is bad; others concern the organisation, IP allow-list or project
INVALID_KEY_CODE = "invalid_api_key"
#: how OpenAI words "authenticated, but this key lacks the scope" (seen with 401 and with 403)
SCOPE_REFUSAL_RE = re.compile(r"insufficient permissions|missing scopes", re.I)


class RevokeRefused(RotationError):
    """OpenAI refused to delete a service account's key, and its account holds more than that key."""


class OpenAIProvider(Provider):
    name = "openai"
    display_name = "OpenAI"
    default_base_url = "https://api.openai.com/v1"
    base_url_env = "OPENAI_BASE_URL"
    admin_key_env = "OPENAI_ADMIN_KEY"
    probe_path = "/models"
    key_pattern = re.compile(r"^sk-(?!ant-|or-v\d|admin-)[A-Za-z0-9_\-]{20,}$")
    key_format = "sk-proj-... or sk-svcacct-... (an OpenAI project or service-account key)"
    capabilities = Capabilities(can_create=True, can_disable=False, can_delete=True)
    state_map = {"active": "active", "deleted": "deleted"}

    def redact(self, api_key: str) -> str:
        return "%s...%s" % (api_key[:6], api_key[-3:])

    def refusal(self, status: int, body: t.Any, message: str) -> Refusal:
        code = error_code(body)
        err = body.get("error") if isinstance(body, dict) else None
        raw_code = err.get("code") if isinstance(err, dict) else None
        if raw_code == INVALID_KEY_CODE:
            return Refusal(INVALID_KEY_CODE)
        if SCOPE_REFUSAL_RE.search(message or ""):
            return Refusal(code or "insufficient_permissions", restricted=True, key_rejected=False)
        if status == 401 and raw_code:
            return Refusal(code, key_rejected=False,
                           what="refused for a reason other than the key itself (%s: the organisation, the caller's "
                                "IP allow-list or the project)" % raw_code)
        return Refusal(code)

    def _project(self) -> str:
        return self.require("openai_project_id")

    def wrong_base_url_text(self) -> str:
        # the project is part of these paths: an unknown project is a 404 too
        return "%s; or openai_project_id %s is not a project of this organisation" % (
            super().wrong_base_url_text(), self.options.get("openai_project_id"))

    def _keys_path(self) -> str:
        return "/organization/projects/%s/api_keys" % self._project()

    def record(self, data: t.Mapping[str, t.Any]) -> KeyRecord:
        owner = data.get("owner") if isinstance(data.get("owner"), dict) else {}
        extra: t.Dict[str, t.Any] = {"project_id": self.options.get("openai_project_id")}
        if owner.get("type") == "service_account":
            account = owner.get("service_account") if isinstance(owner.get("service_account"), dict) else owner
            extra["service_account_id"] = account.get("id")
            extra["service_account_name"] = account.get("name")
        elif owner.get("type") == "user":
            user = owner.get("user") if isinstance(owner.get("user"), dict) else owner
            extra["user_id"] = user.get("id")
        return KeyRecord(data.get("id"), data.get("name"), "active", data.get("created_at"),
                         data.get("redacted_value"), **extra)

    # -- reads --------------------------------------------------------------

    def _get(self, key_id: str) -> t.Optional[KeyRecord]:
        resp = self.admin("GET", "%s/%s" % (self._keys_path(), key_id), "reading API key %s" % key_id, ok=(200, 404))
        if resp.status == 404:
            return None
        return self.record(resp.body)

    def list_keys(self) -> t.List[KeyRecord]:
        records: t.List[KeyRecord] = []
        # Without owner_project_access=any the list applies membership-based visibility and may omit enabled keys.
        params: t.Dict[str, t.Any] = {"limit": PAGE_LIMIT, "owner_project_access": "any"}
        path = self._keys_path()
        for _page in range(MAX_PAGES):
            resp = self.admin("GET", path, "listing API keys of project %s" % self._project(), collection=True,
                              params=dict(params))
            body = resp.body if isinstance(resp.body, dict) else {}
            data = body.get("data") or []
            records.extend(self.record(item) for item in data)
            last_id = body.get("last_id") or (data[-1].get("id") if data else None)
            if not body.get("has_more") or not last_id or last_id == params.get("after"):
                break
            params["after"] = last_id
        return records

    def find(self, name: t.Optional[str] = None, key_id: t.Optional[str] = None) -> t.List[KeyRecord]:
        if key_id:
            found = self._get(key_id)
            records = [found] if found else []
        else:
            records = self.list_keys()
        if name is not None:
            records = [r for r in records if r.name == name or r.extra.get("service_account_name") == name]
        return records

    # -- create -------------------------------------------------------------

    def create(self, name: str) -> CreatedKey:
        project = self._project()
        account = self.options.get("openai_service_account_id")
        if account:
            resp = self.admin("POST", "/organization/projects/%s/service_accounts/%s/api_keys" % (project, account),
                              "creating an API key for service account %s" % account, json_body={"name": name})
            key = resp.body if isinstance(resp.body, dict) else {}
        else:
            resp = self.admin("POST", "/organization/projects/%s/service_accounts" % project,
                              "creating service account %r" % name, collection=True, json_body={"name": name})
            body = resp.body if isinstance(resp.body, dict) else {}
            account = body.get("id")
            key = body.get("api_key") if isinstance(body.get("api_key"), dict) else {}
        value = key.get("value")
        if not value or not key.get("id"):
            raise RotationError("OpenAI answered the create without a key id or value (request id %s)"
                                % resp.request_id, provider=self.name)
        self.client.add_secret(value)
        # The first key of a new service account is named "Secret Key", not after the account: the record
        # carries the name a re-run finds it by (the account's, or the key's on a configured account).
        own_account = not self.options.get("openai_service_account_id")
        record = KeyRecord(key["id"], name, "active", key.get("created_at"), self.redact(value),
                           project_id=project, service_account_id=account, key_name=key.get("name"),
                           service_account_name=name if own_account else None)
        return CreatedKey(record, value, changed=True)

    def remove_orphan(self, record: KeyRecord, name: str) -> None:
        self.set_status(record.id, "deleted")

    # -- status -------------------------------------------------------------

    def unsupported_state(self, state: str) -> RotationError:
        return RotationError(
            "OpenAI has no way to disable a key (state=%s): revoking an OpenAI key deletes it for good. Keep the "
            "old key active through the grace period, then use state=deleted. Nothing was changed" % state,
            provider=self.name)

    def set_status(self, key_id: str, state: str, check_mode: bool = False) -> StatusChange:
        self.check_state(state)
        current = self._get(key_id)
        if state == "active":
            if current is None:
                raise RotationError("no OpenAI key %s in project %s: a deleted OpenAI key cannot be made active again"
                                    % (key_id, self._project()), provider=self.name, key_id=key_id)
            return StatusChange(key_id, current.status, current.status, False)
        if current is None:
            return StatusChange(key_id, "absent", "absent", False)
        account = current.extra.get("service_account_id")
        if account and self._account_holds_only(account, key_id):
            # A service account of its own: deleting the account revokes the key under either reading of the API.
            if not check_mode:
                self.admin("DELETE", "/organization/projects/%s/service_accounts/%s" % (self._project(), account),
                           "deleting service account %s (the only holder of key %s)" % (account, key_id),
                           ok=(200, 204, 404))
            return StatusChange(key_id, current.status, "deleted", True, service_account_deleted=account)
        if check_mode:
            return StatusChange(key_id, current.status, "deleted", True)
        try:
            self.admin("DELETE", "%s/%s" % (self._keys_path(), key_id), "deleting API key %s" % key_id,
                       ok=(200, 204, 404))
        except ProviderError as exc:
            if not account or exc.status != 400:
                raise
            raise self._refused(key_id, account, exc)
        return StatusChange(key_id, current.status, "deleted", True)

    def _account_holds_only(self, account: str, key_id: str) -> bool:
        """Whether ``account`` is not the configured account and holds no key but ``key_id``."""
        if account == self.options.get("openai_service_account_id"):
            return False
        held = [r.id for r in self.list_keys() if r.extra.get("service_account_id") == account]
        return held == [key_id]

    def _refused(self, key_id: str, account: str, exc: ProviderError) -> RevokeRefused:
        others = [r.id for r in self.list_keys() if r.extra.get("service_account_id") == account and r.id != key_id]
        why = ("it is a key of openai_service_account_id %s" % account
               if account == self.options.get("openai_service_account_id")
               else "its service account %s holds other keys too (%s)" % (account, ", ".join(others) or "unknown"))
        return RevokeRefused(
            "%s. So key %s STAYS ACTIVE. OpenAI deletes a service "
            "account's key only with the account, and %s: deleting the account would revoke those keys with it, "
            "including the key in use. What to do: delete key %s in the OpenAI dashboard (project %s, API keys) once "
            "no application uses it; to let rotations revoke old keys by API, leave openai_service_account_id unset "
            "so that each key gets a service account of its own." % (
                exc.message, key_id, why, key_id, self._project()),
            provider=self.name, key_id=key_id, status="active", kept_active=True, service_account_id=account,
            other_key_ids=others)
