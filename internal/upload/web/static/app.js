// Shared helpers of the kubexport pages: API calls with the access token, the token dialog,
// formatting. No framework, no build step.
'use strict';

const KX = (() => {
  const TOKEN_KEY = 'kubexport.token';

  const token = () => localStorage.getItem(TOKEN_KEY) || '';
  const setToken = (t) => (t ? localStorage.setItem(TOKEN_KEY, t) : localStorage.removeItem(TOKEN_KEY));
  const authHeaders = () => (token() ? { Authorization: 'Bearer ' + token() } : {});

  // el builds an element: el('td', {class: 'num'}, 'text', child, ...).
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c !== null && c !== undefined) e.append(c);
    return e;
  }

  // askToken shows the token dialog and resolves once the user saved one.
  let pending = null;
  function askToken(message) {
    if (pending) return pending;
    pending = new Promise((resolve) => {
      const input = el('input', { type: 'password', id: 'token-input', autocomplete: 'off', required: true,
        'aria-label': 'Access token', placeholder: 'Paste your token' });
      const save = el('button', { type: 'submit', class: 'primary', id: 'token-save' }, 'Save');
      const form = el('form', { method: 'dialog' },
        el('h2', {}, 'Access token'),
        el('p', { id: 'token-message' }, message || 'This service needs an access token. Ask the administrator for one; it is kept in this browser.'),
        input, el('div', { class: 'actions' }, save));
      const dlg = el('dialog', { class: 'token', id: 'token-dialog' }, form);
      dlg.addEventListener('cancel', (e) => e.preventDefault()); // the page cannot work without it
      form.addEventListener('submit', (e) => {
        e.preventDefault();
        const t = input.value.trim();
        if (!t) return;
        setToken(t);
        dlg.close();
        dlg.remove();
        pending = null;
        renderTokenLink();
        renderSignedIn();
        resolve(t);
      });
      document.body.append(dlg);
      dlg.showModal();
      input.focus();
    });
    return pending;
  }

  // api fetches an API path with the token; on 401 it asks for a token and tries again.
  async function api(path, opts = {}) {
    for (;;) {
      const res = await fetch(path, { ...opts, headers: { ...authHeaders(), ...(opts.headers || {}) } });
      if (res.status !== 401) return res;
      const msg = await errorMessage(res);
      setToken('');
      await askToken(msg);
    }
  }

  // errorMessage extracts the message of an API error answer.
  async function errorMessage(res) {
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON */ }
    return `The service answered ${res.status} ${res.statusText}.`;
  }

  let info = null;
  async function getInfo() {
    if (!info) {
      const res = await fetch('/api/v1/info');
      info = res.ok ? await res.json() : { authRequired: false, maxUploadBytes: 0 };
    }
    return info;
  }

  // ensureToken asks for a token up front when the service requires one and none is stored.
  async function ensureToken() {
    const i = await getInfo();
    if (i.authRequired && !token()) await askToken();
  }

  function renderTokenLink() {
    const bar = document.querySelector('.topbar');
    if (!bar) return;
    let b = bar.querySelector('.token-link');
    if (!token()) { if (b) b.remove(); return; }
    if (!b) {
      b = el('button', { type: 'button', class: 'token-link', title: 'Remove the access token from this browser' }, 'Forget token');
      b.addEventListener('click', () => { setToken(''); location.reload(); });
      bar.append(b);
    }
  }

  function formatBytes(n) {
    if (n === undefined || n === null) return '';
    const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
  }

  function formatTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  }

  function relativeTime(iso) {
    const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
    if (s < 45) return 'just now';
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min ago`;
    const h = Math.round(m / 60);
    if (h < 24) return `${h} h ago`;
    return formatTime(iso);
  }

  const phaseLabels = {
    Accepted: 'Uploaded', Queued: 'Queued', Pending: 'Starting', Running: 'Converting',
    Succeeded: 'Done', Failed: 'Failed', Cancelled: 'Cancelled',
  };
  const phaseLabel = (p) => phaseLabels[p] || p;

  function showError(node, message) {
    node.textContent = message;
    node.hidden = !message;
  }

  // renderSignedIn shows who the service takes the stored token for (Kubernetes authentication).
  async function renderSignedIn() {
    const bar = document.querySelector('.topbar');
    if (!bar || !token() || (await getInfo()).auth !== 'kubernetes') return;
    const res = await fetch('/api/v1/whoami', { headers: authHeaders() });
    if (!res.ok) return; // a refused token: the page's own calls ask for another one
    const who = await res.json();
    let s = bar.querySelector('#signed-in');
    if (!s) {
      s = el('span', { id: 'signed-in', class: 'signed-in' });
      const link = bar.querySelector('.token-link');
      if (link) link.before(s); else bar.append(s);
    }
    s.textContent = `Signed in as ${who.user}${who.admin ? ' (admin: sees every export)' : ''}`;
  }

  document.addEventListener('DOMContentLoaded', () => { renderTokenLink(); renderSignedIn(); });

  return { token, setToken, api, askToken, ensureToken, getInfo, errorMessage, el, formatBytes,
    formatTime, relativeTime, phaseLabel, showError };
})();
