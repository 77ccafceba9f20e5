// Denoise (drop a photo, watch its progress, compare before and after) and Score (drop a CSV or
// images on an anomaly run; the scored plot and table come back).
"use strict";
(() => {
  const { api, toast, el } = window.genStudio;
  const $ = (sel) => document.querySelector(sel);

  function dropZone(zone, input, handle) {
    zone.addEventListener("click", () => input.click());
    zone.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") input.click(); });
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); if (e.dataTransfer.files.length) handle([...e.dataTransfer.files]); });
    input.addEventListener("change", () => { if (input.files.length) handle([...input.files]); input.value = ""; });
  }

  // -- denoise -------------------------------------------------------------------------------
  async function fillDenoisers() {
    const select = $("#denoiser-run");
    const { runs } = await api("/api/runs");
    select.replaceChildren(el("option", { value: "" }, "the shipped denoiser"),
      ...runs.filter((r) => r.image_to_image && !r.error).map((r) => el("option", { value: r.id }, r.id)));
    if (window.genStudio.card && window.genStudio.card.image_to_image) select.value = window.genStudio.run;
  }

  async function denoise(files) {
    const file = files[0];
    const form = new FormData();
    form.append("file", file);
    if ($("#denoiser-run").value) form.append("run", $("#denoiser-run").value);
    if ($("#sigma").value) form.append("sigma", $("#sigma").value);
    const bar = $("#denoise-progress"), status = $("#denoise-status");
    bar.classList.remove("hidden"); bar.value = 0; status.textContent = `uploading ${file.name}…`;
    $("#compare").classList.add("hidden"); $("#denoise-download").classList.add("hidden");
    $("#before").src = URL.createObjectURL(file);
    try {
      let job = await api("/api/denoise", { method: "POST", body: form });
      status.textContent = `${job.width}×${job.height}: denoising…`;
      while (job.state === "queued" || job.state === "running") {
        await new Promise((r) => setTimeout(r, 250));
        job = await api(`/api/jobs/${job.id}`);
        bar.value = job.progress;
        status.textContent = `${job.width}×${job.height}: ${job.state} ${Math.round(100 * job.progress)}%`;
      }
      if (job.state === "failed") throw new Error(job.error);
      $("#after").src = `/api/jobs/${job.id}/result?inline=1`;
      $("#compare").classList.remove("hidden");
      const link = $("#denoise-download");
      link.href = `/api/jobs/${job.id}/result`; link.classList.remove("hidden");
      status.textContent = `${job.width}×${job.height} denoised in ${job.seconds.toFixed(1)} s; drag the slider to compare`;
    } catch (e) { toast(e.message); status.textContent = ""; }
    bar.classList.add("hidden");
  }
  $("#compare-slider").addEventListener("input", (e) => { $("#after").style.clipPath = `inset(0 0 0 ${e.target.value}%)`; });
  dropZone($("#denoise-drop"), $("#denoise-file"), denoise);

  // -- score ---------------------------------------------------------------------------------
  async function score(files) {
    const form = new FormData();
    for (const f of files) form.append("files", f);
    const status = $("#score-status");
    status.textContent = `scoring ${files.length} file(s)…`;
    try {
      const reply = await api(`/api/runs/${encodeURIComponent(window.genStudio.run)}/score`, { method: "POST", body: form });
      const plot = $("#score-plot");
      plot.src = reply.plot; plot.classList.remove("hidden");
      const flagged = reply.threshold === null ? "no threshold (the domain sets none)" :
        `${reply.flagged} flagged above ${reply.threshold.toPrecision(4)} (${reply.threshold_rule})`;
      status.textContent = `${reply.inputs} scored by ${reply.method}; ${flagged}${reply.roc_auc !== null ? `; ROC AUC ${reply.roc_auc.toFixed(3)}` : ""}`;
      const body = $("#score-table tbody");
      body.replaceChildren(...reply.rows.map((r, i) => el("tr", { class: r.anomaly ? "flagged" : "" },
        el("td", {}, String(i + 1)), el("td", {}, r.input), el("td", {}, r.preview ? el("img", { src: r.preview, alt: "" }) : ""),
        el("td", {}, r.score.toPrecision(5)), el("td", {}, r.anomaly === null ? "" : r.anomaly ? "anomaly" : ""))));
      $("#score-table").classList.remove("hidden");
    } catch (e) { toast(e.message); status.textContent = ""; }
  }
  dropZone($("#score-drop"), $("#score-file"), score);

  window.genStudio.tabHooks.denoise = { shown: fillDenoisers };
  window.genStudio.tabHooks.score = {
    runChanged: () => { $("#score-plot").classList.add("hidden"); $("#score-table").classList.add("hidden"); $("#score-status").textContent = ""; },
  };
})();
