// Explore: the latent map (a click decodes that point), a slider per latent dimension, and the
// interpolation strip between two picks.
"use strict";
(() => {
  const { api, postJSON, toast, el } = window.genStudio;
  const $ = (sel) => document.querySelector(sel);
  const COLOURS = ["#4263eb", "#f76707", "#2b8a3e", "#e03131", "#7048e8", "#a0522d", "#e64980", "#495057", "#94d82d", "#1098ad",
    "#fab005", "#5c7cfa", "#ff8787", "#63e6be", "#b197fc", "#ffa94d", "#868e96", "#3bc9db", "#d6336c", "#74b816"];
  let map = null, eps = [], bounds = null, marker = null;

  const run = () => encodeURIComponent(window.genStudio.run);
  const exploreClass = () => $("#explore-class").value || null;

  function runChanged(card) {
    map = null; marker = null;
    $("#decoded").replaceChildren(); $("#strip").replaceChildren(); $("#sliders").replaceChildren();
    const select = $("#explore-class");
    select.replaceChildren();
    select.parentElement.classList.toggle("hidden", !card.conditional || card.multi_label);
    for (const c of card.class_names) select.append(el("option", { value: c }, c));
  }

  async function shown(card) {
    if (map || card.image_to_image) return;
    $("#map-how").textContent = "encoding the run's data…";
    try {
      map = await api(`/api/runs/${run()}/latent`);
    } catch (e) { $("#map-how").textContent = ""; toast(e.message); return; }
    $("#map-how").textContent = `${map.items} items · ${map.embedding}`;
    const xs = map.points.map((p) => p[0]), ys = map.points.map((p) => p[1]);
    const pad = (lo, hi) => [lo - 0.06 * (hi - lo || 1), hi + 0.06 * (hi - lo || 1)];
    bounds = { x: pad(Math.min(...xs), Math.max(...xs)), y: pad(Math.min(...ys), Math.max(...ys)) };
    drawMap();
    $("#map-legend").replaceChildren(...map.class_names.map((c, i) => el("span", {}, el("i", { style: `background:${COLOURS[i % COLOURS.length]}` }), c)));
    buildSliders();
  }

  function drawMap() {
    const canvas = $("#map"), ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const toX = (x) => ((x - bounds.x[0]) / (bounds.x[1] - bounds.x[0])) * canvas.width;
    const toY = (y) => canvas.height - ((y - bounds.y[0]) / (bounds.y[1] - bounds.y[0])) * canvas.height;
    ctx.globalAlpha = 0.7;
    map.points.forEach(([x, y], i) => {
      ctx.fillStyle = map.labels ? COLOURS[map.labels[i] % COLOURS.length] : "#4263eb";
      ctx.beginPath(); ctx.arc(toX(x), toY(y), 2.6, 0, 2 * Math.PI); ctx.fill();
    });
    ctx.globalAlpha = 1;
    if (marker) {
      ctx.strokeStyle = "#111"; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.arc(toX(marker[0]), toY(marker[1]), 7, 0, 2 * Math.PI); ctx.stroke();
    }
  }

  $("#map").addEventListener("click", async (e) => {
    if (!map) return;
    const canvas = e.currentTarget, box = canvas.getBoundingClientRect();
    const fx = (e.clientX - box.left) / box.width, fy = (e.clientY - box.top) / box.height;
    const x = bounds.x[0] + fx * (bounds.x[1] - bounds.x[0]), y = bounds.y[1] - fy * (bounds.y[1] - bounds.y[0]);
    marker = [x, y]; drawMap();
    try {
      const reply = await postJSON(`/api/runs/${run()}/decode`, { point: [x, y], class: exploreClass(), options: window.genStudio.sampleOptions() });
      $("#decoded").replaceChildren(...reply.items.map(window.genStudio.itemCard));
    } catch (err) { toast(err.message); }
  });

  function buildSliders() {
    const box = $("#sliders");
    box.replaceChildren();
    $("#dims-measure").textContent = `${map.measure}; grey: inactive`;
    eps = map.dimensions.map(() => 0);
    const order = [...map.dimensions].sort((a, b) => b.value - a.value);
    for (const d of order) {
      const out = el("output", {}, "0.0");
      const input = el("input", { type: "range", min: -map.slider_range, max: map.slider_range, step: 0.05, value: 0, "data-dim": d.index,
        oninput: (e) => { eps[d.index] = Number(e.target.value); out.textContent = eps[d.index].toFixed(1); schedule(); } });
      box.append(el("span", { class: d.active ? "" : "inactive", title: `${map.measure}: ${d.value.toFixed(3)}` }, `z${d.index}`), input, out);
    }
  }

  let pending = null, busy = false;
  function schedule() { clearTimeout(pending); pending = setTimeout(decodeSliders, 40); }
  async function decodeSliders() {
    if (busy) { schedule(); return; }
    busy = true;
    try {
      const reply = await postJSON(`/api/runs/${run()}/decode`, { eps, class: exploreClass(), options: window.genStudio.sampleOptions() });
      $("#decoded").replaceChildren(...reply.items.map(window.genStudio.itemCard));
    } catch (err) { toast(err.message); }
    busy = false;
  }
  const setSliders = (values) => {
    eps = values;
    for (const input of document.querySelectorAll("#sliders input")) {
      input.value = eps[input.dataset.dim]; input.nextElementSibling.textContent = Number(input.value).toFixed(1);
    }
    decodeSliders();
  };
  $("#sliders-random").addEventListener("click", () => map && setSliders(eps.map(() => {
    const u = 1 - Math.random(), v = Math.random();
    return Math.max(-3, Math.min(3, Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)));
  })));
  $("#sliders-zero").addEventListener("click", () => map && setSliders(eps.map(() => 0)));
  $("#explore-class").addEventListener("change", () => map && decodeSliders());

  $("#interpolate").addEventListener("click", async () => {
    const { a, b } = window.genStudio.pair;
    if (!a || !b) { toast("mark two picks as A and B in the picks tray first"); return; }
    const owner = window.genStudio.picks.find((p) => p.id === a).run;
    const status = $("#interp-status");
    status.textContent = "decoding…";
    try {
      const reply = await postJSON(`/api/runs/${encodeURIComponent(owner)}/interpolate`, { from: a, to: b, steps: Number($("#steps").value) });
      $("#strip").replaceChildren(...reply.items.map(window.genStudio.itemCard));
      status.textContent = `${reply.items.length} steps`;
    } catch (err) { toast(err.message); status.textContent = ""; }
  });

  window.genStudio.tabHooks.explore = { runChanged, shown };
})();
