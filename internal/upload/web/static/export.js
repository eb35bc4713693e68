// The progress page of one export: live state over Server-Sent Events (polling every 2 s when
// the stream fails), download, cancel and delete. The id comes from the address, so the page
// survives a reload and can be bookmarked.
'use strict';

(() => {
  const id = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
  const api = `/api/v1/exports/${encodeURIComponent(id)}`;
  const $ = (x) => document.getElementById(x);
  const phaseEl = $('phase');
  const errorBox = $('error');
  const live = $('live');
  let current = null;
  let source = null;
  let pollTimer = null;

  $('export-id').textContent = id;

  // step is the index of the step an export is at, for the stepper.
  const stepOf = { Accepted: 0, Queued: 1, Pending: 2, Running: 2, Succeeded: 3, Failed: 3, Cancelled: 3 };

  function render(v) {
    current = v;
    document.title = `${v.filename} · kubexport`;
    $('title').textContent = v.filename;
    phaseEl.textContent = KX.phaseLabel(v.phase);
    phaseEl.dataset.phase = v.phase;
    $('message').textContent = v.cancelRequested && !v.done ? 'Cancelling…' : v.message;

    const at = stepOf[v.phase] ?? 0;
    const failed = v.phase === 'Failed' || v.phase === 'Cancelled';
    $('last-step').textContent = failed ? KX.phaseLabel(v.phase) : 'Done';
    for (const li of document.querySelectorAll('#steps li')) {
      const i = Number(li.dataset.step);
      li.className = '';
      if (i < at || (i === at && v.phase === 'Succeeded')) li.classList.add('complete');
      else if (i === at) li.classList.add(failed ? 'failed' : 'current');
    }
    // An indeterminate bar while the export is under way; the steps say the rest.
    $('meter').hidden = v.done;

    $('failure').hidden = !failed;
    if (failed) {
      $('failure-title').textContent = v.phase === 'Cancelled' ? 'The export was cancelled.' : 'The export failed.';
      $('hint').textContent = v.hint || '';
      $('failure-detail').textContent = v.reason ? `Reason: ${v.reason}${v.message && v.message !== v.hint ? ' — ' + v.message : ''}` : '';
    }

    const facts = $('facts');
    facts.replaceChildren();
    const fact = (k, val) => { if (val) facts.append(KX.el('dt', {}, k), KX.el('dd', {}, val)); };
    fact('Document', `${v.filename}${v.upload && v.upload.sizeBytes ? ' · ' + KX.formatBytes(v.upload.sizeBytes) : ''}`);
    if (v.output) {
      fact('PDF', `${v.output.filename}${v.output.pages ? ' · ' + v.output.pages + (v.output.pages === 1 ? ' page' : ' pages') : ''}` +
        `${v.output.sizeBytes ? ' · ' + KX.formatBytes(v.output.sizeBytes) : ''}`);
    }
    if (v.options) {
      const o = v.options;
      const parts = [];
      if (o.pageRange) parts.push(`pages ${o.pageRange}`);
      if (o.pdfA) parts.push(o.pdfA);
      if (o.exportNotes) parts.push('speaker notes');
      if (o.exportHiddenSlides) parts.push('hidden slides');
      if (o.timeoutSeconds) parts.push(`time limit ${o.timeoutSeconds} s`);
      fact('Options', parts.join(', '));
    }
    fact('Uploaded', KX.formatTime(v.createdAt));
    fact('Finished', KX.formatTime(v.completedAt));

    $('download').hidden = v.phase !== 'Succeeded';
    $('cancel').hidden = v.done || v.cancelRequested;
    $('delete').hidden = !v.done;
    if (v.done) live.textContent = '';
  }

  function renderGone(message) {
    stop();
    current = null;
    $('title').textContent = 'Export not found';
    phaseEl.textContent = 'Gone';
    phaseEl.dataset.phase = 'Cancelled';
    $('message').textContent = message;
    for (const x of ['steps', 'meter', 'facts', 'download', 'cancel', 'delete', 'failure']) $(x).hidden = true;
    live.textContent = '';
  }

  function stop() {
    if (source) { source.close(); source = null; }
    if (pollTimer) { clearTimeout(pollTimer); pollTimer = null; }
  }

  async function fetchState() {
    const res = await KX.api(api);
    if (res.status === 404) { renderGone(await KX.errorMessage(res)); return null; }
    if (!res.ok) throw new Error(await KX.errorMessage(res));
    const v = await res.json();
    render(v);
    return v;
  }

  function poll() {
    live.textContent = 'Checking for updates every 2 seconds.';
    pollTimer = setTimeout(async () => {
      try {
        const v = await fetchState();
        KX.showError(errorBox, '');
        if (v && !v.done) poll();
      } catch (err) {
        KX.showError(errorBox, err.message);
        poll();
      }
    }, 2000);
  }

  function follow() {
    if (!window.EventSource) { poll(); return; }
    const t = KX.token();
    source = new EventSource(`${api}/events${t ? '?access_token=' + encodeURIComponent(t) : ''}`);
    source.addEventListener('open', () => { live.textContent = 'Live updates on.'; });
    source.addEventListener('status', (e) => {
      const v = JSON.parse(e.data);
      render(v);
      if (v.done) stop();
    });
    source.addEventListener('deleted', () => renderGone('This export was deleted.'));
    source.addEventListener('error', () => {
      // The stream broke (or the service restarted): poll instead.
      if (!source) return;
      source.close();
      source = null;
      if (current && current.done) return;
      poll();
    });
  }

  async function download() {
    const btn = $('download');
    btn.disabled = true;
    try {
      const t = KX.token();
      if (!t) { // no token needed: let the browser stream the file itself
        const a = KX.el('a', { href: `${api}/result`, download: current.output.filename });
        document.body.append(a);
        a.click();
        a.remove();
        return;
      }
      const res = await KX.api(`${api}/result`);
      if (!res.ok) throw new Error(await KX.errorMessage(res));
      const blob = await res.blob();
      const url = URL.createObjectURL(blob);
      const a = KX.el('a', { href: url, download: current.output.filename });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
    } catch (err) {
      KX.showError(errorBox, err.message);
    } finally {
      btn.disabled = false;
    }
  }

  async function cancel() {
    $('cancel').disabled = true;
    try {
      const res = await KX.api(`${api}/cancel`, { method: 'POST' });
      if (!res.ok) throw new Error(await KX.errorMessage(res));
      render(await res.json());
    } catch (err) {
      KX.showError(errorBox, err.message);
    } finally {
      $('cancel').disabled = false;
    }
  }

  async function remove() {
    if (!confirm('Delete this export, the uploaded document and the PDF?')) return;
    try {
      const res = await KX.api(api, { method: 'DELETE' });
      if (!res.ok && res.status !== 404) throw new Error(await KX.errorMessage(res));
      location.assign('/exports');
    } catch (err) {
      KX.showError(errorBox, err.message);
    }
  }

  $('download').addEventListener('click', download);
  $('cancel').addEventListener('click', cancel);
  $('delete').addEventListener('click', remove);

  (async () => {
    try {
      await KX.ensureToken();
      const v = await fetchState();
      if (v && !v.done) follow();
    } catch (err) {
      KX.showError(errorBox, err.message);
      poll();
    }
  })();
})();
