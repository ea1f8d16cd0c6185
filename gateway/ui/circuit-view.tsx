/** @jsxRuntime automatic @jsxImportSource hono/jsx */
// The circuit breakers' table, shared by /ui/status (signed in) and /status/<token> (public).
// The public table is built from publicView only, so it cannot show what that leaves out
// (paths, queries, errors, counts). A state reads as icon + word + colour, and the history
// strip's cells differ in lightness and pattern too, so both survive greyscale printing.
import type { Child } from 'hono/jsx';
import type { CircuitView, HistoryBucket } from '../api/circuit-queries.ts';
import { Badge, Time } from './components.tsx';

type State = HistoryBucket['state'];
const STATE_WORD: Record<State, string> = { closed: 'closed', half_open: 'half open', open: 'open' };

const hourLabel = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
const pct = (r: number) => `${Math.round(r * 1000) / 10}%`;

/** 24 cells, oldest first; each one's title says the hour, its worst state and (when given) its counts. */
export function HistoryStrip({ history }: { history: { hour: string; state: State; requests?: number; failures?: number }[] }) {
  const bad = history.filter((b) => b.state !== 'closed').length;
  const summary = bad ? `last 24 hours: not closed during ${bad} of them` : 'last 24 hours: closed throughout';
  return (
    <span class="strip" role="img" aria-label={summary} title={summary}>
      {history.map((b) => {
        const counts = b.requests === undefined ? '' : `, ${b.requests} requests, ${b.failures ?? 0} failed`;
        return <span class={`cell ${b.state}`} title={`${hourLabel(b.hour)}: ${STATE_WORD[b.state]}${counts}`} />;
      })}
    </span>
  );
}

export function StripLegend() {
  return (
    <p class="legend muted">
      History, one cell an hour, oldest left, coloured by the worst state in that hour: <span class="cell closed" /> closed{' '}
      <span class="cell half_open" /> half open <span class="cell open" /> open. Hover a cell for its hour (UTC).
    </p>
  );
}

/** The signed-in table: every origin, its endpoints beneath; `actions` adds e.g. a Reset button to a row. */
export function CircuitTable({ list, actions }: { list: CircuitView[]; actions?: (v: CircuitView) => Child }) {
  if (!list.length) return <p class="empty">No origin has had an attempt in the last 24 hours.</p>;
  return (
    <div class="table-wrap">
      <table class="circuits">
        <thead>
          <tr>
            <th>Origin / endpoint</th>
            <th>State</th>
            <th class="num">Failure rate</th>
            <th class="num">Requests (24 h)</th>
            <th>Last error</th>
            <th>History (24 h)</th>
            <th />
          </tr>
        </thead>
        {list.map((v) => (
          <tbody class={`origin ${v.state}`} data-origin={v.origin}>
            <tr class="origin-row">
              <th scope="row" class="mono origin-name">
                {v.origin}
              </th>
              <td class="nowrap">
                <Badge status={v.state} />
                {v.state === 'open' && v.next_probe_at ? (
                  <div class="muted small">
                    probe at <Time at={v.next_probe_at} short />
                  </div>
                ) : null}
              </td>
              <td class="num">{pct(v.failure_rate)}</td>
              <td class="num">{`${v.requests} (${v.failures} failed)`}</td>
              <td class="error-text">{v.last_error ?? <span class="muted">—</span>}</td>
              <td>
                <HistoryStrip history={v.history} />
              </td>
              <td class="actions">{actions?.(v)}</td>
            </tr>
            {v.endpoints.map((e) => (
              <tr class="endpoint">
                <td class="url mono" title={e.url}>
                  {`↳ ${e.url.slice(v.origin.length) || '/'}`}
                </td>
                <td class="muted">{e.last_status === null ? '—' : `last HTTP ${e.last_status}`}</td>
                <td class="num muted">{e.success_rate === null ? '—' : `${pct(1 - e.success_rate)}`}</td>
                <td colspan={2} class="muted">
                  last attempt <Time at={e.last_attempt_at} short />
                </td>
                <td colspan={2} />
              </tr>
            ))}
          </tbody>
        ))}
      </table>
    </div>
  );
}

/** The public table: origin, state and the history's states; nothing else reaches it. */
export function PublicCircuitTable({ list }: { list: { origin: string; state: State; history: { hour: string; state: State }[] }[] }) {
  if (!list.length) return <p class="empty">No origin has had an attempt in the last 24 hours.</p>;
  return (
    <div class="table-wrap">
      <table class="circuits">
        <thead>
          <tr>
            <th>Origin</th>
            <th>State</th>
            <th>History (24 h)</th>
          </tr>
        </thead>
        <tbody>
          {list.map((v) => (
            <tr class={`origin-row ${v.state}`} data-origin={v.origin}>
              <th scope="row" class="mono origin-name">
                {v.origin}
              </th>
              <td class="nowrap">
                <Badge status={v.state} />
              </td>
              <td>
                <HistoryStrip history={v.history} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
