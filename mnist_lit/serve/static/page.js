// The drawing page of `mnist-lit serve`: draw on #pad, and every model's answer for the
// drawing appears as you draw. The page sends the drawing as a PNG to POST /predict, the
// server prepares it as `mnist-lit predict` prepares your own digits and answers with the
// 28x28 image the models saw and each model's digit and probabilities.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const seen = document.getElementById("seen").getContext("2d");
const statusLine = document.getElementById("status");
const cards = new Map(); // model name -> its card

// A stroke about as thick, relative to the digit, as MNIST's pen strokes.
const STROKE = 22;

function clearPad() {
  ink.fillStyle = "#fff"; // an opaque background: a transparent one would read as black
  ink.fillRect(0, 0, pad.width, pad.height);
  seen.clearRect(0, 0, 28, 28);
  for (const card of cards.values()) showAnswer(card, null);
  setStatus("Draw a digit.");
  drawn = false;
  changed = false;
  if (!inFlight) setBusy(false);
}

function setStatus(text, isError = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", isError);
}

// ---- the models' cards --------------------------------------------------------------

function addCard(name, about) {
  const card = document.getElementById("model-card").content.firstElementChild.cloneNode(true);
  card.dataset.model = name;
  card.querySelector(".name").textContent = name;
  card.querySelector(".about").textContent = about;
  const bars = card.querySelector(".bars");
  for (let digit = 0; digit < 10; digit++) {
    const row = document.createElement("li");
    row.dataset.digit = String(digit);
    row.innerHTML =
      '<span class="label"></span><span class="track"><span class="bar"></span></span>' +
      '<span class="value"></span>';
    row.querySelector(".label").textContent = String(digit);
    bars.append(row);
  }
  document.getElementById("models").append(card);
  cards.set(name, card);
  showAnswer(card, null);
  return card;
}

// One model's answer, {digit, probabilities}, or null for none yet.
function showAnswer(card, answer) {
  card.querySelector(".digit").textContent = answer ? String(answer.digit) : "-";
  card.querySelector(".confidence").textContent = answer
    ? `with probability ${answer.probabilities[answer.digit].toFixed(3)}`
    : "";
  card.querySelectorAll(".bars li").forEach((row, digit) => {
    const p = answer ? answer.probabilities[digit] : 0;
    row.dataset.probability = String(p);
    row.classList.toggle("top", Boolean(answer) && digit === answer.digit);
    row.querySelector(".bar").style.width = `${(100 * p).toFixed(1)}%`;
    row.querySelector(".value").textContent = answer ? p.toFixed(3) : "";
  });
}

async function loadModels() {
  try {
    const response = await fetch("info");
    const info = await response.json();
    for (const [name, model] of Object.entries(info.models)) {
      const normalized = model.normalize ? ", normalized pixels" : "";
      addCard(name, `${model.net} trained with ${model.loss}${normalized}`);
    }
  } catch (error) {
    setStatus(`Could not list the models: ${error}`, true);
  }
}

// ---- asking the server ----------------------------------------------------------------

let drawn = false; // anything on the pad since it was cleared
let inFlight = false; // one request at a time ...
let changed = false; // ... and one more when the drawing changed meanwhile

// "1" while the answers on show are not yet those for the drawing on the pad.
function setBusy(busy) {
  pad.dataset.busy = busy ? "1" : "0";
}

function requestPrediction() {
  if (!drawn) return;
  setBusy(true);
  if (inFlight) {
    changed = true;
    return;
  }
  inFlight = true;
  changed = false;
  pad.toBlob(async (png) => {
    try {
      const response = await fetch("predict", {
        method: "POST",
        headers: { "Content-Type": "image/png" },
        body: png,
      });
      const answer = await response.json();
      if (!drawn) return; // cleared while the request was out
      if (response.ok) showPrediction(answer);
      else setStatus(answer.detail || `The server answered ${response.status}.`, true);
    } catch (error) {
      setStatus(`No answer from the server: ${error}`, true);
    } finally {
      inFlight = false;
      if (changed && drawn) requestPrediction();
      else setBusy(false);
    }
  }, "image/png");
}

function showPrediction(answer) {
  const pixels = seen.createImageData(28, 28);
  answer.image.forEach((row, y) =>
    row.forEach((value, x) => {
      const i = 4 * (28 * y + x);
      pixels.data.set([value, value, value, 255], i);
    }),
  );
  seen.putImageData(pixels, 0, 0);
  for (const [name, modelAnswer] of Object.entries(answer.models)) {
    showAnswer(cards.get(name) || addCard(name, ""), modelAnswer);
  }
  setStatus("Keep drawing, or clear and draw another.");
}

// ---- drawing with a mouse, a pen or a finger (pointer events cover all three) ---------

let last = null; // the previous point of the stroke being drawn

function point(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  last = point(event);
  strokeTo(last); // a dot for a tap
});

pad.addEventListener("pointermove", (event) => {
  if (last === null) return;
  event.preventDefault();
  strokeTo(point(event));
  requestPrediction(); // updated as you draw, one request at a time
});

for (const end of ["pointerup", "pointercancel"]) {
  pad.addEventListener(end, () => {
    if (last === null) return;
    last = null;
    requestPrediction();
  });
}

function strokeTo(next) {
  ink.strokeStyle = "#000";
  ink.lineWidth = STROKE;
  ink.lineCap = "round";
  ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(last.x, last.y);
  ink.lineTo(next.x + 0.01, next.y); // a zero-length line draws no dot
  ink.stroke();
  last = next;
  drawn = true;
}

document.getElementById("clear").addEventListener("click", clearPad);

clearPad();
loadModels();
