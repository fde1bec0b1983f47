# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness itself: servers start, answer and stop; playbooks run isolated."""

from __future__ import annotations

import os

import hvac

from harness import http_json


def test_openbao_dev_serves_kv2(openbao):
    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    client.secrets.kv.v2.create_or_update_secret(path="harness/check", secret={"a": "b"}, mount_point="secret")
    read = client.secrets.kv.v2.read_secret_version(
        path="harness/check", mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"a": "b"}


def test_raft_server_seals_and_restarts(raft_openbao):
    client = hvac.Client(url=raft_openbao.addr, token=raft_openbao.root_token)
    client.secrets.kv.v2.create_or_update_secret(path="persist", secret={"v": "1"}, mount_point="secret")
    raft_openbao.seal()
    assert http_json("GET", raft_openbao.addr + "/v1/sys/health")[0] == 503
    raft_openbao.restart()
    read = client.secrets.kv.v2.read_secret_version(
        path="persist", mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"v": "1"}
    pid = raft_openbao.proc.pid
    raft_openbao.stop()
    assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_playbook_runs_isolated(ansible):
    result = ansible.run_playbook([{"hosts": "localhost", "gather_facts": False,
                                    "tasks": [{"name": "ping", "ansible.builtin.ping": {}},
                                              {"name": "home", "ansible.builtin.debug": {"msg": "{{ lookup('env', 'HOME') }}"}}]}])
    assert result.rc == 0, result
    assert result.result("ping")["result"]["ping"] == "pong"
    assert result.result("home")["result"]["msg"] == ansible.home
    assert not os.path.exists(os.path.expanduser("~/.ansible/tmp/never")), "sanity"
