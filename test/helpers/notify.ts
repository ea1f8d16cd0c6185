// Real receivers for notification tests: an SMTP server (smtp-server) whose mails are parsed
// with mailparser, and a notifier wired like the worker's (safe dispatcher, team signer).
import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { pino } from 'pino';
import { SMTPServer } from 'smtp-server';
import type { Sql } from '../../shared/db.ts';
import { createTargetPolicy } from '../../shared/targets.ts';
import { createSafeDispatcher } from '../../worker/dispatcher.ts';
import { createNotifier } from '../../worker/maintenance/notifier.ts';
import { createSigner } from '../../worker/signer.ts';

export async function startSmtp() {
  const mails: (ParsedMail & { envelopeTo: string[] })[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (m) => {
          mails.push(Object.assign(m, { envelopeTo: session.envelope.rcptTo.map((r) => r.address) }));
          callback();
        },
        (err) => callback(err),
      );
    },
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.server.address() as AddressInfo;
  return { url: `smtp://127.0.0.1:${port}`, mails, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

export function testNotifier(sql: Sql, o: { smtpUrl?: string; publicUrl?: string } = {}) {
  const dispatcher = createSafeDispatcher(createTargetPolicy({ allowPrivate: true, allowlist: [] }));
  const signer = createSigner(sql);
  const notifier = createNotifier({
    sql,
    logger: pino({ level: 'silent' }),
    dispatcher,
    keysFor: signer.keysFor,
    smtpUrl: o.smtpUrl,
    smtpFrom: 'Posthorn <posthorn@example.test>',
    publicUrl: o.publicUrl,
  });
  return {
    ...notifier,
    close: async () => {
      notifier.close();
      await dispatcher.close();
    },
  };
}
