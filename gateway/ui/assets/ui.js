// Posthorn web UI: progressive enhancement only. Every page works without this file; with it,
// times show in the browser's zone, "replay all" and revocations ask first, and pages marked
// data-live refresh themselves. Served from /ui/assets (CSP: script-src 'self', nothing inline).
(() => {
  const pad = (n) => String(n).padStart(2, '0');
  const zone = (() => {
    try {
      const part = new Intl.DateTimeFormat(undefined, { timeZoneName: 'short' })
        .formatToParts(new Date())
        .find((p) => p.type === 'timeZoneName');
      return part ? part.value : '';
    } catch {
      return '';
    }
  })();

  const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const sameDay = (a, b) => a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();

  // The title keeps the UTC time the server wrote; the text becomes local time. Short times
  // (dense tables) drop what the reader already knows: today's date, this year.
  function localTimes(root) {
    const now = new Date();
    for (const t of root.querySelectorAll('time[datetime]')) {
      const d = new Date(t.getAttribute('datetime'));
      if (Number.isNaN(d.getTime())) continue;
      const clock = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
      if (!t.classList.contains('short')) {
        t.textContent = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock} ${zone}`.trim();
      } else if (sameDay(d, now)) {
        t.textContent = clock;
      } else {
        const day = `${d.getDate()} ${MONTHS[d.getMonth()]}`;
        t.textContent = d.getFullYear() === now.getFullYear() ? `${day} ${clock}` : `${day} ${d.getFullYear()} ${clock.slice(0, 5)}`;
      }
    }
    const note = document.getElementById('zone-note');
    if (note)
      note.textContent = `Times are in your browser's zone (${Intl.DateTimeFormat().resolvedOptions().timeZone}, ${zone}); hover one for UTC.`;
  }

  document.addEventListener('submit', (e) => {
    const form = e.target;
    if (!(form instanceof HTMLFormElement)) return;
    const question = form.getAttribute('data-confirm');
    if (!question) return;
    if (!window.confirm(question)) {
      e.preventDefault();
      return;
    }
    // Forms that would otherwise show a confirmation page skip it: the question was asked here.
    const confirmed = form.querySelector('input[name="confirmed"]');
    if (confirmed) confirmed.value = '1';
  });

  async function refresh(main) {
    const busy = main.contains(document.activeElement) && document.activeElement !== main;
    if (document.visibilityState !== 'visible' || busy) return true;
    let res;
    try {
      res = await fetch(location.href, { credentials: 'same-origin', headers: { accept: 'text/html' } });
    } catch {
      return true; // offline for a moment: try again next time
    }
    // A 404 is news too (a revoked public status page, a deleted task): show it and stop.
    if (res.redirected || (!res.ok && res.status !== 404)) {
      if (new URL(res.url).pathname === '/ui/login') location.reload();
      return true;
    }
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html');
    const fresh = doc.getElementById('main');
    if (!fresh) return true;
    // Keep what the reader opened open.
    const open = new Set([...main.querySelectorAll('details[open][id]')].map((d) => d.id));
    main.replaceChildren(...fresh.childNodes);
    for (const id of open) document.getElementById(id)?.setAttribute('open', '');
    localTimes(main);
    return fresh.hasAttribute('data-live');
  }

  function live() {
    const main = document.getElementById('main');
    const every = Number(main?.getAttribute('data-live'));
    if (!main || !every) return;
    const tick = async () => {
      if (await refresh(main)) setTimeout(tick, every * 1000);
      else document.getElementById('live-note')?.remove(); // finished: nothing more will change
    };
    setTimeout(tick, every * 1000);
  }

  localTimes(document);
  live();
})();
