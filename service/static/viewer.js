// The sgpa viewer: submit an explanation job, follow its progress, then look at and listen to the words.
// Plain browser JavaScript served by `sgpa serve` itself: no libraries, no build step, no network beyond the server.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const POLL_INTERVAL_MS = 400;

  const state = {
    token: sessionStorage.getItem("sgpa-token") || "",
    jobId: null,
    explanation: null,
    audioContext: null,
    audioBuffer: null,
    source: null,
    objectUrls: [],
  };
  // What tests (and curious users in the console) can read: the state, and the last segment played.
  const viewer = { state, lastPlayback: null, ready: false };
  window.sgpaViewer = viewer;

  // --- talking to the server ---------------------------------------------------------------------------

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}) };
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const response = await fetch(path, { ...options, headers });
    if (response.status === 401) $("token-box").hidden = false;
    if (!response.ok) {
      let message = `${response.status} ${response.statusText}`;
      try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
      throw new Error(message);
    }
    return response;
  }

  function showStatus(text, { error = false, progress = null } = {}) {
    $("status").classList.toggle("error", error);
    $("status-text").textContent = text;
    const bar = $("progress");
    bar.hidden = progress === null;
    if (progress !== null) {
      bar.max = progress.planned || 1;
      bar.value = Math.min(progress.done, bar.max);
    }
  }

  async function loadModels() {
    try {
      const data = await (await api("/v1/models")).json();
      const select = $("model");
      select.replaceChildren(...data.models.map((model) => {
        const option = document.createElement("option");
        option.value = model.name;
        option.textContent = `${model.name} (${model.backend})`;
        option.selected = model.default;
        return option;
      }));
    } catch (error) {
      showStatus(`Cannot list the models: ${error.message}`, { error: true });
    }
  }

  async function submit(event) {
    event.preventDefault();
    const form = new FormData();
    form.append("audio", $("audio").files[0]);
    form.append("transcript", $("transcript").value);
    form.append("model", $("model").value);
    form.append("estimator", $("estimator").value);
    if ($("prompt").value.trim()) form.append("prompt", $("prompt").value.trim());
    if ($("budget").value) form.append("budget", $("budget").value);
    if ($("text-players").checked) form.append("text_players", "true");
    $("submit").disabled = true;
    $("result").hidden = true;
    try {
      const job = await (await api("/v1/explanations", { method: "POST", body: form })).json();
      history.replaceState(null, "", `#job=${job.id}`);
      await follow(job.id);
    } catch (error) {
      showStatus(error.message, { error: true });
    } finally {
      $("submit").disabled = false;
    }
  }

  function showRequest(parameters) {  // a job opened from a link: the form says what was asked
    $("transcript").value = parameters.transcript;
    $("prompt").value = parameters.prompt || "";
    $("estimator").value = parameters.estimator;
    $("budget").value = parameters.budget || "";
    $("text-players").checked = Boolean(parameters.text_players);
    if ([...$("model").options].some((option) => option.value === parameters.model)) $("model").value = parameters.model;
  }

  async function follow(jobId) {
    state.jobId = jobId;
    $("cancel").hidden = false;
    let first = true;
    for (;;) {
      const job = await (await api(`/v1/explanations/${jobId}`)).json();
      if (first) showRequest(job.parameters);
      first = false;
      const { evaluations_done: done, evaluations_planned: planned } = job.progress;
      if (job.status === "queued") {
        showStatus("Queued…", { progress: { done: 0, planned: 1 } });
      } else if (job.status === "running") {
        const of = planned ? ` of ${planned}` : "";
        showStatus(`Running: ${done}${of} model evaluations`, { progress: { done, planned: planned || done + 1 } });
      } else {
        $("cancel").hidden = true;
        if (job.status === "done") {
          showStatus(`Done: ${job.explanation.cost.n_evaluations} evaluations in ` +
                     `${job.explanation.cost.wall_seconds.toFixed(1)} s`);
          await render(job.explanation, jobId);
        } else {
          showStatus(job.status === "failed" ? `Failed: ${job.error}` : "Cancelled", { error: true });
        }
        return job;
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
    }
  }

  async function cancel() {
    if (!state.jobId) return;
    try { await api(`/v1/explanations/${state.jobId}`, { method: "DELETE" }); } catch (error) {
      showStatus(error.message, { error: true });
    }
  }

  // --- drawing the explanation -------------------------------------------------------------------------

  function colour(phi, maxAbs, alphaFloor = 0.15) {
    const strength = maxAbs > 0 ? Math.abs(phi) / maxAbs : 0;
    const alpha = (alphaFloor + (0.75 - alphaFloor) * strength).toFixed(3);
    return phi >= 0 ? `rgba(214, 39, 40, ${alpha})` : `rgba(31, 119, 180, ${alpha})`;
  }

  function formatPhi(phi, stderr) {
    const value = `${phi >= 0 ? "+" : ""}${phi.toFixed(3)}`;
    return stderr === null || stderr === undefined ? `${value} (exact)` : `${value} ± ${stderr.toFixed(3)}`;
  }

  async function blobUrl(path) {
    const url = URL.createObjectURL(await (await api(path)).blob());
    state.objectUrls.push(url);
    return url;
  }

  async function render(explanation, jobId) {
    state.explanation = explanation;
    state.objectUrls.forEach((url) => URL.revokeObjectURL(url));
    state.objectUrls = [];
    $("result").hidden = false;
    renderSummary(explanation);
    renderBars(explanation);
    renderMatrix(explanation);
    const [spectrogramUrl, audioBytes] = await Promise.all([
      blobUrl(`/v1/explanations/${jobId}/spectrogram.png`),
      api(`/v1/explanations/${jobId}/audio`).then((response) => response.arrayBuffer()),
    ]);
    $("spectrogram").src = spectrogramUrl;
    state.audioContext = state.audioContext || new AudioContext();
    state.audioBuffer = await state.audioContext.decodeAudioData(audioBytes);
    drawWaveform(state.audioBuffer);
    renderSpans(explanation);
    renderTimeAxis(explanation.audio.duration_s);
    viewer.ready = true;
  }

  function renderSummary(explanation) {
    const summary = $("summary");
    const answer = (explanation.response.text || "").replace("<|im_end|>", "").trim();
    const words = explanation.players.filter((p) => p.kind === "word").length;
    const gap = explanation.efficiency_gap_total;
    summary.replaceChildren();
    const line = (label, text, className) => {
      const div = document.createElement("div");
      const strong = document.createElement("span");
      strong.textContent = `${label}: `;
      const value = document.createElement("span");
      value.textContent = text;
      if (className) value.className = className;
      div.append(strong, value);
      summary.append(div);
    };
    if (explanation.prompt) line("Prompt", explanation.prompt);
    line(explanation.model.backend === "ctc" ? "Scored transcript" : "Answer", answer, "answer");
    line("Method", `${explanation.method} ${explanation.index} values over ${words} words ` +
         `(${explanation.players.length} players), ${explanation.cost.n_evaluations} model evaluations`);
    line("Value", `v(∅) = ${explanation.v_empty_total.toFixed(3)}, v(all) = ${explanation.v_full_total.toFixed(3)}, ` +
         `Σφ gap ${gap.toExponential(1)}`);
    if (explanation.details && explanation.details.audio_share !== undefined) {  // text players: the audio's share
      line("Audio share (A-SHAP)", explanation.details.audio_share.toFixed(3));
    }
  }

  function drawWaveform(buffer) {
    const canvas = $("waveform");
    const width = canvas.clientWidth * devicePixelRatio;
    const height = canvas.clientHeight * devicePixelRatio;
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    const samples = buffer.getChannelData(0);
    const perColumn = Math.max(1, Math.floor(samples.length / width));
    let peak = 1e-9;
    for (let i = 0; i < samples.length; i += 1) peak = Math.max(peak, Math.abs(samples[i]));
    context.fillStyle = "#3d4852";
    for (let x = 0; x < width; x += 1) {
      let low = 0;
      let high = 0;
      for (let i = x * perColumn; i < Math.min((x + 1) * perColumn, samples.length); i += 1) {
        low = Math.min(low, samples[i]);
        high = Math.max(high, samples[i]);
      }
      const top = (0.5 - (0.5 * high) / peak) * height;
      const bottom = (0.5 - (0.5 * low) / peak) * height;
      context.fillRect(x, top, 1, Math.max(1, bottom - top));
    }
  }

  function renderSpans(explanation) {
    const duration = explanation.audio.duration_s;
    const words = explanation.players.filter((p) => p.kind === "word" && p.start_s !== null);
    const maxAbs = Math.max(...explanation.phi_total.map(Math.abs), 0);
    const spans = $("spans");
    spans.replaceChildren(...words.map((player) => {
      const phi = explanation.phi_total[player.index];
      const stderr = explanation.stderr_total ? explanation.stderr_total[player.index] : null;
      const span = document.createElement("div");
      span.className = "span";
      span.dataset.index = player.index;
      span.dataset.word = player.name;
      span.style.left = `${(100 * player.start_s) / duration}%`;
      span.style.width = `${(100 * (player.end_s - player.start_s)) / duration}%`;
      span.style.background = colour(phi, maxAbs);
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = player.name;
      span.append(label);
      span.addEventListener("click", () => play(player, span));
      attachTooltip(span, () => `${player.name} ${player.start_s.toFixed(2)}–${player.end_s.toFixed(2)} s: ` +
                                `φ ${formatPhi(phi, stderr)}`);
      return span;
    }));
  }

  function renderTimeAxis(duration) {
    const axis = $("time-axis");
    const step = duration > 20 ? 5 : duration > 8 ? 1 : 0.5;
    const ticks = [];
    for (let t = 0; t <= duration + 1e-9; t += step) {
      const tick = document.createElement("span");
      tick.style.left = `${(100 * t) / duration}%`;
      tick.textContent = `${+t.toFixed(1)} s`;
      ticks.push(tick);
    }
    axis.replaceChildren(...ticks);
  }

  function renderBars(explanation) {
    const svg = $("bars");
    const players = explanation.players;
    const phi = explanation.phi_total;
    const stderr = explanation.stderr_total;
    const width = svg.clientWidth || 1000;
    const height = 240;
    const margin = { top: 12, bottom: 46, left: 50, right: 10 };
    // The value axis spans what the bars and their 95 % intervals reach, and always 0.
    const halfWidth = (i) => (stderr && stderr[i] !== null ? 1.96 * stderr[i] : 0);
    const top = Math.max(0, ...players.map((_, i) => phi[i] + halfWidth(i)));
    const bottom = Math.min(0, ...players.map((_, i) => phi[i] - halfWidth(i)));
    const span = Math.max(top - bottom, 1e-9);
    const scale = (height - margin.top - margin.bottom) / span;
    const zero = margin.top + top * scale;
    const maxAbs = Math.max(...phi.map(Math.abs), 1e-9);
    const slot = (width - margin.left - margin.right) / players.length;
    const ns = "http://www.w3.org/2000/svg";
    const element = (name, attributes, text) => {
      const node = document.createElementNS(ns, name);
      Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, value));
      if (text !== undefined) node.textContent = text;
      return node;
    };
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const nodes = [element("line", { x1: margin.left, x2: width - margin.right, y1: zero, y2: zero, stroke: "#888" }),
                   element("text", { x: 4, y: margin.top + 8 }, `${top >= 0 ? "+" : ""}${top.toFixed(2)}`),
                   element("text", { x: 4, y: zero + 4 }, "0")];
    if (bottom < 0 && height - margin.bottom - zero > 14) nodes.push(element("text", { x: 4, y: height - margin.bottom }, bottom.toFixed(2)));
    players.forEach((player, i) => {
      const x = margin.left + i * slot;
      const barHeight = Math.abs(phi[i]) * scale;
      const bar = element("rect", {
        x: x + slot * 0.15, width: slot * 0.7, y: phi[i] >= 0 ? zero - barHeight : zero, height: Math.max(barHeight, 1),
        fill: colour(phi[i], maxAbs, 0.45), "data-index": i,
      });
      attachTooltip(bar, () => `${player.name}: φ ${formatPhi(phi[i], stderr ? stderr[i] : null)}`);
      nodes.push(bar);
      if (stderr && stderr[i] !== null) {  // the 95 % interval of a sampled value
        const centre = x + slot / 2;
        const low = zero - (phi[i] - 1.96 * stderr[i]) * scale;
        const high = zero - (phi[i] + 1.96 * stderr[i]) * scale;
        nodes.push(element("line", { x1: centre, x2: centre, y1: low, y2: high, stroke: "#222" }));
      }
      nodes.push(element("text", { x: x + slot / 2, y: height - margin.bottom + 14, "text-anchor": "middle" },
                         player.kind === "text" ? `«${player.name}»` : player.name));
    });
    svg.replaceChildren(...nodes);
  }

  function renderMatrix(explanation) {
    const table = $("matrix");
    const tokens = explanation.response.tokens;
    const maxAbs = Math.max(...explanation.phi.flat().map(Math.abs), 0);
    const head = document.createElement("tr");
    head.append(...["player", ...tokens].map((text) => {
      const th = document.createElement("th");
      th.textContent = text;
      return th;
    }));
    const rows = explanation.players.map((player, i) => {
      const tr = document.createElement("tr");
      const name = document.createElement("th");
      name.textContent = player.name;
      tr.append(name, ...explanation.phi[i].map((value) => {
        const td = document.createElement("td");
        td.textContent = value.toFixed(2);
        td.style.background = colour(value, maxAbs, 0);
        return td;
      }));
      return tr;
    });
    table.replaceChildren(head, ...rows);
  }

  // --- listening -----------------------------------------------------------------------------------------

  async function play(player, span) {
    const context = state.audioContext;
    if (!context || !state.audioBuffer) return;
    await context.resume();
    if (state.source) { try { state.source.stop(); } catch (_) { /* already ended */ } }
    const source = context.createBufferSource();
    source.buffer = state.audioBuffer;
    source.connect(context.destination);
    const duration = player.end_s - player.start_s;
    source.start(0, player.start_s, duration);
    state.source = source;
    document.querySelectorAll(".span.playing").forEach((node) => node.classList.remove("playing"));
    span.classList.add("playing");
    source.addEventListener("ended", () => span.classList.remove("playing"));
    viewer.lastPlayback = { word: player.name, index: player.index, start_s: player.start_s,
                            duration_s: duration, context_state: context.state };
  }

  // --- small things ----------------------------------------------------------------------------------------

  function attachTooltip(node, text) {
    const tooltip = $("tooltip");
    node.addEventListener("mousemove", (event) => {
      tooltip.textContent = text();
      tooltip.style.left = `${event.clientX + 12}px`;
      tooltip.style.top = `${event.clientY + 12}px`;
      tooltip.hidden = false;
    });
    node.addEventListener("mouseleave", () => { tooltip.hidden = true; });
  }

  async function download(kind) {
    if (!state.explanation || !state.jobId) return;
    const stem = (state.explanation.audio.path || "explanation").replace(/\.[^.]*$/, "");
    let url;
    let name;
    if (kind === "json") {
      const blob = new Blob([JSON.stringify(state.explanation, null, 2)], { type: "application/json" });
      url = URL.createObjectURL(blob);
      name = `${stem}.explanation.json`;
    } else {
      url = await blobUrl(`/v1/explanations/${state.jobId}/${kind === "png" ? "plot.png" : "textgrid"}`);
      name = kind === "png" ? `${stem}.explanation.png` : `${stem}.TextGrid`;
    }
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    link.click();
  }

  function switchTab(showMatrix) {
    $("words-view").hidden = showMatrix;
    $("matrix-view").hidden = !showMatrix;
    $("tab-words").classList.toggle("active", !showMatrix);
    $("tab-matrix").classList.toggle("active", showMatrix);
  }

  $("request").addEventListener("submit", submit);
  $("cancel").addEventListener("click", cancel);
  $("tab-words").addEventListener("click", () => switchTab(false));
  $("tab-matrix").addEventListener("click", () => switchTab(true));
  document.querySelectorAll("[data-download]").forEach((button) => {
    button.addEventListener("click", () => download(button.dataset.download).catch((error) => {
      showStatus(error.message, { error: true });
    }));
  });
  $("token").value = state.token;
  $("token").addEventListener("change", () => {
    state.token = $("token").value.trim();
    sessionStorage.setItem("sgpa-token", state.token);
    loadModels();
  });

  const shared = /job=([0-9a-f]{32})/.exec(location.hash);  // a link to a job opens it
  loadModels().then(() => shared && follow(shared[1])).catch((error) => showStatus(error.message, { error: true }));
})();
