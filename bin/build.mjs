// The JavaScript build that `posthorn` runs: bin/cli.ts and everything it imports from this
// repository, bundled by esbuild (a dependency of tsx, already installed) into ES modules split
// per command, so a worker loads only the worker's code. Packages stay imports of node_modules.
//
// Why not tsx at run time: on Node 20 its loader runs in a thread of its own with a second V8
// isolate, ~20 MB of every process's RSS; with the gateway's code also loaded into every worker
// a worker idled at ~116 MB, built and split at ~78 MB (docs/bench.md, memory).
//
// There is no build step to forget: the build is made on first start and made again when any
// source file changes. A manifest lists every input with its mtime and size; checking it costs
// one stat per file (~130) at start. Processes that start together may each build; each writes
// its own directory and the last manifest wins, so every process runs a complete build.
// When the cache cannot be written (a read-only install), `posthorn` falls back to tsx.
//
//   node bin/build.mjs     builds now (the Dockerfile does, so the image starts without it)
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// One cache per checkout: a build holds its checkout's absolute paths (below), and a copy of the
// repository may share node_modules through hard links or a symlink.
/** Where the builds of the checkout at `root` (with its trailing separator) are kept. */
export const cacheDirFor = (root) =>
  path.join(root, 'node_modules', '.cache', 'posthorn', createHash('sha256').update(root).digest('hex').slice(0, 16));
const CACHE = cacheDirFor(ROOT);
const MANIFEST = path.join(CACHE, 'manifest.json');
// A build left by a process that may still import its chunks is kept this long after it was replaced.
const KEEP_REPLACED_MS = 10 * 60_000;

const fingerprint = (s) => `${s.mtimeMs}:${s.size}`;

/** The entry of the current build, or null when a source changed since (or there is none). */
async function current() {
  let manifest;
  try {
    manifest = JSON.parse(await readFile(MANIFEST, 'utf8'));
  } catch {
    return null;
  }
  if (manifest.node !== process.version) return null;
  const checks = await Promise.all(
    Object.entries(manifest.inputs).map(async ([file, was]) => {
      try {
        return fingerprint(await stat(path.join(ROOT, file))) === was;
      } catch {
        return false;
      }
    }),
  );
  if (!checks.every(Boolean)) return null;
  const entry = path.join(CACHE, manifest.dir, 'cli.js');
  try {
    await stat(entry);
    return entry;
  } catch {
    return null;
  }
}

/**
 * A bundle moves the code, and `import.meta.url` with it: each source file's own URL is written
 * in its place, so the few paths resolved from it (migrations, UI assets, package.json, this
 * command) still name the files in the repository.
 */
const keepImportMetaUrl = {
  name: 'keep-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.tsx?$/ }, async (args) => {
      if (args.path.includes(`${path.sep}node_modules${path.sep}`)) return undefined;
      const source = await readFile(args.path, 'utf8');
      return {
        contents: source.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)),
        loader: args.path.endsWith('.tsx') ? 'tsx' : 'ts',
      };
    });
  },
};

async function build() {
  const { build: esbuild } = await import('esbuild');
  await mkdir(CACHE, { recursive: true });
  const dir = `b-${Date.now().toString(36)}-${process.pid}`;
  const tmp = path.join(CACHE, `.tmp-${dir}`);
  const result = await esbuild({
    absWorkingDir: ROOT,
    entryPoints: { cli: 'bin/cli.ts' },
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.18',
    packages: 'external',
    // Not minified, so a stack trace still names functions and files (each module keeps a
    // `// gateway/app.ts` header); NODE_OPTIONS=--enable-source-maps maps lines to the sources.
    sourcemap: 'linked',
    // The UI's JSX is hono/jsx (as tsconfig.base.json says for tsc and tsx), stated here so the
    // build does not depend on a tsconfig being present (the Docker image copies the sources only).
    jsx: 'automatic',
    jsxImportSource: 'hono/jsx',
    metafile: true,
    logLevel: 'error',
    plugins: [keepImportMetaUrl],
  });
  const inputs = {};
  for (const file of Object.keys(result.metafile.inputs)) inputs[file] = fingerprint(await stat(path.join(ROOT, file)));
  await rename(tmp, path.join(CACHE, dir));
  const manifestTmp = `${MANIFEST}.${process.pid}`;
  await writeFile(manifestTmp, JSON.stringify({ node: process.version, dir, inputs }));
  await rename(manifestTmp, MANIFEST);
  await removeReplaced(dir);
  return path.join(CACHE, dir, 'cli.js');
}

async function removeReplaced(keep) {
  for (const name of await readdir(CACHE)) {
    if (name === keep || !/^(\.tmp-)?b-/.test(name)) continue;
    const full = path.join(CACHE, name);
    const s = await stat(full).catch(() => null);
    if (s && Date.now() - s.mtimeMs > KEEP_REPLACED_MS) await rm(full, { recursive: true, force: true });
  }
}

/** The file to import to run `posthorn`: the current build, made now if needed; null if it cannot be made. */
export async function builtEntry() {
  const found = await current();
  if (found) return found;
  try {
    return await build();
  } catch (err) {
    if (err?.errors) throw err; // esbuild found an error in the sources: tsx would fail on it too
    process.emitWarning(`posthorn: running through tsx; the build could not be written (${err?.code ?? err?.message})`);
    return null;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const entry = await build();
  console.log(`posthorn: built ${path.relative(ROOT, entry)}`);
}
