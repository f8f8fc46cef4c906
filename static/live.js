// The sale as it happens: polls /seckill/stats about twice a second while
// the page is visible, and shows the figures and the chart.
import { UNREACHABLE, get, problem } from "./buy.js";
import { Chart } from "./chart.js";
import { showOpening } from "./opening.js";

const POLL_MS = 500;

// Each element's id and the field of /seckill/stats it shows.
const FIELDS = {
  stock: "remaining",
  initial: "initial_stock",
  winners: "winners",
  strategy: "strategy",
  requests: "requests",
  success: "success",
  "sold-out": "sold_out",
  repeat: "repeat",
  conflicts: "conflicts",
  errors: "errors",
  busy: "busy",
  "waiting-for-redis": "waiting_for_redis",
  "longest-wait": "longest_wait_ms",
  "maybe-sold": "maybe_sold",
  unreplicated: "unreplicated",
  "not-open": "not_open",
  "orders-written": "orders_written",
  "orders-waiting": "orders_waiting",
  "oldest-waiting": "oldest_waiting_ms",
  "orders-dead": "orders_dead",
};

const note = document.getElementById("live-note");
const chart = new Chart(document.getElementById("chart"));
let timer = null;
let polling = false;

async function poll() {
  timer = null;
  // Hidden since this poll was set: ask nothing; being shown asks again.
  if (document.hidden) return;
  polling = true;
  try {
    const { status, body } = await get("seckill/stats");
    if (status === 200) {
      show(body);
    } else {
      tell(`Live figures stopped: ${problem(status, body)}`);
    }
  } catch {
    tell(`Live figures stopped: ${UNREACHABLE}`);
  }
  polling = false;
  next();
}

// A count of orders older than this says its age: the database is slow to
// answer the writer, or does not answer at all.
const STALE_MS = 3000;

function show(stats) {
  for (const [id, field] of Object.entries(FIELDS)) {
    // null: orders off (--orders off), or none waiting.
    document.getElementById(id).textContent = String(stats[field] ?? "–");
  }
  const age = stats.orders_counted_ms_ago;
  if (age != null && age > STALE_MS) {
    document.getElementById("orders-written").textContent +=
      ` (counted ${Math.round(age / 1000)} s ago: the database is not answering)`;
  }
  showOpening(stats);
  chart.add(Date.now(), stats);
  note.classList.remove("problem");
  note.textContent = `Live: updated at ${new Date().toLocaleTimeString()}.`;
}

function tell(sentence) {
  note.classList.add("problem");
  note.textContent = sentence;
}

// A hidden tab asks nothing; it catches up as soon as it is shown again.
function next() {
  if (!document.hidden && !polling && timer === null) {
    timer = setTimeout(poll, POLL_MS);
  }
}

document.addEventListener("visibilitychange", next);
window.addEventListener("resize", () => chart.draw());
poll();
