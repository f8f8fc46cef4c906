// The moment the sale opens (seckill --opens-in / --opens-at): a countdown,
// and the buttons enabled at the opening, so a class clicks together. The
// tutorial's page has none: its sale is open from the start.

const TICK_MS = 100;
const note = document.getElementById("opening");
const buttons = [document.getElementById("submit"), document.getElementById("crowd-fire")];
let opensAt = null; // performance.now() at the opening, as the server last said
let ticker = null;

// Called with each /seckill/stats: `opens_in_ms` counts down to 0, the
// opening; `opens_at` says when, by the server's clock.
export function showOpening(stats) {
  if (!(stats.opens_in_ms > 0)) {
    if (opensAt !== null) open();
    return;
  }
  opensAt = performance.now() + stats.opens_in_ms;
  note.dataset.at = new Date(stats.opens_at).toLocaleTimeString();
  for (const button of buttons) button.disabled = true;
  ticker ??= setInterval(tick, TICK_MS);
  tick();
}

function tick() {
  const left = opensAt - performance.now();
  if (left <= 0) {
    open();
    return;
  }
  note.textContent = `The sale opens at ${note.dataset.at}: in ${(left / 1000).toFixed(1)} s. ` +
    "Until then a purchase answers -4 and buys nothing.";
}

function open() {
  clearInterval(ticker);
  ticker = null;
  opensAt = null;
  for (const button of buttons) button.disabled = false;
  note.textContent = "The sale is open: buy now!";
}
