// The tutorial's inline script: post the id, show the answer.
// Python page: $('#submit').click(...); $('#rep').text(...); $('#res').text(...)

import { ANSWERS, UNREACHABLE, post, problem } from "./buy.js";

const user = document.getElementById("user");
const rep = document.getElementById("rep");
const res = document.getElementById("res");
const tally = document.getElementById("crowd-tally");

// A form, so Enter in the id field submits as the button does.
document.getElementById("buy").addEventListener("submit", async (event) => {
  event.preventDefault();
  // An earlier crowd's tally, or its problem, is not this purchase's answer.
  tally.textContent = "";
  const id = user.value.trim();
  if (id === "") {
    rep.textContent = "";
    res.textContent = "Type a user ID first: it is how the sale tells buyers apart.";
    user.focus();
    return;
  }
  let status, body;
  try {
    ({ status, body } = await post(id));
  } catch {
    rep.textContent = `POST of the user ID prefix ${id} failed`;
    res.textContent = `user ${id}: ${UNREACHABLE}`;
    return;
  }
  if ("response_num" in body) {
    rep.textContent = `POST submitted the user ID prefix ${id}; the server answered ${body.response_num}`;
    const wait = body.response_num === -4 ? ` It opens in ${(body.opens_in_ms / 1000).toFixed(1)} s.` : "";
    res.textContent = `user ${body.user_id}: ${ANSWERS[body.response_num] ?? "an unknown answer"}${wait}`;
  } else {
    rep.textContent = `POST submitted the user ID prefix ${id}; the server answered HTTP ${status}`;
    res.textContent = `user ${body.user_id ?? id}: ${problem(status, body)}`;
  }
});
