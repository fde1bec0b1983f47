# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A key health endpoint for a Python application, standard library only (docs/key-health-endpoint.md).

``KeyHealth(provider, get_key)`` answers ``{"live", "fingerprint"}`` for the key ``get_key()``
returns now; mount :meth:`KeyHealth.answer` on ``GET /healthz/key`` of any framework (Flask:
``return jsonify(health.answer())``). Run as a program, it is a small service that holds a key
read from ``--key-file`` (or ``--key-env``), re-reads the file on SIGHUP, and serves the endpoint:
the shape of an application on a VM or in a container whose key a file delivers.

    python3 key_health.py --provider openai --key-file /etc/myapp/openai.key --port 8080
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import threading
import time
import typing as t
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROBES = {
    # provider: (official base URL, zero-token path, headers for a key)
    "anthropic": ("https://api.anthropic.com", "/v1/models?limit=1",
                  lambda key: {"x-api-key": key, "anthropic-version": "2023-06-01"}),
    "openai": ("https://api.openai.com/v1", "/models", lambda key: {"Authorization": "Bearer " + key}),
    "openrouter": ("https://openrouter.ai/api/v1", "/key", lambda key: {"Authorization": "Bearer " + key}),
}


def fingerprint(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def key_is_live(provider: str, key: str, base_url: t.Optional[str] = None, timeout: float = 5.0) -> bool:
    """2xx from the provider's endpoint that bills no tokens; anything else (401/403, 429, 5xx, no answer) is not live."""
    base, path, headers = PROBES[provider]
    request = urllib.request.Request((base_url or base).rstrip("/") + path, headers=headers(key))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # nosec - a fixed https URL or the one configured
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


class KeyHealth:
    """The endpoint's answer, cached ``ttl`` seconds per key (a new key is checked at once)."""

    def __init__(self, provider: str, get_key: t.Callable[[], t.Optional[str]], base_url: t.Optional[str] = None,
                 ttl: float = 15.0) -> None:
        if provider not in PROBES:
            raise ValueError("provider must be one of %s" % ", ".join(PROBES))
        self.provider, self.get_key, self.base_url, self.ttl = provider, get_key, base_url, ttl
        self._cached: t.Tuple[t.Optional[str], float, dict] = (None, 0.0, {})
        self._lock = threading.Lock()

    def answer(self) -> dict:
        key = self.get_key()
        if not key:
            return {"live": False, "fingerprint": None}
        with self._lock:
            held, at, body = self._cached
            if held == key and body.get("live") and time.monotonic() - at < self.ttl:
                return dict(body)
        body = {"live": key_is_live(self.provider, key, self.base_url), "fingerprint": fingerprint(key)}
        with self._lock:
            self._cached = (key, time.monotonic(), body)
        return dict(body)


class KeyFromFile:
    """The key an application holds: read from a file at start and again on SIGHUP (a reload)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.key: t.Optional[str] = None
        self.reloads = 0
        self.reload()

    def reload(self, *_signal: t.Any) -> None:
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                self.key = handle.read().strip() or None
        except OSError:
            self.key = None  # keep serving: the endpoint then says not live
        self.reloads += 1


def serve(health: KeyHealth, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if self.path.split("?")[0] != "/healthz/key":
                self.send_error(404)
                return
            data = json.dumps(health.answer()).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
            pass  # never log requests: nothing secret is in them, but keep the output quiet

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--provider", required=True, choices=sorted(PROBES))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--key-file", help="the file the key is delivered to; re-read on SIGHUP")
    source.add_argument("--key-env", help="the environment variable that holds the key")
    parser.add_argument("--base-url", help="the provider's base URL (only to point at a test double)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--cache-seconds", type=float, default=15.0, help="how long a live answer is reused")
    args = parser.parse_args(argv)
    holder = KeyFromFile(args.key_file) if args.key_file else None

    def get_key() -> t.Optional[str]:
        return holder.key if holder is not None else os.environ.get(args.key_env)

    if holder is not None:
        signal.signal(signal.SIGHUP, holder.reload)
    server = serve(KeyHealth(args.provider, get_key, args.base_url, args.cache_seconds), args.port, args.host)

    def stop(*_signal: t.Any) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
