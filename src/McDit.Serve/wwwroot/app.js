// The mcdit serve page: generation (a job per request, followed by server-sent events) and training runs (followed
// the same way). Everything it loads comes from this server.
"use strict";
(function () {
  const $ = id => document.getElementById(id);
  const COLORS = ["#1f4fb5", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d", "#4d7c0f", "#374151"];
  const state = { info: null, job: null, jobSource: null, runs: new Map(), runVersions: new Map(), currentRun: 0, view: null };

  async function getJson(url) {
    const r = await fetch(url, { cache: "no-store" });
    if (!r.ok) throw new Error(await errorText(r));
    return r.json();
  }

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (_) { /* not JSON */ }
    return `The server answered ${response.status} ${response.statusText}.`;
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || !Number.isFinite(v)) return "–";
    if (digits !== undefined) return v.toFixed(digits);
    return Math.abs(v) >= 100 ? v.toFixed(1) : String(Number(v.toPrecision(4)));
  }

  function duration(seconds) {
    if (!Number.isFinite(seconds)) return "–";
    const s = Math.round(seconds), h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
    return h > 0 ? `${h} h ${m} min` : m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
  }

  // ---------------------------------------------------------------- tabs

  function showView(id) {
    state.view = id;
    for (const tab of document.querySelectorAll("#tabs button")) {
      const selected = tab.dataset.view === id;
      tab.setAttribute("aria-selected", String(selected));
      $(tab.dataset.view).hidden = !selected;
    }
    renderRuns();
  }

  // ---------------------------------------------------------------- generation

  function setupGenerator(g) {
    $("tab-generate").hidden = false;
    const ready = g.ready;
    $("model-not-ready").hidden = ready;
    $("model-not-ready").textContent = g.notReady || "";
    $("generate").disabled = !ready;
    if (!ready) { setTimeout(refreshInfo, 3000); return; }
    $("model-description").textContent = `${g.method} model, ${g.width}×${g.height}, trained ${g.step} steps: ${g.path}`;
    const box = $("classes");
    const checked = new Set([...box.querySelectorAll("input:checked")].map(i => Number(i.value)));
    const fresh = box.children.length === 0;
    box.replaceChildren();
    $("classes-field").hidden = g.classes.length === 0;
    g.classes.forEach(c => {
      const label = document.createElement("label");
      const input = document.createElement("input");
      input.type = "checkbox";
      input.value = c.index;
      input.dataset.name = c.name;
      input.checked = fresh ? c.index < 2 : checked.has(c.index);
      label.append(input, document.createTextNode(c.name));
      box.append(label);
    });
    const l = state.info.limits;
    $("limits").textContent = `This server allows up to ${l.maxImages} images and ${l.maxSamplerSteps} sampler steps per request, and ${l.maxQueuedJobs} waiting requests.`;
  }

  function formRequest() {
    const num = id => { const v = $(id).value.trim(); return v === "" ? null : Number(v); };
    return {
      classes: [...$("classes").querySelectorAll("input:checked")].map(i => Number(i.value)),
      perClass: num("per-class"),
      seed: num("seed"),
      guidance: num("guidance"),
      steps: num("steps"),
      solver: $("solver").value,
    };
  }

  const FIELD_INPUT = { perClass: "per-class", seed: "seed", guidance: "guidance", steps: "steps", solver: "solver" };

  function showError(message, field) {
    for (const e of document.querySelectorAll(".invalid")) e.classList.remove("invalid");
    const box = $("generate-error");
    box.hidden = !message;
    box.textContent = message || "";
    if (field === "classes") $("classes-field").classList.add("invalid");
    else if (field && FIELD_INPUT[field]) $(FIELD_INPUT[field]).classList.add("invalid");
  }

  async function submit(event) {
    event.preventDefault();
    showError(null);
    const request = formRequest();
    for (const [k, v] of Object.entries(request))
      if (typeof v === "number" && !Number.isFinite(v)) { showError(`${k}: expected a number.`, k); return; }
    $("generate").disabled = true;
    try {
      const r = await fetch("/api/jobs", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
      if (!r.ok) {
        let field = null, message;
        try { const body = await r.json(); message = body.error; field = body.field; } catch (_) { message = `The server answered ${r.status}.`; }
        showError(message, field);
        return;
      }
      followJob(await r.json());
    } catch (e) {
      showError("The server cannot be reached: " + e.message);
    } finally {
      $("generate").disabled = false;
    }
  }

  function followJob(job) {
    if (state.jobSource) state.jobSource.close();
    state.job = job;
    $("images").replaceChildren();
    $("images").dataset.job = job.id;
    renderJob(job);
    const source = new EventSource(`/api/jobs/${job.id}/events`);
    state.jobSource = source;
    source.addEventListener("job", e => {
      const j = JSON.parse(e.data);
      if (state.job && state.job.id === j.id) renderJob(j);
      if (j.state === "Done" || j.state === "Failed") source.close();
    });
    source.onerror = () => {
      // Fall back to asking now and then (a proxy that buffers streams, a server restart).
      source.close();
      if (state.job && state.job.id === job.id && !finished(state.job)) setTimeout(() => poll(job.id), 1000);
    };
  }

  const finished = j => j.state === "Done" || j.state === "Failed";

  async function poll(id) {
    try {
      const j = await getJson(`/api/jobs/${id}`);
      if (state.job && state.job.id === id) { renderJob(j); if (!finished(j)) setTimeout(() => poll(id), 1000); }
    } catch (e) { showError(e.message); }
  }

  function renderJob(j) {
    state.job = j;
    $("job-status").hidden = false;
    $("job-progress").max = j.total;
    $("job-progress").value = j.done;
    let text;
    if (j.state === "Queued") text = j.queuePosition > 0 ? `Waiting: ${j.queuePosition} request(s) ahead.` : "Waiting for the generator…";
    else if (j.state === "Running") text = `Sampling image ${Math.min(j.done + 1, j.total)} of ${j.total} (${j.done} done, ${fmt(j.seconds, 1)} s)`;
    else if (j.state === "Done") text = `${j.total} images in ${fmt(j.seconds, 1)} s, from the model of step ${j.model.step}.`;
    else text = "Failed.";
    $("job-progress-text").textContent = text;
    if (j.state === "Failed") showError(j.error);

    const box = $("images");
    const have = box.querySelectorAll("figure").length;
    for (const image of j.images.slice(have)) {
      const rowIndex = Math.floor(image.index / j.columns);
      let row = box.querySelector(`.image-row[data-row="${rowIndex}"]`);
      if (!row) {
        row = document.createElement("div");
        row.className = "image-row";
        row.dataset.row = rowIndex;
        const label = document.createElement("span");
        label.className = "row-label";
        label.textContent = image.className;
        row.append(label);
        box.append(row);
      }
      const figure = document.createElement("figure");
      figure.className = "generated";
      const img = document.createElement("img");
      img.src = image.url;
      img.alt = `${image.className}, seed ${image.seed}`;
      img.title = `${image.className}, seed ${image.seed}`;
      const caption = document.createElement("figcaption");
      const link = document.createElement("a");
      link.href = image.url + "?download=1";
      link.download = image.fileName;
      link.className = "image-download";
      link.textContent = "PNG";
      caption.append(document.createTextNode(`seed ${image.seed} · `), link);
      figure.append(img, caption);
      row.append(figure);
    }
    $("grid-links").hidden = !j.gridUrl;
    if (j.gridUrl) {
      $("grid-download").href = j.gridUrl + "?download=1";
      $("grid-open").href = j.gridUrl;
    }
    $("reproduce").hidden = false;
    $("repro-cli").textContent = j.reproduce.cli;
    $("repro-csharp").textContent = j.reproduce.csharp;
  }

  // ---------------------------------------------------------------- training runs

  function followRuns() {
    const source = new EventSource("/api/runs/events");
    source.addEventListener("runs", e => updateRuns(JSON.parse(e.data).runs));
    source.onerror = () => {
      source.close();
      setTimeout(async () => { try { updateRuns((await getJson("/api/runs")).runs); } catch (_) { } followRuns(); }, 2000);
    };
  }

  async function updateRuns(versions) {
    const changed = versions.filter(v => state.runVersions.get(v.index) !== v.version);
    if (changed.length === 0) return;
    await Promise.all(changed.map(async v => {
      try {
        const run = await getJson(`/api/runs/${v.index}`);
        state.runs.set(v.index, run);
        state.runVersions.set(v.index, run.version);
      } catch (_) { /* next event */ }
    }));
    renderRuns();
  }

  function renderRuns() {
    if (state.view === "training-view") renderTraining();
    if (state.view === "compare-view") renderCompare();
  }

  function table(element, rows) {
    element.replaceChildren();
    for (const [k, v] of rows) {
      const tr = document.createElement("tr");
      const a = document.createElement("td"), b = document.createElement("td");
      a.textContent = k; b.textContent = v;
      tr.append(a, b);
      element.append(tr);
    }
  }

  function setting(run, ...names) {
    if (!run.settings) return undefined;
    for (const n of names) for (const [k, v] of Object.entries(run.settings)) if (k.toLowerCase() === n.toLowerCase()) return v;
    return undefined;
  }

  function accuracySeries(run, colorOffset) {
    return Object.entries(run.evaluations.accuracy || {}).map(([name, values], i) => ({
      name, x: run.evaluations.step, y: values, color: COLORS[(colorOffset + i) % COLORS.length], points: true,
    }));
  }

  function renderTraining() {
    const run = state.runs.get(state.currentRun);
    if (!run) { $("run-status").textContent = "Reading the run folder…"; return; }
    if (!run.started) {
      $("run-status").textContent = `${run.folder}: waiting for the run to start (no run.json or metrics.jsonl yet).`;
    } else {
      const parts = [`step ${run.step ?? 0}` + (run.totalSteps ? ` of ${run.totalSteps}` : "")];
      if (run.stage === 2) parts.push("unmasking tuning");
      if (run.loss !== null) parts.push(`loss ${fmt(run.loss)}`);
      if (run.stepsPerSecond) parts.push(`${fmt(run.stepsPerSecond, 2)} steps/s`);
      if (run.stepsPerSecond && run.totalSteps && run.step < run.totalSteps) parts.push(`about ${duration((run.totalSteps - run.step) / run.stepsPerSecond)} left`);
      if (run.grid && run.grid.final) parts.push("finished");
      $("run-status").textContent = parts.join(" · ");
    }
    $("run-status").dataset.step = run.step ?? "";
    const c = run.lossCurve;
    McDitChart.line($("loss-chart"), {
      title: "Training loss", xLabel: "step", yLabel: "loss", logY: true,
      series: [
        { name: "per step", x: c.step, y: c.loss, color: "#9fb3dd", width: 1 },
        { name: "smoothed", x: c.step, y: c.smoothed, color: "#1f3a93", width: 2 },
      ],
      markers: c.stage2Step ? [{ x: c.stage2Step, label: "unmasking tuning" }] : [],
    });
    McDitChart.line($("fd-chart"), {
      title: "FD-ResNet18 (lower is better)", xLabel: "step", yLabel: "FD",
      series: [{ name: "FD", x: run.evaluations.step, y: run.evaluations.frechetDistance, color: "#c2410c", points: true }],
      empty: "no evaluation yet (train with --fd-every N, or run mcdit evaluate)",
    });
    McDitChart.line($("accuracy-chart"), {
      title: "Class accuracy (higher is better)", xLabel: "step", yLabel: "accuracy",
      series: accuracySeries(run, 2), empty: "no class accuracy in evaluations.jsonl yet",
    });
    const img = $("run-grid");
    if (run.grid) {
      if (img.dataset.url !== run.grid.url) { img.src = run.grid.url; img.dataset.url = run.grid.url; }
      img.hidden = false;
      $("run-grid-none").hidden = true;
      $("run-grid-caption").textContent = run.grid.final ? "(final)" : `(step ${run.grid.step})`;
    } else {
      img.hidden = true;
      $("run-grid-none").hidden = false;
      $("run-grid-caption").textContent = "";
    }
    table($("run-settings"), run.settings ? Object.entries(run.settings) : [["", run.settingsError || "no run.json yet"]]);
    table($("run-evaluation"), run.evaluations.latest ? Object.entries(run.evaluations.latest) : [["", "none yet"]]);
  }

  function renderCompare() {
    const runs = [...state.runs.values()].sort((a, b) => a.index - b.index);
    const t = $("compare-table");
    t.replaceChildren();
    const head = document.createElement("tr");
    for (const h of ["run", "method", "model", "step", "loss (smoothed)", "FD-ResNet18", "accuracy", "steps/s"]) {
      const th = document.createElement("th"); th.textContent = h; head.append(th);
    }
    t.append(head);
    for (const run of runs) {
      const tr = document.createElement("tr");
      const color = COLORS[run.index % COLORS.length];
      const ev = run.evaluations;
      const lastFd = [...ev.frechetDistance].reverse().find(v => v !== null);
      const accName = Object.keys(ev.accuracy || {})[0];
      const lastAcc = accName ? [...ev.accuracy[accName]].reverse().find(v => v !== null) : null;
      const smoothed = run.lossCurve.smoothed.length ? run.lossCurve.smoothed[run.lossCurve.smoothed.length - 1] : null;
      const cells = [run.name, setting(run, "Method") ?? "–", setting(run, "Model") ?? "–", run.step ?? "–", fmt(smoothed), fmt(lastFd), lastAcc === null || lastAcc === undefined ? "–" : fmt(lastAcc), fmt(run.stepsPerSecond, 2)];
      cells.forEach((v, i) => {
        const td = document.createElement("td");
        if (i === 0) { const s = document.createElement("span"); s.className = "swatch"; s.style.background = color; td.append(s); }
        td.append(document.createTextNode(String(v)));
        if (i >= 3) td.className = "num";
        tr.append(td);
      });
      t.append(tr);
    }
    McDitChart.line($("compare-loss"), {
      title: "Training loss (smoothed)", xLabel: "step", yLabel: "loss", logY: true,
      series: runs.map(r => ({ name: r.name, x: r.lossCurve.step, y: r.lossCurve.smoothed, color: COLORS[r.index % COLORS.length], width: 2 })),
    });
    McDitChart.line($("compare-fd"), {
      title: "FD-ResNet18", xLabel: "step", yLabel: "FD",
      series: runs.map(r => ({ name: r.name, x: r.evaluations.step, y: r.evaluations.frechetDistance, color: COLORS[r.index % COLORS.length], points: true })),
      empty: "no evaluation in these runs yet",
    });
    McDitChart.line($("compare-accuracy"), {
      title: "Class accuracy", xLabel: "step", yLabel: "accuracy",
      series: runs.flatMap(r => { const name = Object.keys(r.evaluations.accuracy || {})[0]; return name ? [{ name: r.name, x: r.evaluations.step, y: r.evaluations.accuracy[name], color: COLORS[r.index % COLORS.length], points: true }] : []; }),
      empty: "no class accuracy in these runs yet",
    });
    const grids = $("compare-grids");
    for (const run of runs) {
      let fig = grids.querySelector(`figure[data-run="${run.index}"]`);
      if (!fig) {
        fig = document.createElement("figure");
        fig.dataset.run = run.index;
        fig.append(document.createElement("figcaption"), document.createElement("img"));
        grids.append(fig);
      }
      fig.querySelector("figcaption").textContent = run.name + (run.grid ? (run.grid.final ? " (final)" : ` (step ${run.grid.step})`) : ": no grid yet");
      const img = fig.querySelector("img");
      img.hidden = !run.grid;
      img.alt = `Samples of ${run.name}`;
      if (run.grid && img.dataset.url !== run.grid.url) { img.src = run.grid.url; img.dataset.url = run.grid.url; }
    }
  }

  // ---------------------------------------------------------------- start

  async function refreshInfo() {
    try {
      state.info = await getJson("/api/info");
    } catch (e) {
      $("server-status").textContent = "The server cannot be reached.";
      setTimeout(refreshInfo, 3000);
      return;
    }
    $("server-status").textContent = `mcdit serve ${state.info.version.split("+")[0]}`;
    if (state.info.generator) setupGenerator(state.info.generator);
  }

  async function start() {
    $("generate-form").addEventListener("submit", submit);
    $("classes-all").addEventListener("click", () => { for (const i of $("classes").querySelectorAll("input")) i.checked = true; });
    $("classes-none").addEventListener("click", () => { for (const i of $("classes").querySelectorAll("input")) i.checked = false; });
    for (const tab of document.querySelectorAll("#tabs button")) tab.addEventListener("click", () => showView(tab.dataset.view));
    $("run-select").addEventListener("change", () => { state.currentRun = Number($("run-select").value); renderRuns(); });
    await refreshInfo();
    if (!state.info) return;
    const runs = state.info.runs;
    if (runs.length > 0) {
      $("tab-training").hidden = false;
      for (const r of runs) {
        const o = document.createElement("option");
        o.value = r.index; o.textContent = r.name;
        $("run-select").append(o);
      }
      $("run-select").hidden = runs.length < 2;
      if (runs.length > 1) $("tab-compare").hidden = false;
      followRuns();
    }
    // Open the view the address asks for (#training, #compare), else generation when there is a model.
    const wanted = { "#generate": "generate-view", "#training": "training-view", "#compare": "compare-view" }[location.hash];
    const first = [wanted, state.info.generator ? "generate-view" : null, runs.length > 1 ? "compare-view" : "training-view"]
      .find(v => v && !document.querySelector(`#tabs button[data-view="${v}"]`).hidden);
    showView(first);
  }

  document.addEventListener("DOMContentLoaded", start);
})();
