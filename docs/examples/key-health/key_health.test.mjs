// node --test docs/examples/key-health/  (the provider: KEY_HEALTH_BASE_URL, a live key
// KEY_HEALTH_LIVE_KEY and a revoked one KEY_HEALTH_DEAD_KEY, of KEY_HEALTH_PROVIDER; the
// collection's tests run it against the provider emulator)
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

import { keyHealthRoute } from "./express.mjs";
import { fingerprint } from "./probe.mjs";
import worker from "./worker.mjs";

const { KEY_HEALTH_BASE_URL: base, KEY_HEALTH_PROVIDER: provider, KEY_HEALTH_LIVE_KEY: live,
        KEY_HEALTH_DEAD_KEY: dead } = process.env;
const fp = (key) => "sha256:" + createHash("sha256").update(key, "utf8").digest("hex").slice(0, 12);

test("fingerprint is sha256: and the first 12 hex digits", async () => {
  assert.equal(await fingerprint("sk-test"), fp("sk-test"));
});

test("the Worker reports its secret live, and a revoked one not live", { skip: !base }, async () => {
  const secret = `${provider.toUpperCase()}_API_KEY`;
  for (const [key, expected] of [[live, true], [dead, false]]) {
    const env = { KEY_PROVIDER: provider, [secret]: key, PROVIDER_BASE_URL: base };
    const resp = await worker.fetch(new Request("https://signer.example/healthz/key"), env);
    assert.equal(resp.status, 200);
    const body = await resp.json();
    assert.deepEqual(body, { live: expected, fingerprint: fp(key) });
    assert.ok(!JSON.stringify(body).includes(key));
  }
  const other = await worker.fetch(new Request("https://signer.example/"), { KEY_PROVIDER: provider });
  assert.equal(other.status, 404);
});

test("the Express route reads the key it holds now", { skip: !base }, async () => {
  let current = dead;
  const route = keyHealthRoute(provider, () => current, base);
  const answers = [];
  const res = { headers: {}, set(k, v) { this.headers[k] = v; }, status(code) { this.code = code; return this; },
                json(body) { answers.push([this.code, body]); } };
  await route({}, res);
  current = live;
  await route({}, res);
  assert.deepEqual(answers, [[200, { live: false, fingerprint: fp(dead) }], [200, { live: true, fingerprint: fp(live) }]]);
  assert.equal(res.headers["cache-control"], "no-store");
});
