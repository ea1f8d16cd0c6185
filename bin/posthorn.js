#!/usr/bin/env node
// The `posthorn` command. The sources are TypeScript; they run from the JavaScript build that
// bin/build.mjs makes on first start and again after any source changes, so there is no build
// step between `npm ci` and `npm start`. Where that build cannot be written, through tsx.
import { builtEntry } from './build.mjs';

const entry = await builtEntry();
if (entry) await import(entry);
else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./cli.ts');
}
