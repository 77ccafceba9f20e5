// gen studio: runs, model card, sampling grid, the viewer (enlarge, play, keep) and the picks.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
};

const genStudio = window.genStudio = {
  run: null, card: null, picks: [], pair: { a: null, b: null }, panels: [], tabHooks: {},
  addPanel(panel) { this.panels.push(panel); if (this.card) mountPanels(); },
};

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}
const postJSON = (path, data) => api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(data) });

function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.classList.remove("hidden");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => box.classList.add("hidden"), 6000);
}
genStudio.api = api; genStudio.postJSON = postJSON; genStudio.toast = toast; genStudio.el = el;

// -- runs ------------------------------------------------------------------------------------
async function loadRuns() {
  const { runs, selected } = await api("/api/runs");
  const nav = $("#runs");
  nav.replaceChildren();
  if (!runs.length) nav.append(el("p", { class: "muted" }, "No runs yet. Train one: gen train images"));
  let domain;
  for (const r of runs) {
    if (r.domain !== domain) { domain = r.domain; nav.append(el("h4", {}, domain || "unreadable")); }
    const why = r.error ? r.error : (r.complete ? `${r.arch}${r.classes ? ` · ${r.classes} classes` : ""}` : "incomplete");
    nav.append(el("button", { "data-run": r.id, disabled: !!r.error, title: r.error || r.id, onclick: () => selectRun(r.id) },
      r.id, el("small", {}, `${r.source === "pretrained" ? "pretrained · " : ""}${why}`)));
  }
  const first = selected || (runs.find((r) => !r.error && r.complete) || {}).id;
  if (first) selectRun(first);
}

async function selectRun(id) {
  for (const b of document.querySelectorAll("#runs button")) b.classList.toggle("active", b.dataset.run === id);
  try {
    const card = await api(`/api/runs/${encodeURIComponent(id)}`);
    genStudio.run = id; genStudio.card = card;
    showCard(card);
    setupSampleForm(card);
    $("#grid").replaceChildren();
    $("#empty").classList.add("hidden");
    $("#tabs").classList.remove("hidden");
    for (const hook of Object.values(genStudio.tabHooks)) hook.runChanged && hook.runChanged(card);
    mountPanels();
    const tab = card.image_to_image ? "denoise" : (document.querySelector(".tabs button.active") || {}).dataset.tab || "sample";
    showTab(card.image_to_image && tab !== "denoise" ? "denoise" : tab);
  } catch (e) { toast(e.message); }
}

const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? v.toLocaleString() : v.toPrecision(4)) : String(v));
function showCard(card) {
  const box = $("#card");
  const facts = [card.domain, card.arch, card.latent_dim ? `latent ${card.latent_dim}` : null,
    card.item_shape ? `item ${card.item_shape.join("×")}` : null,
    card.conditional ? `${card.class_names.length} classes${card.multi_label ? " (multi-label)" : ""}` : (card.image_to_image ? null : "unconditional"),
    card.data ? `data ${card.data}` : null].filter(Boolean);
  const metrics = Object.entries({ ...card.last_epoch, ...card.metrics })
    .filter(([k, v]) => !["event", "time", "lr"].includes(k) && v !== null && typeof v !== "string")
    .slice(0, 18).map(([k, v]) => el("div", {}, el("span", {}, `${k} `), fmt(v)));
  const thumbs = card.files.map((name) => el("img", { src: `/api/runs/${encodeURIComponent(card.id)}/files/${name}`, alt: name, title: name,
    onclick: () => openPicture(`/api/runs/${encodeURIComponent(card.id)}/files/${name}`, name) }));
  box.replaceChildren(
    el("div", {}, el("h2", {}, card.id), el("div", { class: "muted small" }, card.description),
      el("div", { class: "facts" }, facts.map((f) => el("span", { class: "chip" }, f))),
      el("div", { class: "metrics" }, metrics)),
    el("div", { class: "thumbs" }, thumbs));
  box.classList.remove("hidden");
  for (const b of document.querySelectorAll(".tabs button")) {
    const t = b.dataset.tab;
    b.classList.toggle("hidden", card.image_to_image && t !== "denoise");
  }
}

