# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vault_secret_write / vault_secret_info run in-process: option handling and failures, no server."""

from __future__ import annotations

import json
import socket

import pytest

pytest.importorskip("hvac")

# pylint: disable=wrong-import-position
from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.apikeys.rotation.plugins.modules import vault_secret_info, vault_secret_write  # noqa: E402


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in ("VAULT_ADDR", "VAULT_TOKEN", "VAULT_TOKEN_FILE", "VAULT_NAMESPACE", "VAULT_CACERT", "VAULT_ROLE_ID",
                 "VAULT_SECRET_ID", "VAULT_SECRET_ID_FILE", "VAULT_JWT", "VAULT_JWT_FILE", "VAULT_JWT_ROLE"):
        monkeypatch.delenv(name, raising=False)


def run(module, args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def closed_port_url():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return "http://127.0.0.1:%d" % sock.getsockname()[1]


def test_write_without_url(capsys):
    result = run(vault_secret_write, {"path": "apps/x", "token": "s.token-value", "data": {"api_key": "v"}}, capsys)
    assert result["failed"] is True
    assert result["msg"].startswith("url is required: set the url option or VAULT_ADDR")


def test_write_url_from_env_and_unreachable(capsys, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv("VAULT_ADDR", url)
    monkeypatch.setenv("VAULT_TOKEN", "s.env-token-value")
    result = run(vault_secret_write, {"path": "apps/x", "data": {"api_key": "the-value-123"}, "retries": 0}, capsys)
    assert result["failed"] is True and result["vault_error"] == "unreachable"
    assert result["msg"].startswith("Cannot reach the Vault server at %s (connection refused)" % url)
    assert "the-value-123" not in json.dumps(result) and "s.env-token-value" not in json.dumps(result)


def test_write_needs_something_to_write(capsys):
    result = run(vault_secret_write, {"path": "apps/x", "url": "http://127.0.0.1:1", "token": "s.x"}, capsys)
    assert "one of the following is required: data, data_from_version, custom_metadata" in result["msg"]


def test_write_data_and_data_from_version_exclusive(capsys):
    result = run(vault_secret_write, {"path": "apps/x", "url": "http://127.0.0.1:1", "token": "s.x",
                                      "data": {"a": "b"}, "data_from_version": 1}, capsys)
    assert "mutually exclusive: data|data_from_version" in result["msg"]


def test_info_return_data_requires_no_log(capsys):
    result = run(vault_secret_info, {"path": "apps/x", "url": "http://127.0.0.1:1", "token": "s.x",
                                     "return_data": True}, capsys)
    assert result["failed"] is True and "set no_log: true on this task" in result["msg"]


def test_info_bad_auth_options(capsys):
    result = run(vault_secret_info, {"path": "apps/x", "url": "http://127.0.0.1:1", "auth_method": "approle"}, capsys)
    assert result["msg"] == "auth_method=approle needs role_id (or VAULT_ROLE_ID)."
    assert result["vault_error"] == "invalid_input"
