// The zero-token check and the fingerprint shared by the JavaScript key health endpoints
// (docs/key-health-endpoint.md). Runs on Cloudflare Workers and Node 18+ (fetch, Web Crypto).

const PROBES = {
  anthropic: { base: "https://api.anthropic.com", path: "/v1/models?limit=1",
               headers: (key) => ({ "x-api-key": key, "anthropic-version": "2023-06-01" }) },
  openai: { base: "https://api.openai.com/v1", path: "/models",
            headers: (key) => ({ authorization: `Bearer ${key}` }) },
  openrouter: { base: "https://openrouter.ai/api/v1", path: "/key",
                headers: (key) => ({ authorization: `Bearer ${key}` }) },
};

export async function fingerprint(key) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `sha256:${hex.slice(0, 12)}`;
}

// Whether the provider accepts `key` on its endpoint that bills no tokens: 2xx is live, anything
// else (401/403, 429, 5xx, no answer) is not live, and never an exception.
export async function keyIsLive(provider, key, baseUrl) {
  const probe = PROBES[provider];
  if (!probe || !key) return false;
  try {
    const resp = await fetch((baseUrl || probe.base).replace(/\/+$/, "") + probe.path,
                             { headers: probe.headers(key), signal: AbortSignal.timeout(5000) });
    return resp.ok;
  } catch {
    return false;
  }
}

// {"live", "fingerprint"} for the key held now, the outcome cached for `ttlMs` per key.
export function keyHealth(ttlMs = 15000) {
  let cached = { key: null, at: 0, body: null };
  return async (provider, key, baseUrl) => {
    const now = Date.now();
    if (cached.body === null || cached.key !== key || now - cached.at > ttlMs || !cached.body.live) {
      const body = { live: await keyIsLive(provider, key, baseUrl), fingerprint: key ? await fingerprint(key) : null };
      cached = { key, at: now, body };
    }
    return cached.body;
  };
}
