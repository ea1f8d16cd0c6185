// A pino logger whose lines a test can read (and grep for secrets). No redaction, unlike the
// real one: a value that reaches a log call at all shows up here.
import { Writable } from 'node:stream';
import { pino } from 'pino';

export function captureLogger(level = 'debug') {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(l);
      done();
    },
  });
  const logger = pino({ level }, stream);
  return {
    logger,
    lines,
    text: () => lines.join('\n'),
    records: () => lines.map((l) => JSON.parse(l) as Record<string, any>),
  };
}
