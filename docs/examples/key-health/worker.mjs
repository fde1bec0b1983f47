// A Cloudflare Worker's key health endpoint: GET /healthz/key answers {"live", "fingerprint"} for
// the key the Worker holds now (its secret ANTHROPIC_API_KEY). Copy it next to your Worker's code
// with probe.mjs, or merge the branch into your own fetch handler. Settings (vars):
// KEY_PROVIDER (anthropic, openai, openrouter; default anthropic), KEY_SECRET (the secret's name;
// default <PROVIDER>_API_KEY), PROVIDER_BASE_URL (only to point at a test double).
import { keyHealth } from "./probe.mjs";

const health = keyHealth();

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/healthz/key") {
      const provider = env.KEY_PROVIDER || "anthropic";
      const key = env[env.KEY_SECRET || `${provider.toUpperCase()}_API_KEY`];
      return Response.json(await health(provider, key, env.PROVIDER_BASE_URL), {
        headers: { "cache-control": "no-store" },
      });
    }
    return new Response("not found", { status: 404 });
  },
};
