import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { pathToFileURL } from "node:url";
import { join } from "node:path";

// The engine embeds rs/api/src/web/streams.js (include_str!); it must match a fresh build of src/.
test("the bundle the engine serves is up to date with src/ (npm run bundle)", async () => {
  const root = process.cwd(); // npm test runs in sdk/ts
  const mod = (await import(pathToFileURL(join(root, "scripts", "bundle.mjs")).href)) as { bundle: () => Promise<string>; BUNDLE_PATH: string };
  const fresh = await mod.bundle();
  const committed = await readFile(mod.BUNDLE_PATH, "utf8");
  assert.ok(committed === fresh, `${mod.BUNDLE_PATH} is stale: run \`npm run bundle\` in sdk/ts`);
});
