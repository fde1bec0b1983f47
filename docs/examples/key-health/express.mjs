// Node/Express: a key health route. The key is read by `getKey()` each time, from where the
// application really reads it (process.env after a reload, a file, your Vault client):
//
//   import express from "express";
//   import { keyHealthRoute } from "./express.mjs";
//   const app = express();
//   app.get("/healthz/key", keyHealthRoute("openai", () => currentKey));
//
// Nothing here needs Express itself: the handler only calls res.set(), res.status() and res.json().
import { keyHealth } from "./probe.mjs";

export function keyHealthRoute(provider, getKey, baseUrl = process.env.PROVIDER_BASE_URL) {
  const health = keyHealth();
  return async (req, res) => {
    const body = await health(provider, await getKey(), baseUrl);
    res.set("cache-control", "no-store");
    res.status(200).json(body);
  };
}
