// The stylesheet and script, read once at start and served from /ui/assets with a content
// hash in their URLs: cached for a year, and a new version is a new URL.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

function asset(file: string, type: string) {
  const body = readFileSync(new URL(`./assets/${file}`, import.meta.url));
  const hash = createHash('sha256').update(body).digest('hex').slice(0, 12);
  return { file, type, body, hash, href: `/ui/assets/${file}?v=${hash}` };
}

export const ASSETS = {
  css: asset('ui.css', 'text/css; charset=utf-8'),
  js: asset('ui.js', 'text/javascript; charset=utf-8'),
};

export const assetByName = (name: string) => Object.values(ASSETS).find((a) => a.file === name);
