// vidcolor edit: the page. Plain JavaScript on a canvas; every request goes to this page's own server.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  film: null, t: 0, project: { vidcolor_project: 1, points: [], keyframes: [] },
  undo: [], redo: [], selected: -1, colour: "#c08040", size: 0.015, recent: [], drag: null,
  frameRequest: null, shownRevision: 0, revision: 0,
};

async function api(path, options = {}) {
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).error; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function say(text) { $("status").textContent = text; }

function formatTime(t) {
  const m = Math.floor(t / 60), s = t - 60 * m;
  const h = Math.floor(m / 60);
  const ss = s.toFixed(3).padStart(6, "0");
  return h ? `${h}:${String(m % 60).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

// The frame at or after t, as vidcolor's options count it: times are snapped to the frame grid.
function snap(t) {
  const f = state.film;
  const i = Math.min(f.frames - 1, Math.max(0, Math.round(t * f.fps)));
  return i / f.fps;
}

function pointsHere() {
  const half = 0.5 / state.film.fps;
  return state.project.points.map((p, i) => [p, i]).filter(([p]) => Math.abs(p.t - state.t) < half);
}

async function showFrame() {
  if (state.frameRequest) state.frameRequest.abort();  // a stale request: its answer is no longer wanted
  const controller = new AbortController();
  state.frameRequest = controller;
  const revision = state.revision;
  const view = $("view").value;
  try {
    const response = await api(`/api/frame?t=${state.t.toFixed(4)}&view=${view}`, { signal: controller.signal });
    const bitmap = await createImageBitmap(await response.blob());
    if (controller.signal.aborted) return;
    sayCarried(response.headers.get("X-Vidcolor-Points-From"));
    const canvas = $("frame");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    state.shownRevision = revision;
    canvas.dataset.revision = String(revision);
    canvas.dataset.t = state.t.toFixed(4);
    drawMarks();
  } catch (e) {
    if (e.name !== "AbortError") say(e.message);
  }
}

// A frame without points of its own, in a shot with some: say which frame's points colour it.
function sayCarried(from) {
  const note = from === null ? "" : `coloured by the points at ${formatTime(Number(from))}; Play the shot shows them carried`;
  if (note) say(note);
  else if ($("status").textContent.startsWith("coloured by the points")) say("");
}

function drawMarks() {
  const canvas = $("frame"), marks = $("marks");
  const box = canvas.getBoundingClientRect(), stage = $("stage").getBoundingClientRect();
  marks.style.left = `${box.left - stage.left}px`;
  marks.style.top = `${box.top - stage.top}px`;
  marks.replaceChildren();
  for (const [p, i] of pointsHere()) {
    const side = Math.max(6, p.size * box.width);
    const el = document.createElement("div");
    el.className = "mark" + (i === state.selected ? " selected" : "");
    el.style.left = `${p.x * box.width - side / 2}px`;
    el.style.top = `${p.y * box.height - side / 2}px`;
    el.style.width = el.style.height = `${side}px`;
    marks.appendChild(el);
  }
}

function setTime(t) {
  state.t = snap(Math.max(0, Math.min(t, state.film.duration)));
  $("time").textContent = formatTime(state.t);
  $("scrub").value = String(state.t / state.film.duration);
  state.selected = -1;
  showFrame();
}

// Every edit: remembered for undo, saved, then the frame coloured again.
async function edit(change) {
  state.undo.push(JSON.stringify(state.project));
  state.redo = [];
  change(state.project);
  await save();
}

async function save() {
  state.revision += 1;
  drawMarks();
  try {
    await api("/api/project", { method: "PUT", body: JSON.stringify(state.project), headers: { "Content-Type": "application/json" } });
    say("saved");
  } catch (e) {
    say(e.message);
  }
  showFrame();
}

async function travel(from, to) {
  if (!from.length) return;
  to.push(JSON.stringify(state.project));
  state.project = JSON.parse(from.pop());
  state.selected = -1;
  await save();
}

function at(event) {
  const box = $("frame").getBoundingClientRect();
  return [Math.min(1, Math.max(0, (event.clientX - box.left) / box.width)),
          Math.min(1, Math.max(0, (event.clientY - box.top) / box.height))];
}

function hit(x, y) {
  const box = $("frame").getBoundingClientRect();
  for (const [p, i] of pointsHere()) {
    const r = Math.max(6, p.size * box.width) / 2 + 3;
    if (Math.abs((p.x - x) * box.width) <= r && Math.abs((p.y - y) * box.height) <= r) return i;
  }
  return -1;
}

function useColour(hex, apply = true) {
  hex = hex.toLowerCase();
  if (!/^#[0-9a-f]{6}$/.test(hex)) { say("a colour is #rrggbb"); return; }
  state.colour = hex;
  $("hex").value = hex;
  $("current").style.background = hex;
  state.recent = [hex, ...state.recent.filter((c) => c !== hex)].slice(0, 12);
  swatches($("recent"), state.recent);
  if (apply && state.selected >= 0) edit((p) => { p.points[state.selected].colour = hex; });
}

function swatches(box, colours) {
  box.replaceChildren(...colours.map((c) => {
    const el = document.createElement("div");
    el.className = "swatch";
    el.style.background = c;
    el.title = c;
    el.addEventListener("click", () => useColour(c));
    return el;
  }));
}

async function suggestAt(x, y) {
  try {
    const r = await api(`/api/suggest?t=${state.t.toFixed(4)}&x=${x.toFixed(4)}&y=${y.toFixed(4)}`);
    const { colours } = await r.json();
    swatches($("suggestions"), colours);
    drawPlane(lightnessAt(x, y));
    return colours;
  } catch (e) { say(e.message); return []; }
}

function lightnessAt(x, y) {
  const canvas = $("frame");
  const [r, g, b] = canvas.getContext("2d").getImageData(Math.floor(x * (canvas.width - 1)), Math.floor(y * (canvas.height - 1)), 1, 1).data;
  return lab(r, g, b)[0];
}

// sRGB (0..255) <-> CIE Lab (D65), for the ab plane at a lightness.
function lab(r, g, b) {
  const lin = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
  const [R, G, B] = [lin(r), lin(g), lin(b)];
  const f = (t) => (t > 216 / 24389 ? Math.cbrt(t) : (841 / 108) * t + 4 / 29);
  const X = f((0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047);
  const Y = f(0.2126 * R + 0.7152 * G + 0.0722 * B);
  const Z = f((0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883);
  return [116 * Y - 16, 500 * (X - Y), 200 * (Y - Z)];
}

function rgbOfLab(L, a, b) {
  const fy = (L + 16) / 116, fx = fy + a / 500, fz = fy - b / 200;
  const inv = (t) => (t > 6 / 29 ? t ** 3 : (108 / 841) * (t - 4 / 29));
  const X = 0.95047 * inv(fx), Y = inv(fy), Z = 1.08883 * inv(fz);
  const out = [3.2406 * X - 1.5372 * Y - 0.4986 * Z, -0.9689 * X + 1.8758 * Y + 0.0415 * Z, 0.0557 * X - 0.2040 * Y + 1.0570 * Z];
  const gamma = (c) => (c <= 0.0031308 ? 12.92 * c : 1.055 * c ** (1 / 2.4) - 0.055);
  return out.map((c) => gamma(c) * 255);
}

function drawPlane(L) {
  const canvas = $("plane"), ctx = canvas.getContext("2d");
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let j = 0; j < canvas.height; j++) {
    for (let i = 0; i < canvas.width; i++) {
      const a = (i / canvas.width) * 200 - 100, b = 100 - (j / canvas.height) * 200;
      const rgb = rgbOfLab(L, a, b);
      const inside = rgb.every((c) => c >= -0.5 && c <= 255.5);
      const k = 4 * (j * canvas.width + i);
      img.data.set(inside ? [...rgb.map(Math.round), 255] : [40, 40, 40, 255], k);
    }
  }
  ctx.putImageData(img, 0, 0);
  canvas.dataset.lightness = String(L);
}

function hexOf(rgb) { return "#" + rgb.map((c) => Math.round(Math.min(255, Math.max(0, c))).toString(16).padStart(2, "0")).join(""); }

function setup() {
  const canvas = $("frame");
  canvas.addEventListener("contextmenu", (e) => {
    e.preventDefault();
    const i = hit(...at(e));
    if (i >= 0) edit((p) => { p.points.splice(i, 1); state.selected = -1; });
  });
  canvas.addEventListener("mousedown", async (e) => {
    if (e.button !== 0) return;
    const [x, y] = at(e);
    const i = hit(x, y);
    if (i >= 0) {
      state.selected = i;
      state.drag = { i, before: JSON.stringify(state.project), moved: false };
      useColour(state.project.points[i].colour, false);
      drawMarks();
      return;
    }
    const point = { t: Number(state.t.toFixed(4)), x: Number(x.toFixed(4)), y: Number(y.toFixed(4)), colour: state.colour, size: state.size };
    await edit((p) => { p.points.push(point); state.selected = p.points.length - 1; });
    suggestAt(x, y);
  });
  window.addEventListener("mousemove", (e) => {
    if (!state.drag) return;
    const [x, y] = at(e);
    const p = state.project.points[state.drag.i];
    p.x = Number(x.toFixed(4)); p.y = Number(y.toFixed(4));
    state.drag.moved = true;
    drawMarks();
  });
  window.addEventListener("mouseup", () => {
    const drag = state.drag;
    state.drag = null;
    if (drag && drag.moved) { state.undo.push(drag.before); state.redo = []; save(); }
  });
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const i = state.selected;
    const size = Math.min(0.1, Math.max(0.003, (i >= 0 ? state.project.points[i].size : state.size) * (e.deltaY < 0 ? 1.15 : 1 / 1.15)));
    state.size = Number(size.toFixed(4));
    $("size").value = String(state.size);
    if (i >= 0) edit((p) => { p.points[i].size = state.size; });
  }, { passive: false });
  $("size").addEventListener("change", () => {
    state.size = Number($("size").value);
    if (state.selected >= 0) edit((p) => { p.points[state.selected].size = state.size; });
  });
  $("hex").addEventListener("change", () => useColour($("hex").value.trim()));
  $("gray").addEventListener("click", () => useColour("#808080"));
  $("plane").addEventListener("click", (e) => {
    const box = e.target.getBoundingClientRect();
    const a = ((e.clientX - box.left) / box.width) * 200 - 100, b = 100 - ((e.clientY - box.top) / box.height) * 200;
    const L = Number(e.target.dataset.lightness || 50);
    const rgb = rgbOfLab(L, a, b);
    if (rgb.every((c) => c >= -0.5 && c <= 255.5)) useColour(hexOf(rgb));
  });
  $("view").addEventListener("change", showFrame);
  $("scrub").addEventListener("input", () => setTime(Number($("scrub").value) * state.film.duration));
  window.addEventListener("resize", drawMarks);
  window.addEventListener("keydown", (e) => {
    if (e.target.tagName === "INPUT" && e.target.type !== "range") return;
    if (e.key === "ArrowRight") { e.preventDefault(); setTime(state.t + 1 / state.film.fps); }
    else if (e.key === "ArrowLeft") { e.preventDefault(); setTime(state.t - 1 / state.film.fps); }
    else if ((e.key === "Delete" || e.key === "Backspace") && state.selected >= 0) {
      const i = state.selected;
      edit((p) => { p.points.splice(i, 1); state.selected = -1; });
    } else if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z") {
      e.preventDefault();
      if (e.shiftKey) travel(state.redo, state.undo); else travel(state.undo, state.redo);
    }
  });
  $("play").addEventListener("click", playShot);
  $("render").addEventListener("click", async () => {
    try { await api("/api/render", { method: "POST" }); pollRender(); } catch (e) { say(e.message); }
  });
  $("cancel").addEventListener("click", () => api("/api/render", { method: "DELETE" }).then(pollRender, (e) => say(e.message)));
}

// The current shot, coloured through time as a render colours it, drawn frame by frame on the canvas.
async function playShot() {
  $("play").disabled = true;
  say("colouring the shot...");
  try {
    const shot = await (await api(`/api/shot?t=${state.t.toFixed(4)}`)).json();
    say(`playing ${shot.frames.length} frames`);
    const canvas = $("frame"), ctx = canvas.getContext("2d");
    for (const b64 of shot.frames) {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/jpeg" }));
      ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      await new Promise((done) => setTimeout(done, 1000 / shot.fps));
    }
    say("");
  } catch (e) {
    say(e.message);
  }
  $("play").disabled = false;
  showFrame();
}

async function pollRender() {
  const r = await (await api("/api/render")).json();
  $("command").textContent = r.command;
  $("progress").value = r.progress || 0;
  $("cancel").disabled = r.state !== "running";
  $("render").disabled = r.state === "running";
  if (r.state === "running") setTimeout(pollRender, 1000);
  else if (r.state !== "idle") say(`render ${r.state}${r.message ? ": " + r.message : ""}`);
}

function drawShots() {
  const box = $("shots");
  const d = state.film.duration;
  box.replaceChildren(...state.film.shots.map(([start, end]) => {
    const el = document.createElement("div");
    el.className = "shot";
    el.style.left = `${(100 * start) / d}%`;
    el.style.width = `${(100 * (end - start)) / d}%`;
    el.style.backgroundImage = `url("/api/frame?t=${start.toFixed(4)}&view=gray")`;
    el.title = `shot at ${formatTime(start)}`;
    el.addEventListener("click", () => setTime(start));
    return el;
  }));
}

async function main() {
  setup();
  if (location.search) history.replaceState(null, "", "/");  // the token now lives in the cookie, not the address bar
  state.film = await (await api("/api/film")).json();
  state.project = await (await api("/api/project")).json();
  useColour(state.colour, false);
  drawShots();
  setTime(0);
  pollRender();
}

window.addEventListener("DOMContentLoaded", () => main().catch((e) => say(e.message)));
