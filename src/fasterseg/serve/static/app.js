// The fasterseg page: an image (dropped or picked) -> overlay + class areas; the camera -> live
// overlays over a WebSocket with their FPS; the model card. Served by `fasterseg serve`, no CDN.
"use strict";

const $ = (id) => document.getElementById(id);
let classes = [];

function say(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function showLegend(rows) {
  const body = $("legend").querySelector("tbody");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    const [r, g, b] = row.color;
    const area = row.fraction === undefined ? "" : (100 * row.fraction).toFixed(1) + " %";
    tr.innerHTML = `<td class="swatch"><span style="background: rgb(${r}, ${g}, ${b})"></span></td>` +
      `<td></td><td class="area">${area}</td>`;
    tr.children[1].textContent = row.name;
    body.appendChild(tr);
  }
}

async function errorText(response) {
  try { return (await response.json()).error; } catch { return response.statusText; }
}

async function segmentFile(file) {
  if (!file) return;
  say(`segmenting ${file.name}…`);
  const type = file.type || "application/octet-stream";
  const post = (format) => fetch(`/v1/segment?format=${format}`, { method: "POST", body: file, headers: { "Content-Type": type } });
  const [overlay, summary] = await Promise.all([post("overlay"), post("json")]);
  if (!overlay.ok) { say(`${file.name}: ${await errorText(overlay)}`, true); return; }
  const img = $("overlay");
  img.src = URL.createObjectURL(await overlay.blob());
  img.hidden = false;
  img.dataset.ready = "1";
  const info = await summary.json();
  showLegend(info.classes.sort((a, b) => b.fraction - a.fraction));
  say(`${file.name}: ${info.size[1]}x${info.size[0]}, inference ${Number(overlay.headers.get("X-Inference-Ms")).toFixed(1)} ms`);
}

function setUpDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => segmentFile(e.target.files[0]));
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    segmentFile(e.dataTransfer.files[0]);
  });
}

let camera = null;

async function startCamera() {
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 } });
  } catch (err) {
    say(`camera: ${err.message}`, true);
    return;
  }
  const video = $("video");
  video.srcObject = media;
  await video.play();
  const grab = document.createElement("canvas");
  const live = $("live");
  live.hidden = false;
  $("overlay").hidden = true;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/v1/stream?format=overlay`);
  socket.binaryType = "blob";
  camera = { media, socket, frames: [] };
  const send = () => {
    if (!camera || socket.readyState !== WebSocket.OPEN) return;
    grab.width = video.videoWidth;
    grab.height = video.videoHeight;
    grab.getContext("2d").drawImage(video, 0, 0);
    grab.toBlob((blob) => socket.send(blob), "image/jpeg", 0.8);
  };
  socket.onopen = send;
  socket.onmessage = async (event) => {
    if (typeof event.data === "string") { say(JSON.parse(event.data).error, true); send(); return; }
    const bitmap = await createImageBitmap(event.data);
    live.width = bitmap.width;
    live.height = bitmap.height;
    live.getContext("2d").drawImage(bitmap, 0, 0);
    const now = performance.now();
    camera.frames = camera.frames.filter((t) => now - t < 2000).concat([now]);
    $("fps").textContent = `${(camera.frames.length / 2).toFixed(1)} FPS`;
    send();  // one frame in flight: the server never queues a backlog of old frames
  };
  socket.onerror = () => say("the stream failed", true);
  $("camera").hidden = true;
  $("stop").hidden = false;
  say("camera on");
}

function stopCamera() {
  if (!camera) return;
  camera.socket.close();
  camera.media.getTracks().forEach((t) => t.stop());
  camera = null;
  $("camera").hidden = false;
  $("stop").hidden = true;
  say("camera off");
}

async function loadCard() {
  const card = await (await fetch("/v1/model")).json();
  classes = card.classes;
  showLegend(classes);
  const path = card.deploy_path;
  $("model-line").textContent = `${card.classes.length} classes · ${path.backend} ${path.precision} on ${path.device}`;
  const rows = {
    "model": card.model,
    "deploy path": `${path.backend} ${path.precision} (${path.device})`,
    "network": card.genotype ? `${card.genotype.branches.join(", ")}; ${card.genotype.gmacs_at.gmacs} GMAC at ${card.genotype.gmacs_at.size.join("x")}` : card.network,
    "latency": card.latency.measured ? `${card.latency.measured.median_ms.toFixed(1)} ms at ${card.latency.measured.size.join("x")} (measured at start)` : "",
    "held-out mIoU": card.heldout.miou == null ? "not recorded" : (100 * card.heldout.miou).toFixed(1),
    "held-out note": card.heldout.note || "",
    "trained": card.provenance.trained || "",
    "command": card.provenance.command || "",
  };
  const dl = $("card");
  dl.replaceChildren();
  for (const [key, value] of Object.entries(rows)) {
    if (!value) continue;
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = key;
    dd.textContent = value;
    dl.append(dt, dd);
  }
}

setUpDrop();
$("camera").addEventListener("click", startCamera);
$("stop").addEventListener("click", stopCamera);
loadCard().catch((err) => say(`model card: ${err}`, true));
