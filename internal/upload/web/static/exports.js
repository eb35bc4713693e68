// The list of recent exports, newest first, paginated with the API's continue token (kept in the
// address, so reload and back work).
'use strict';

(() => {
  const rows = document.getElementById('rows');
  const errorBox = document.getElementById('error');
  const older = document.getElementById('older');
  const newest = document.getElementById('newest');
  const params = new URLSearchParams(location.search);
  const token = params.get('continue') || '';

  async function load() {
    await KX.ensureToken();
    const q = new URLSearchParams({ limit: '20' });
    if (token) q.set('continue', token);
    const res = await KX.api(`/api/v1/exports?${q}`);
    if (!res.ok) throw new Error(await KX.errorMessage(res));
    const page = await res.json();
    rows.replaceChildren();
    if (!page.items.length) {
      rows.append(KX.el('tr', {}, KX.el('td', { colspan: 4, class: 'muted' },
        token ? 'No older exports. ' : 'No exports yet. ', KX.el('a', { href: '/' }, 'Upload a document'))));
    }
    for (const v of page.items) {
      const badge = KX.el('span', { class: 'badge', dataset: { phase: v.phase } }, KX.phaseLabel(v.phase));
      rows.append(KX.el('tr', { dataset: { id: v.id } },
        KX.el('td', {}, KX.el('a', { href: v.links.page }, v.filename)),
        KX.el('td', {}, badge),
        KX.el('td', { class: 'num' }, v.output && v.output.pages ? String(v.output.pages) : '—'),
        KX.el('td', { title: KX.formatTime(v.createdAt) }, KX.relativeTime(v.createdAt))));
    }
    newest.hidden = !token;
    older.hidden = !page.continue;
    if (page.continue) older.href = `/exports?continue=${encodeURIComponent(page.continue)}`;
  }

  load().catch((err) => {
    rows.replaceChildren();
    KX.showError(errorBox, err.message);
  });
})();
