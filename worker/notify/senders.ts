// Sending one channel message. HTTP channels (slack, discord, webhook) go through the worker's
// SSRF-safe dispatcher (worker/dispatcher.ts), so a channel target obeys the same rules as a
// task URL at the moment of sending; e-mail goes to the operator's own POSTHORN_SMTP_URL.
import type { Transporter } from 'nodemailer';
import type { Dispatcher } from 'undici';
import { webhookHeaders } from '../../shared/signing.ts';
import { version } from '../../shared/version.ts';
import { findBlockedError } from '../dispatcher.ts';
import { request } from '../http.ts';
import type { Message } from './fold.ts';
import { discordPayload, emailContent, slackPayload, webhookPayload } from './messages.ts';

export type SendResult =
  | { ok: true; statusCode?: number }
  | { ok: false; retryable: boolean; outcome: string; statusCode?: number; error: string };

export type Outgoing = { id: string; team_id: string; team: string; type: string; target: string; message: Message };

export type SenderDeps = {
  dispatcher: Dispatcher;
  /** The team's signing secrets (current first), for `webhook` channels. */
  keysFor: (teamId: string) => Promise<Buffer[]>;
  smtpUrl?: string;
  smtpFrom: string;
  publicUrl?: string;
  /** Whole budget of one send; default 15000. */
  timeoutMs?: number;
  now?: () => number;
};

const RETRYABLE_STATUS = new Set([408, 425, 429]);
const USER_AGENT = `Posthorn/${version}`;

async function postJson(deps: SenderDeps, url: string, body: string, extra: Record<string, string> = {}): Promise<SendResult> {
  const timeoutMs = deps.timeoutMs ?? 15_000;
  try {
    const res = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT, ...extra },
      body,
      dispatcher: deps.dispatcher,
      signal: AbortSignal.timeout(timeoutMs),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    // Read at most a little of the answer for the record; never the whole of a large body.
    let text = '';
    for await (const chunk of res.body) {
      if (text.length < 500) text += chunk.toString();
      else break;
    }
    res.body.destroy();
    const code = res.statusCode;
    if (code >= 200 && code < 300) return { ok: true, statusCode: code };
    const retryable = code >= 500 || RETRYABLE_STATUS.has(code);
    return { ok: false, retryable, outcome: 'http_error', statusCode: code, error: `HTTP ${code}${text ? `: ${text.slice(0, 300)}` : ''}` };
  } catch (err) {
    const blocked = findBlockedError(err);
    if (blocked) return { ok: false, retryable: false, outcome: 'blocked', error: blocked.message };
    const e = err as Error & { code?: string };
    const timeout = e.name === 'TimeoutError' || e.name === 'AbortError' || /timeout/i.test(e.code ?? '');
    const cause = (e.cause as { code?: string; message?: string } | undefined) ?? undefined;
    const detail = cause?.code ?? e.code ?? e.message;
    return { ok: false, retryable: true, outcome: timeout ? 'timeout' : 'network_error', error: String(detail).slice(0, 300) };
  }
}

export function createSenders(deps: SenderDeps) {
  const now = deps.now ?? Date.now;
  // nodemailer is imported by the first e-mail: a worker that sends none idles ~5 MB smaller (84 MB, was 89).
  let mailer: Promise<Transporter> | null = null;

  async function email(o: Outgoing): Promise<SendResult> {
    if (!deps.smtpUrl) return { ok: false, retryable: false, outcome: 'smtp_error', error: 'POSTHORN_SMTP_URL is not set' };
    // One pooled transport per process; nodemailer parses smtp:// and smtps:// URLs itself.
    const url = deps.smtpUrl;
    mailer ??= import('nodemailer').then((m) => m.createTransport(url, { from: deps.smtpFrom }));
    const c = emailContent(o.message, deps.publicUrl);
    try {
      await (await mailer).sendMail({ to: o.target, subject: c.subject, text: c.text, html: c.html });
      return { ok: true };
    } catch (err) {
      const e = err as Error & { responseCode?: number; code?: string };
      // 5xx from the SMTP server is permanent (no such mailbox, relay denied); 4xx and
      // connection problems are worth another try.
      const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500;
      return { ok: false, retryable: !permanent, outcome: 'smtp_error', statusCode: e.responseCode, error: e.message.slice(0, 300) };
    }
  }

  async function send(o: Outgoing): Promise<SendResult> {
    switch (o.type) {
      case 'email':
        return email(o);
      case 'slack':
        return postJson(deps, o.target, JSON.stringify(slackPayload(o.message, deps.publicUrl)));
      case 'discord':
        return postJson(deps, o.target, JSON.stringify(discordPayload(o.message, deps.publicUrl)));
      case 'webhook': {
        // Signed like a task delivery (Standard Webhooks, the team's whsec_ secrets); the
        // delivery id is the webhook-id, the same on every retry, so receivers can dedupe.
        const body = JSON.stringify(webhookPayload(o.message, o.team));
        let keys: Buffer[];
        try {
          keys = await deps.keysFor(o.team_id);
        } catch (err) {
          return { ok: false, retryable: true, outcome: 'network_error', error: (err as Error).message };
        }
        return postJson(deps, o.target, body, webhookHeaders(keys, o.id, Math.floor(now() / 1000), body));
      }
      default:
        return { ok: false, retryable: false, outcome: 'invalid', error: `unknown channel type ${o.type}` };
    }
  }

  return {
    send,
    close: () =>
      void mailer?.then(
        (m) => m.close(),
        () => {},
      ),
  };
}
