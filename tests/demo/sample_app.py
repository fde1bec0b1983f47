# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small application that uses one provider API key kept in Vault / OpenBao (stdlib only).

It behaves the way a well-built consumer of a rotated key should:

* reads its key from KV v2 at start (``GET /v1/<mount>/data/<path>`` with a token);
* ``GET /work`` calls the provider's zero-token endpoint with the key: 200 when the
  provider accepts it, 502 otherwise; on a 401 it re-reads Vault once and retries
  (the key may just have been rotated);
* ``POST /reload`` re-reads Vault (what a deploy hook calls);
* ``GET /healthz/key`` answers ``{"live": bool, "fingerprint": "sha256:..."}``: whether
  the key it holds authenticates right now, and which key that is;
* ``GET /stats`` counts requests, failures and reloads.

The key value never leaves the process: logs and answers carry its fingerprint only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import typing as t
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The provider's zero-token endpoint (relative to its base URL) and how the key is sent.
PROBES = {
    "anthropic": ("/v1/models?limit=1", lambda key: {"x-api-key": key, "anthropic-version": "2023-06-01"}),
    "openai": ("/models", lambda key: {"Authorization": "Bearer " + key}),
    "openrouter": ("/key", lambda key: {"Authorization": "Bearer " + key}),
}


def fingerprint(value: t.Optional[str]) -> t.Optional[str]:
    if value is None:
        return None
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:12]


class KeyHolder:
    """The application's current key, re-read from Vault on demand."""

    def __init__(self, vault_addr: str, token: str, mount: str, path: str, field: str) -> None:
        self.url = "%s/v1/%s/data/%s" % (vault_addr.rstrip("/"), mount.strip("/"), path.strip("/"))
        self.token = token
        self.field = field
        self.lock = threading.Lock()
        self.value: t.Optional[str] = None
        self.version: t.Optional[int] = None

    def load(self) -> t.Tuple[t.Optional[str], t.Optional[int]]:
        req = urllib.request.Request(self.url, headers={"X-Vault-Token": self.token})
        with urllib.request.urlopen(req, timeout=10) as resp:
            body = json.loads(resp.read().decode("utf-8"))
        value = body["data"]["data"][self.field]
        version = body["data"]["metadata"]["version"]
        with self.lock:
            self.value, self.version = value, version
        return fingerprint(value), version

    def current(self) -> t.Optional[str]:
        with self.lock:
            return self.value


class Provider:
    def __init__(self, name: str, base_url: str) -> None:
        self.path, self.headers = PROBES[name]
        self.url = base_url.rstrip("/") + self.path

    def call(self, key: t.Optional[str]) -> int:
        """Return the provider's HTTP status for the key (0 on a network error)."""
        if not key:
            return 0
        req = urllib.request.Request(self.url, headers=self.headers(key))
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                resp.read()
                return resp.status
        except urllib.error.HTTPError as exc:
            exc.read()
            return exc.code
        except (urllib.error.URLError, OSError):
            return 0


class Counters:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.data = {"requests": 0, "failures": 0, "reloads": 0, "rereads_on_401": 0}

    def add(self, name: str) -> None:
        with self.lock:
            self.data[name] += 1

    def snapshot(self) -> dict:
        with self.lock:
            return dict(self.data)


class App:
    def __init__(self, keys: KeyHolder, provider: Provider) -> None:
        self.keys = keys
        self.provider = provider
        self.counters = Counters()
        self.reload_lock = threading.Lock()

    def reload(self) -> dict:
        with self.reload_lock:
            fp, version = self.keys.load()
        self.counters.add("reloads")
        return {"fingerprint": fp, "version": version}

    def work(self) -> t.Tuple[int, dict]:
        self.counters.add("requests")
        status = self.provider.call(self.keys.current())
        if status == 401:
            # The key may have been rotated under us: read Vault once and retry.
            self.counters.add("rereads_on_401")
            try:
                self.reload()
            except (urllib.error.URLError, OSError, KeyError, ValueError):
                pass
            status = self.provider.call(self.keys.current())
        if 200 <= status < 300:
            return 200, {"ok": True}
        self.counters.add("failures")
        return 502, {"ok": False, "provider_status": status}

    def health(self) -> dict:
        key = self.keys.current()
        status = self.provider.call(key)
        return {"live": 200 <= status < 300, "fingerprint": fingerprint(key), "provider_status": status}

    def stats(self) -> dict:
        data = self.counters.snapshot()
        data["fingerprint"] = fingerprint(self.keys.current())
        return data


def make_handler(app: App) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: dict) -> None:
            raw = json.dumps(body).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 (http.server naming)
            route = self.path.split("?", 1)[0]
            if route == "/work":
                self._send(*app.work())
            elif route == "/healthz/key":
                self._send(200, app.health())
            elif route == "/stats":
                self._send(200, app.stats())
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if self.path.split("?", 1)[0] != "/reload":
                self._send(404, {"error": "not found"})
                return
            try:
                self._send(200, app.reload())
            except (urllib.error.URLError, OSError, KeyError, ValueError) as exc:
                self._send(503, {"error": "reading the key from Vault failed: %s" % type(exc).__name__})

        def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002 (signature of the base class)
            return

    return Handler


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--provider", choices=sorted(PROBES), required=True)
    parser.add_argument("--base-url", required=True, help="the provider's base URL")
    parser.add_argument("--vault-addr", default=os.environ.get("VAULT_ADDR", "http://127.0.0.1:8200"))
    parser.add_argument("--mount", default="secret")
    parser.add_argument("--path", required=True, help="KV v2 secret path holding the key")
    parser.add_argument("--field", default="api_key")
    args = parser.parse_args(argv)
    token = os.environ.get("VAULT_TOKEN")
    if not token:
        parser.error("VAULT_TOKEN must be set in the environment")

    app = App(KeyHolder(args.vault_addr, token, args.mount, args.path, args.field), Provider(args.provider, args.base_url))
    loaded = app.reload()
    server = ThreadingHTTPServer((args.host, args.port), make_handler(app))
    server.daemon_threads = True
    sys.stdout.write("sample app for %s on http://%s:%d, key %s (version %s)\n"
                     % (args.provider, args.host, args.port, loaded["fingerprint"], loaded["version"]))
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
