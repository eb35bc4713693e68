// The upload page: pick or drop a file, set options, upload with progress, then go to the
// export's progress page.
'use strict';

(() => {
  const form = document.getElementById('upload-form');
  const input = document.getElementById('file');
  const zone = document.getElementById('dropzone');
  const chosen = document.getElementById('chosen');
  const submit = document.getElementById('submit');
  const errorBox = document.getElementById('error');
  const progress = document.getElementById('upload-progress');
  const bar = document.getElementById('upload-bar');
  const progressText = document.getElementById('upload-text');
  let maxBytes = 0;
  let file = null;

  KX.getInfo().then((info) => {
    maxBytes = info.maxUploadBytes || 0;
    if (maxBytes) {
      document.getElementById('limit-text').textContent = `Up to ${KX.formatBytes(maxBytes)} per file.`;
      document.getElementById('dz-hint').textContent = `.pptx, .ppt, .odp, .docx, .xlsx and more · up to ${KX.formatBytes(maxBytes)}`;
    }
  });
  KX.ensureToken();

  function choose(f) {
    file = f || null;
    KX.showError(errorBox, '');
    if (!file) {
      chosen.hidden = true;
      submit.disabled = true;
      return;
    }
    chosen.textContent = `${file.name} · ${KX.formatBytes(file.size)}`;
    chosen.hidden = false;
    if (maxBytes && file.size > maxBytes) {
      KX.showError(errorBox, `${file.name} is ${KX.formatBytes(file.size)}; the limit is ${KX.formatBytes(maxBytes)}.`);
      submit.disabled = true;
      return;
    }
    if (file.size === 0) {
      KX.showError(errorBox, `${file.name} is empty.`);
      submit.disabled = true;
      return;
    }
    submit.disabled = false;
  }

  input.addEventListener('change', () => choose(input.files[0]));
  for (const ev of ['dragenter', 'dragover']) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.add('over'); });
  }
  for (const ev of ['dragleave', 'drop']) {
    zone.addEventListener(ev, (e) => { e.preventDefault(); zone.classList.remove('over'); });
  }
  zone.addEventListener('drop', (e) => {
    const files = e.dataTransfer && e.dataTransfer.files;
    if (!files || !files.length) return;
    if (files.length > 1) {
      KX.showError(errorBox, 'Drop one file at a time.');
      return;
    }
    choose(files[0]);
  });

  // formData puts the options before the file, so the service checks them before storing it.
  function formData() {
    const fd = new FormData();
    for (const name of ['pageRange', 'pdfA', 'timeoutSeconds']) {
      const v = form.elements[name].value.trim();
      if (v) fd.append(name, v);
    }
    for (const name of ['exportNotes', 'exportHiddenSlides']) {
      if (form.elements[name].checked) fd.append(name, 'true');
    }
    fd.append('file', file, file.name);
    return fd;
  }

  // send uploads with XMLHttpRequest, which reports upload progress (fetch does not).
  function send(fd) {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', '/api/v1/exports');
      const t = KX.token();
      if (t) xhr.setRequestHeader('Authorization', 'Bearer ' + t);
      xhr.responseType = 'json';
      xhr.upload.addEventListener('progress', (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.round((e.loaded / e.total) * 100);
        bar.style.width = pct + '%';
        progressText.textContent = pct < 100 ? `Uploading… ${pct}%` : 'Checking the document…';
      });
      xhr.addEventListener('load', () => resolve(xhr));
      xhr.addEventListener('error', () => reject(new Error('The upload failed: the connection to the service broke. Try again.')));
      xhr.addEventListener('abort', () => reject(new Error('The upload was cancelled.')));
      xhr.send(fd);
    });
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!file) return;
    KX.showError(errorBox, '');
    submit.disabled = true;
    progress.hidden = false;
    bar.style.width = '0';
    progressText.textContent = 'Uploading…';
    try {
      for (;;) {
        const xhr = await send(formData());
        const body = xhr.response;
        if (xhr.status === 202 && body && body.links) {
          progressText.textContent = 'Uploaded. Opening the progress page…';
          location.assign(body.links.page);
          return;
        }
        const msg = body && body.error ? body.error.message : `The service answered ${xhr.status}.`;
        if (xhr.status === 401) {
          KX.setToken('');
          await KX.askToken(msg);
          continue;
        }
        throw new Error(msg);
      }
    } catch (err) {
      KX.showError(errorBox, err.message);
      progress.hidden = true;
      submit.disabled = false;
    }
  });
})();
