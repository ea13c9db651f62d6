// batchocr's page: submit scans to POST /v1/jobs, poll GET /v1/jobs/<id>, draw the lines' boxes.
"use strict";

const $ = (id) => document.getElementById(id);
const keyField = $("apikey");
keyField.value = sessionStorage.getItem("batchocr-key") || "";
keyField.addEventListener("change", () => { sessionStorage.setItem("batchocr-key", keyField.value); loadModels(); });

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

function card(file) {
  const node = $("job-card").content.firstElementChild.cloneNode(true);
  node.querySelector(".name").textContent = file.name;
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
}

$("files").addEventListener("change", (event) => accept(event.target.files));
const drop = $("drop");
drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); accept(event.dataTransfer.files); });
loadModels();
