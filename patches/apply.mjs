// Run by `npm install` / `npm ci` (package.json "postinstall"): fixes in dependencies that their
// released versions do not have yet. Each fix names the exact text it replaces and fails the
// install when that text is not there (a dependency upgraded without looking at its fix), so a
// fix can never silently stop applying. Running it twice is harmless.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

// postgres.js 3.4.9 (the latest release) kills the process when a connection dies inside
// sql.begin(): the failed query makes begin() send its own ROLLBACK on the closed connection,
// whose socket is already null, and the write scheduled by setImmediate throws a TypeError that
// no caller can catch (upstream issues porsager/postgres#1154 and #1208; the fixes, #1209 and
// #1215, are not released). Every worker and the gateway run transactions, so a database restart
// or failover took them down with it (test/db-reconnect.test.ts reproduces it). The fix, as
// upstream proposes it: a transaction's work after its connection closed is rejected with that
// close error, a write on a connection with no socket rejects its queries instead of throwing, and
// a closed session leaves no query or error behind for the next one.
const postgresFixes = [
  {
    file: 'src/index.js',
    marker: 'posthorn: closed transaction',
    from: `      , connection
      , prepare = null

    try {
      await sql.unsafe('begin ' + options.replace(/[^a-z ]/ig, ''), [], { onexecute }).execute()
      return await Promise.race([
        scope(connection, fn),
        new Promise((_, reject) => connection.onclose = reject)
      ])`,
    to: `      , connection
      , prepare = null
      , closedError = null // posthorn: closed transaction

    try {
      await sql.unsafe('begin ' + options.replace(/[^a-z ]/ig, ''), [], { onexecute }).execute()
      return await Promise.race([
        scope(connection, fn),
        new Promise((_, reject) => connection.onclose = e => reject(closedError = e))
      ])`,
  },
  {
    file: 'src/index.js',
    marker: 'posthorn: no work on a closed transaction',
    from: `      function handler(q) {
        q.catch(e => uncaughtError || (uncaughtError = e))
        c.queue === full`,
    to: `      function handler(q) {
        q.catch(e => uncaughtError || (uncaughtError = e))
        if (closedError) return q.reject(closedError) // posthorn: no work on a closed transaction
        c.queue === full`,
  },
  {
    file: 'src/connection.js',
    marker: 'posthorn: no socket',
    from: `  function nextWrite(fn) {
    const x = socket.write(chunk, fn)`,
    to: `  function nextWrite(fn) {
    if (!socket) { // posthorn: no socket (closed since the write was scheduled)
      nextWriteTimer !== null && clearImmediate(nextWriteTimer)
      chunk = nextWriteTimer = null
      error(Errors.connection('CONNECTION_CLOSED', options))
      return false
    }
    const x = socket.write(chunk, fn)`,
  },
  {
    file: 'src/connection.js',
    marker: 'posthorn: nothing of the old session',
    from: `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
    closedTime = performance.now()`,
    to: `    !hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
    // posthorn: nothing of the old session carries over: its query is settled, and the error the
    // server sent before closing (57P01 on a terminated backend) must not fail the next session's
    // first query (upstream 3.4.9 rejected that query with it).
    hadError && (query || sent.length) && error(Errors.connection('CONNECTION_CLOSED', options, socket))
    query = errorResponse = null
    closedTime = performance.now()`,
  },
];

function patch(pkg, version, fixes) {
  const root = path.join(import.meta.dirname, '..', 'node_modules', pkg); // npm runs this from the project's root
  const actual = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  if (actual !== version) {
    throw new Error(`patches/apply.mjs: ${pkg} is ${actual}, the fixes here are for ${version}; check whether ${actual} still needs them`);
  }
  for (const fix of fixes) {
    const file = path.join(root, fix.file);
    const text = readFileSync(file, 'utf8');
    if (text.includes(fix.marker)) continue;
    const at = text.indexOf(fix.from);
    if (at < 0 || text.indexOf(fix.from, at + 1) >= 0) {
      throw new Error(`patches/apply.mjs: ${pkg}/${fix.file} does not hold the text to fix exactly once (${fix.marker})`);
    }
    writeFileSync(file, text.slice(0, at) + fix.to + text.slice(at + fix.from.length));
  }
}

patch('postgres', '3.4.9', postgresFixes);
