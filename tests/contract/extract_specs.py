# -*- coding: utf-8 -*-
# Copyright: contributors to the apikeys.rotation collection
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Re-extract the trimmed OpenAPI documents the contract test validates against.

    python tests/contract/extract_specs.py OPENAI_DOC OPENROUTER_DOC

Each argument is a provider's whole published OpenAPI document (YAML or JSON). The
operations the collection calls (``OPERATIONS``) are kept with every component schema,
parameter and response they reference, transitively; everything else is dropped. The
result is written as ``openai.json`` and ``openrouter.json`` beside this file, and
``SOURCES.md`` says where each came from: give the source and commit with ``--source``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import typing as t

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))

# The operations the collection's clients call (and the emulator must answer as published).
OPERATIONS: t.Dict[str, t.List[t.Tuple[str, str]]] = {
    "openai": [
        ("/models", "get"),
        ("/organization/projects/{project_id}/api_keys", "get"),
        ("/organization/projects/{project_id}/api_keys/{api_key_id}", "get"),
        ("/organization/projects/{project_id}/api_keys/{api_key_id}", "delete"),
        ("/organization/projects/{project_id}/service_accounts", "post"),
        ("/organization/projects/{project_id}/service_accounts/{service_account_id}", "delete"),
        ("/organization/projects/{project_id}/service_accounts/{service_account_id}/api_keys", "post"),
    ],
    "openrouter": [
        ("/key", "get"),
        ("/keys", "get"),
        ("/keys", "post"),
        ("/keys/{hash}", "get"),
        ("/keys/{hash}", "patch"),
        ("/keys/{hash}", "delete"),
    ],
}
# Schemas kept even when no kept operation names them: the error shape used for answers
# that a document does not list for an operation (see test_contract.py).
EXTRA_SCHEMAS = {"openai": ["ErrorResponse"], "openrouter": []}
# Examples are long and never validated: dropped to keep the copies small.
DROP_KEYS = {"example", "examples", "x-oaiMeta", "x-speakeasy-name-override", "x-codeSamples"}


def load(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def strip(node: t.Any) -> t.Any:
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROP_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def refs(node: t.Any) -> t.Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def trim(doc: dict, provider: str) -> dict:
    paths: dict = {}
    for path, method in OPERATIONS[provider]:
        item = doc["paths"][path]
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k == "parameters"})
        kept[method] = item[method]
    out = {"openapi": doc["openapi"], "info": {k: doc["info"][k] for k in ("title", "version") if k in doc["info"]},
           "servers": doc.get("servers", []), "security": doc.get("security", []), "paths": strip(paths),
           "components": {}}
    pending = list(refs(out["paths"])) + ["#/components/schemas/%s" % name for name in EXTRA_SCHEMAS[provider]]
    seen: t.Set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen or not ref.startswith("#/components/"):
            continue
        seen.add(ref)
        section, name = ref.split("/", 3)[2:]
        value = strip(doc["components"][section][name])
        out["components"].setdefault(section, {})[name] = value
        pending.extend(refs(value))
    if "securitySchemes" in doc.get("components", {}):
        out["components"]["securitySchemes"] = doc["components"]["securitySchemes"]
    for section in out["components"].values():
        for name in sorted(section):
            section[name] = section.pop(name)
    return out


def main(argv: t.Optional[t.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("openai")
    parser.add_argument("openrouter")
    parser.add_argument("--source", action="append", default=[], metavar="PROVIDER=TEXT",
                        help="where the document came from (repository, file, commit, date)")
    args = parser.parse_args(argv)
    sources = dict(item.split("=", 1) for item in args.source)
    lines = ["# Where the trimmed documents come from", "",
             "Written by `extract_specs.py`; re-run it on a newer published document to refresh them.", "",
             "| file | source | sha256 of the whole document | operations kept |", "|---|---|---|---|"]
    for provider in ("openai", "openrouter"):
        path = getattr(args, provider)
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        trimmed = trim(load(path), provider)
        with open(os.path.join(HERE, provider + ".json"), "w", encoding="utf-8") as handle:
            json.dump(trimmed, handle, indent=1, sort_keys=False)
            handle.write("\n")
        ops = ", ".join("`%s %s`" % (m.upper(), p) for p, m in OPERATIONS[provider])
        lines.append("| `%s.json` | %s | `%s` | %s |" % (provider, sources.get(provider, "(not given)"), digest, ops))
    with open(os.path.join(HERE, "SOURCES.md"), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
