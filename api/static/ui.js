// batchocr's page: submit scans to POST /v1/jobs, poll GET /v1/jobs/<id>, draw the lines' boxes.
"use strict";

const $ = (id) => document.getElementById(id);
const keyField = $("apikey");
keyField.value = sessionStorage.getItem("batchocr-key") || "";
keyField.addEventListener("change", () => {
  sessionStorage.setItem("batchocr-key", keyField.value);
  loadModels();
loadCollections();
  loadCollections();
});

function headers() {
  return keyField.value ? { Authorization: "Bearer " + keyField.value } : {};
}

async function loadModels() {
  const response = await fetch("v1/models", { headers: headers() });
  if (!response.ok) return;
  const info = await response.json();
  const select = $("model");
  select.length = 1;
  for (const version of info.versions.filter((v) => v.installed)) {
    const option = new Option(version.name + (version.name === info.default ? " (default)" : ""), version.name);
    option.title = version.description;
    select.add(option);
  }
}

// Collections: this key's, newest first, with their progress; refreshed while any is active.
let collectionTimer = null;

async function loadCollections() {
  clearTimeout(collectionTimer);
  const response = await fetch("v1/collections?limit=20", { headers: headers() });
  if (!response.ok) return;
  const { collections } = await response.json();
  const select = $("collection");
  const chosen = select.value;
  select.length = 1;
  const body = $("collections").querySelector("tbody");
  body.replaceChildren();
  for (const c of collections) {
    const label = c.name || c.id.slice(0, 8);
    if (c.status !== "canceled") select.add(new Option(label, c.id, false, c.id === chosen));
    const row = body.insertRow();
    row.dataset.id = c.id;
    row.insertCell().textContent = label;
    row.insertCell().textContent = c.status;
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = c.progress;
    const cell = row.insertCell();
    cell.append(bar, ` ${Math.round(c.progress * 100)} % of ${c.total}`);
    row.insertCell().textContent = Object.entries(c.counts).filter(([, n]) => n).map(([s, n]) => `${n} ${s}`).join(", ");
    const actions = row.insertCell();
    if (c.status === "active" || c.status === "empty") {
      const cancel = document.createElement("button");
      cancel.textContent = "Cancel";
      cancel.addEventListener("click", () => cancelCollection(c.id));
      actions.append(cancel);
    }
  }
  $("collections").hidden = collections.length === 0;
  if (collections.some((c) => c.status === "active")) collectionTimer = setTimeout(loadCollections, 2000);
}

async function newCollection() {
  const name = prompt("Name of the new collection (e.g. the box or the run it holds)");
  if (name === null) return;
  const response = await fetch("v1/collections", {
    method: "POST", body: JSON.stringify({ name }), headers: { ...headers(), "Content-Type": "application/json" },
  });
  const answer = await response.json();
  if (!response.ok) { $("notice").textContent = answer.error.message; return; }
  await loadCollections();
  $("collection").value = answer.id;
}

async function cancelCollection(id) {
  const response = await fetch("v1/collections/" + id, { method: "DELETE", headers: headers() });
  const answer = await response.json();
  $("notice").textContent = response.ok ? answer.message : answer.error.message;
  loadCollections();
}

function card(file) {
  const node = $("job-card").content.firstElementChild.cloneNode(true);
  node.querySelector(".name").textContent = file.name;
  const collection = $("collection");
  node.querySelector(".meta").textContent = `priority ${$("priority").value}` +
    (collection.value ? `, collection ${collection.options[collection.selectedIndex].text}` : "");
  $("jobs").prepend(node);
  return node;
}

function setStatus(node, text, kind) {
  const status = node.querySelector(".status");
  status.textContent = text;
  status.className = "status " + (kind || "");
}

function drawImage(node, file) {
  return new Promise((resolve) => {
    const image = new Image();
    image.onload = () => {
      const canvas = node.querySelector("canvas");
      canvas.width = image.naturalWidth;
      canvas.height = image.naturalHeight;
      canvas.getContext("2d").drawImage(image, 0, 0);
      resolve(canvas);
    };
    image.onerror = () => resolve(null);  // e.g. TIFF: no preview, the text still shows
    image.src = URL.createObjectURL(file);
  });
}

function showResult(node, canvas, result) {
  const body = node.querySelector("tbody");
  result.lines.forEach((line, index) => {
    const row = body.insertRow();
    row.className = line.confidence < 0.8 ? "low" : "";
    row.insertCell().textContent = index + 1;
    row.insertCell().textContent = line.text;
    const conf = row.insertCell();
    conf.className = "conf";
    conf.textContent = (line.confidence * 100).toFixed(1) + " %";
  });
  if (!canvas) return;
  const context = canvas.getContext("2d");
  context.lineWidth = Math.max(2, canvas.width / 500);
  context.font = Math.max(12, canvas.width / 60) + "px sans-serif";
  result.lines.forEach((line, index) => {
    context.strokeStyle = line.confidence < 0.8 ? "#d93025" : "#1a73e8";
    context.beginPath();
    line.box.forEach(([x, y], i) => (i ? context.lineTo(x, y) : context.moveTo(x, y)));
    context.closePath();
    context.stroke();
    context.fillStyle = context.strokeStyle;
    context.fillText(String(index + 1), line.box[0][0], Math.max(12, line.box[0][1] - 3));
  });
}

async function submit(file) {
  const node = card(file);
  const canvas = await drawImage(node, file);
  const form = new FormData();
  form.append("file", file);
  form.append("mode", $("mode").value);
  form.append("priority", $("priority").value);
  if ($("lang").value) form.append("lang", $("lang").value);
  if ($("model").value) form.append("model", $("model").value);
  if ($("collection").value) form.append("collection", $("collection").value);
  setStatus(node, "uploading…");
  const response = await fetch("v1/jobs", { method: "POST", body: form, headers: headers() });
  const answer = await response.json();
  if (!response.ok) {
    setStatus(node, `refused (${response.status}): ${answer.error.message}`, "failed");
    return;
  }
  for (;;) {
    // Long-poll: the API answers once the job has ended, or after 20 s.
    const poll = await fetch("v1/jobs/" + answer.id + "?wait=20", { headers: headers() });
    const view = await poll.json();
    if (!poll.ok) { setStatus(node, view.error.message, "failed"); return; }
    if (view.status === "finished") {
      const r = view.result;
      setStatus(node, `finished: ${r.lines.length} lines, model ${r.model}, ${Math.round(r.timings_ms.total)} ms`, "finished");
      node.dataset.text = r.text;
      showResult(node, canvas, r);
      if (view.collection) loadCollections();
      return;
    }
    if (view.status === "failed") { setStatus(node, `failed: ${view.error.message}`, "failed"); return; }
    if (view.status === "canceled" || view.status === "stopped") { setStatus(node, view.status, "failed"); return; }
    setStatus(node, view.status + "…");
    await new Promise((resolve) => setTimeout(resolve, 200)); // an API with no wait slot free answers at once
  }
}

function accept(files) {
  $("notice").textContent = "";
  for (const file of files) submit(file).catch((error) => { $("notice").textContent = String(error); });
  if ($("collection").value) setTimeout(loadCollections, 500);
}

$("new-collection").addEventListener("click", () => newCollection().catch((error) => { $("notice").textContent = String(error); }));

$("files").addEventListener("change", (event) => accept(event.target.files));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); accept(event.dataTransfer.files); });
loadModels();
loadCollections();
