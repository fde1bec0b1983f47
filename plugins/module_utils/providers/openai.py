# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenAI: project API keys of service accounts (create, list, delete) and the zero-token probe.

Private to the apikeys.rotation collection. Keys can only be minted for service
accounts; there is no disable, a revoked key is deleted for good.
"""

from __future__ import annotations

import re
import typing as t

from ansible_collections.apikeys.rotation.plugins.module_utils.common import RotationError
from ansible_collections.apikeys.rotation.plugins.module_utils.providers.base import (
    Capabilities,
    CreatedKey,
    KeyRecord,
    Provider,
    StatusChange,
)

PAGE_LIMIT = 100
MAX_PAGES = 1000


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

    def _project(self) -> str:
        return self.require("openai_project_id")

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
        params: t.Dict[str, t.Any] = {"limit": PAGE_LIMIT}
        path = self._keys_path()
        for _page in range(MAX_PAGES):
            resp = self.admin("GET", path, "listing API keys of project %s" % self._project(), params=dict(params))
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
                              "creating service account %r" % name, json_body={"name": name})
            body = resp.body if isinstance(resp.body, dict) else {}
            account = body.get("id")
            key = body.get("api_key") if isinstance(body.get("api_key"), dict) else {}
        value = key.get("value")
        if not value or not key.get("id"):
            raise RotationError("OpenAI answered the create without a key id or value (request id %s)"
                                % resp.request_id, provider=self.name)
        self.client.add_secret(value)
        record = KeyRecord(key["id"], key.get("name") or name, "active", key.get("created_at"), self.redact(value),
                           project_id=project, service_account_id=account)
        return CreatedKey(record, value, changed=True)

    def remove_orphan(self, record: KeyRecord, name: str) -> None:
        account = record.extra.get("service_account_id")
        if (account and record.extra.get("service_account_name") == name
                and account != self.options.get("openai_service_account_id")):
            # The service account was made for this key (no openai_service_account_id): remove both.
            self.admin("DELETE", "/organization/projects/%s/service_accounts/%s" % (self._project(), account),
                       "deleting service account %s" % account, ok=(200, 204, 404))
            return
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
        if check_mode:
            return StatusChange(key_id, current.status, "deleted", True)
        self.admin("DELETE", "%s/%s" % (self._keys_path(), key_id), "deleting API key %s" % key_id, ok=(200, 204, 404))
        return StatusChange(key_id, current.status, "deleted", True)
