// The crowd: fires many purchases at once from the page, so a class without
// ab still sees races and the sell-out. The page's answer to `ab -p postfile`.

import { UNREACHABLE, post, problem } from "./buy.js";

const MAX_CROWD = 5000;
const user = document.getElementById("user");
const size = document.getElementById("crowd-size");
const fire = document.getElementById("crowd-fire");
const tally = document.getElementById("crowd-tally");

document.getElementById("crowd").addEventListener("submit", async (event) => {
  event.preventDefault();
  const n = size.valueAsNumber;
  if (!Number.isInteger(n) || n < 1 || n > MAX_CROWD) {
    tally.textContent = `Choose a crowd of 1 to ${MAX_CROWD} buyers.`;
    return;
  }
  // Ids built from the user ID, one per buyer, as ab's postfile with a suffix.
  const base = user.value.trim() || "crowd";
  const counts = { 1: 0, [-1]: 0, [-2]: 0, [-3]: 0, [-4]: 0 };
  let maybe = 0, unconfirmed = 0, refused = 0, unreachable = 0, firstProblem = "";
  const started = performance.now();
  fire.disabled = true;
  // The single purchase's lines would read as part of the crowd's answer.
  document.getElementById("rep").textContent = "";
  document.getElementById("res").textContent = "";
  tally.textContent = `Firing ${n} buyers…`;
  await Promise.all(Array.from({ length: n }, async (_, i) => {
    try {
      const { status, body } = await post(`${base}-${i + 1}`);
      if (body.response_num in counts) {
        counts[body.response_num] += 1;
      } else if (body.cause === "maybe_sold") {
        maybe += 1;
      } else if (body.cause === "unreplicated") {
        unconfirmed += 1;
      } else {
        refused += 1;
        firstProblem ||= problem(status, body);
      }
    } catch {
      unreachable += 1;
      firstProblem ||= UNREACHABLE;
    }
  }));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  tally.textContent = `Crowd of ${n} in ${seconds} s: ${counts[1]} bought, ${counts[-1]} sold out, ` +
    `${counts[-2]} repeat, ${counts[-3]} lost the race, ${counts[-4]} before the opening, ` +
    `${maybe} maybe bought, ` +
    `${unconfirmed} not yet on a replica, ${refused} refused, ` +
    `${unreachable} unanswered.` +
    (firstProblem ? ` ${firstProblem}` : "");
  fire.disabled = false;
});