// -- tabs ------------------------------------------------------------------------------------
function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("hidden", s.id !== `tab-${name}`);
  const hook = genStudio.tabHooks[name];
  if (hook && hook.shown) hook.shown(genStudio.card);
}
for (const b of document.querySelectorAll(".tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));

function mountPanels() {
  const box = $("#extension-panels");
  box.replaceChildren();
  for (const panel of genStudio.panels) {
    if (panel.domains && !panel.domains.includes(genStudio.card.domain)) continue;
    const section = el("div", { class: "panel", "data-panel": panel.id }, el("h3", {}, panel.title));
    box.append(section);
    try { panel.mount(section, { run: genStudio.run, card: genStudio.card, api, postJSON, showItems, toast }); } catch (e) { toast(`${panel.id}: ${e.message}`); }
  }
}

// -- sampling --------------------------------------------------------------------------------
function setupSampleForm(card) {
  const select = $("#class-select"), checks = $("#class-checks");
  select.replaceChildren(); checks.replaceChildren();
  select.parentElement.classList.toggle("hidden", !card.conditional || card.multi_label);
  checks.classList.toggle("hidden", !card.multi_label);
  if (card.conditional && !card.multi_label) {
    select.append(el("option", { value: "" }, "all classes"));
    for (const c of card.class_names) select.append(el("option", { value: c }, c));
  }
  if (card.multi_label) {
    for (const c of card.class_names) checks.append(el("label", {}, el("input", { type: "checkbox", value: c }), c));
  }
  const box = $("#domain-options"), grid = box.querySelector(".option-grid");
  grid.replaceChildren();
  const shown = card.options.filter((o) => o.name !== "wav");
  box.classList.toggle("hidden", !shown.length);
  for (const o of shown) {
    let input;
    if (o.type === "bool") input = el("input", { type: "checkbox", "data-option": o.name, checked: !!o.default });
    else if (o.choices.length) input = el("select", { "data-option": o.name }, o.choices.map((c) => el("option", { value: c, selected: c === o.default }, c)));
    else input = el("input", { type: o.type === "str" ? "text" : "number", step: o.type === "float" ? "any" : "1", "data-option": o.name, placeholder: o.default ?? "default", size: 8 });
    grid.append(el("label", { title: o.help, for: `opt-${o.name}` }, o.flag), input);
    input.id = `opt-${o.name}`;
  }
}
genStudio.sampleOptions = () => {
  const out = {};
  for (const input of document.querySelectorAll("#domain-options [data-option]")) {
    if (input.type === "checkbox") out[input.dataset.option] = input.checked;
    else if (input.value !== "") out[input.dataset.option] = input.value;
  }
  return out;
};

$("#temperature").addEventListener("input", (e) => { $("#temperature-out").textContent = Number(e.target.value).toFixed(2); });
$("#reseed").addEventListener("click", () => { $("#seed").value = Math.floor(Math.random() * 1e6); });
$("#sample-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const card = genStudio.card;
  let classes = [];
  if (card.multi_label) {
    const on = [...document.querySelectorAll("#class-checks input:checked")].map((i) => i.value);
    classes = on.length ? [on.join("+")] : [];
  } else if (card.conditional && $("#class-select").value) classes = [$("#class-select").value];
  const button = $("#sample-button"), status = $("#sample-status");
  button.disabled = true; status.textContent = "sampling…";
  const started = performance.now();
  try {
    const reply = await postJSON(`/api/runs/${encodeURIComponent(genStudio.run)}/sample`, {
      classes, n: Number($("#n").value), temperature: Number($("#temperature").value), seed: Number($("#seed").value),
      options: genStudio.sampleOptions() });
    showItems($("#grid"), reply.items);
    status.textContent = `${reply.items.length} items in ${Math.round(performance.now() - started)} ms`;
  } catch (err) { toast(err.message); status.textContent = ""; }
  button.disabled = false;
});

// -- items -----------------------------------------------------------------------------------
function itemCard(item) {
  const notes = item.notes || {};
  const play = notes.play ? el("span", { class: `badge ${notes.play.finished ? "ok" : "no"}`, title: "the checker's playthrough" },
    notes.play.finished ? "finishes" : `stuck ${Math.round(100 * notes.play.fraction)}%`) : null;
  return el("div", { class: "item", "data-item": item.id, title: "click to enlarge", onclick: () => openItem(item) },
    el("img", { src: item.preview, alt: item.class ?? item.stem }),
    el("div", { class: "label" }, el("span", {}, item.class ?? ""), play));
}
function showItems(container, items) {
  const wide = items.length && items[0].width / items[0].height > 1.6;
  container.style.setProperty("--cell", wide ? "260px" : items.length && items[0].width > 64 ? "180px" : "112px");
  container.replaceChildren(...items.map(itemCard));
}
genStudio.showItems = showItems; genStudio.itemCard = itemCard;

// -- the viewer ------------------------------------------------------------------------------
let viewing = null;
async function openItem(item) {
  viewing = item;
  const dialog = $("#viewer");
  $("#viewer-title").textContent = `${item.class ?? "item"} · ${item.stem}`;
  const image = $("#viewer-image");
  image.src = item.preview;
  $("#viewer-files").replaceChildren(el("span", { class: "muted small" }, "preparing files…"));
  $("#player").classList.add("hidden"); $("#playhead").classList.add("hidden");
  $("#keep").classList.remove("hidden");
  $("#keep").textContent = genStudio.picks.some((p) => p.id === item.id) ? "Kept ✓" : "Keep";
  drawNotes(item);
  if (!dialog.open) dialog.showModal();
  image.onload = () => { drawOverlay(item); };
  try {
    const { files } = await api(`/api/items/${item.id}/files`);
    const base = `/api/items/${item.id}/files/`;
    $("#viewer-files").replaceChildren(...files.map((f) => el("a", { class: "button", href: base + encodeURIComponent(f), download: f }, `⬇ ${f}`)));
    const midi = files.find((f) => f.endsWith(".mid")), wav = files.find((f) => f.endsWith(".wav"));
    if (midi) await genStudio.midi.load(base + encodeURIComponent(midi) + "?inline=1", wav ? base + encodeURIComponent(wav) + "?inline=1" : null);
  } catch (e) { $("#viewer-files").replaceChildren(el("span", { class: "muted small" }, e.message)); }
}
function openPicture(src, title) {
  viewing = null;
  $("#viewer-title").textContent = title;
  $("#viewer-image").src = src;
  $("#viewer-image").onload = null;
  $("#viewer-notes").textContent = "";
  $("#viewer-files").replaceChildren();
  $("#player").classList.add("hidden");
  $("#keep").classList.add("hidden");
  const canvas = $("#viewer-overlay"); canvas.width = canvas.width;
  $("#viewer").showModal();
}
genStudio.openItem = openItem;

function drawNotes(item) {
  const play = (item.notes || {}).play;
  $("#viewer-notes").replaceChildren();
  if (play) {
    $("#viewer-notes").append(el("span", { class: `badge ${play.finished ? "ok" : "no"}` }, play.finished ? "the checker finishes this level" : "the checker gets stuck"),
      ` · reached ${play.furthest + 1} of ${play.length} ${play.axis} (${Math.round(100 * play.fraction)}%); the orange line is its path`);
  }
}
function drawOverlay(item) {
  const image = $("#viewer-image"), canvas = $("#viewer-overlay");
  canvas.width = image.clientWidth; canvas.height = image.clientHeight;
  const play = (item.notes || {}).play;
  if (!play || !play.path || !play.path.length) return;
  const ctx = canvas.getContext("2d");
  const sx = canvas.width / play.cols, sy = canvas.height / play.rows;
  ctx.strokeStyle = "#ff6b00"; ctx.lineWidth = Math.max(2, sx / 4); ctx.lineJoin = "round"; ctx.globalAlpha = 0.9;
  ctx.beginPath();
  play.path.forEach(([r, c], i) => { const x = (c + 0.5) * sx, y = (r + 0.5) * sy; i ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
  ctx.stroke();
  const [r, c] = play.path[play.path.length - 1];
  ctx.fillStyle = play.finished ? "#2b8a3e" : "#c92a2a";
  ctx.beginPath(); ctx.arc((c + 0.5) * sx, (r + 0.5) * sy, Math.max(4, sx / 2.5), 0, 2 * Math.PI); ctx.fill();
}
$("#viewer").addEventListener("close", () => { genStudio.midi.stop(); });

// -- picks -----------------------------------------------------------------------------------
$("#keep").addEventListener("click", () => {
  if (!viewing || genStudio.picks.some((p) => p.id === viewing.id)) return;
  genStudio.picks.push({ ...viewing, run: genStudio.run });
  if (!genStudio.pair.a) genStudio.pair.a = viewing.id; else if (!genStudio.pair.b) genStudio.pair.b = viewing.id;
  $("#keep").textContent = "Kept ✓";
  renderPicks();
});
function renderPicks() {
  const list = $("#picks-list");
  const { picks, pair } = genStudio;
  list.replaceChildren(...picks.map((p) => el("div", { class: "pick", title: `${p.run} · ${p.stem}` },
    el("img", { src: p.preview, alt: p.stem, onclick: () => openItem(p) }),
    el("div", { class: "ab" },
      el("button", { class: pair.a === p.id ? "on" : "", title: "interpolate from here", onclick: () => { pair.a = p.id; renderPicks(); } }, "A"),
      el("button", { class: pair.b === p.id ? "on" : "", title: "interpolate to here", onclick: () => { pair.b = p.id; renderPicks(); } }, "B"),
      el("button", { title: "forget", onclick: () => { genStudio.picks = picks.filter((q) => q.id !== p.id); if (pair.a === p.id) pair.a = null; if (pair.b === p.id) pair.b = null; renderPicks(); } }, "✕")))));
  $("#picks-count").textContent = picks.length ? `${picks.length} kept` : "none yet: enlarge an item and keep it";
  const zip = $("#picks-zip");
  zip.classList.toggle("hidden", !picks.length);
  zip.href = `/api/picks.zip?items=${picks.map((p) => p.id).join(",")}`;
}
genStudio.renderPicks = renderPicks;

document.addEventListener("DOMContentLoaded", async () => {
  try {
    await loadRuns();
    const { scripts } = await api("/api/extensions");
    for (const src of scripts) document.body.append(el("script", { src }));
  } catch (e) { toast(e.message); }
});
