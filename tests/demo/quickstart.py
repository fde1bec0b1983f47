# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seed the README's quick start: keys at the provider emulator, written to a local OpenBao.

    python tests/demo/quickstart.py > quickstart.env && . ./quickstart.env
    python tests/demo/quickstart.py --wait-for http://127.0.0.1:8791/healthz/key

waits until OpenBao ($VAULT_ADDR, $VAULT_TOKEN) and the emulator (--emulator) answer, then
makes an admin key per provider, one key in use per provider written to Vault at
quickstart/<host>, a second, "Console-made" Anthropic key staged at
quickstart/wishlist-anthropic-next, and the OpenAI project proj_quickstart. It prints the
environment the playbooks need (admin keys, base URLs) as export lines, to source. Only the
standard library: it runs in the Python that runs Ansible.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import urllib.error
import urllib.request

HOSTS = {"anthropic": "wishlist-anthropic", "openai": "search-openai", "openrouter": "chat-openrouter"}
ADMIN_ENV = {"anthropic": "ANTHROPIC_ADMIN_KEY", "openai": "OPENAI_ADMIN_KEY", "openrouter": "OPENROUTER_MANAGEMENT_KEY"}
BASE_ENV = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL", "openrouter": "OPENROUTER_BASE_URL"}
BASE_PATH = {"anthropic": "/anthropic", "openai": "/openai/v1", "openrouter": "/openrouter/api/v1"}
PROJECT = "proj_quickstart"


def call(method: str, url: str, body: object = None, headers: object = None) -> dict:
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}, **{"Content-Type": "application/json"}))
    with urllib.request.urlopen(request, timeout=10) as answer:  # nosec: loopback only
        text = answer.read().decode("utf-8")
    return json.loads(text) if text else {}


def wait_until_up(url: str, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # nosec: loopback only
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError as exc:
            if time.monotonic() > deadline:
                sys.exit("quickstart: %s at %s does not answer (%s): is it started?" % (what, url, exc))
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emulator", default="http://127.0.0.1:8787", help="the provider emulator's address")
    parser.add_argument("--wait-for", metavar="URL", help="only wait until URL answers (an application just started)")
    args = parser.parse_args()
    if args.wait_for:
        wait_until_up(args.wait_for, "the application")
        return
    vault = os.environ.get("VAULT_ADDR", "")
    token = os.environ.get("VAULT_TOKEN", "")
    if not vault or not token:
        sys.exit("quickstart: set VAULT_ADDR and VAULT_TOKEN (the dev server's root token) first")
    wait_until_up(vault + "/v1/sys/health", "OpenBao")
    wait_until_up(args.emulator + "/_emulator/health", "the provider emulator")

    def emulator(path: str, body: dict) -> dict:
        return call("POST", "%s/_emulator/%s" % (args.emulator, path), body)

    def vault_write(path: str, value: str) -> None:
        call("POST", "%s/v1/secret/data/%s" % (vault, path), {"data": {"api_key": value}}, {"X-Vault-Token": token})

    emulator("openai/projects", {"name": "quickstart", "id": PROJECT})
    exports = {}
    for provider, host in HOSTS.items():
        exports[ADMIN_ENV[provider]] = emulator("keys", {"provider": provider, "kind": "admin"})["value"]
        exports[BASE_ENV[provider]] = args.emulator + BASE_PATH[provider]
        body = {"provider": provider, "kind": "api", "name": host + "-initial"}
        if provider == "openai":
            body["project_id"] = PROJECT
        vault_write("quickstart/" + host, emulator("keys", body)["value"])
        if provider == "anthropic":
            console = emulator("keys", {"provider": "anthropic", "kind": "api", "name": "made-in-console"})
            vault_write("quickstart/%s-next" % host, console["value"])
    for name, value in exports.items():
        print("export %s=%s" % (name, shlex.quote(value)))
    sys.stderr.write("quickstart: seeded %s in Vault under secret/quickstart/\n" % ", ".join(HOSTS.values()))


if __name__ == "__main__":
    main()
