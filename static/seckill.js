// The tutorial's inline script: post the id, show the answer.
// Python page: xhr.open('POST', ...); $('#rep').text(...); $('#res').text(...)
"use strict";

// What each response_num means to the buyer. Python page: switch (rep_num) { case 1: ... }
const ANSWERS = {
  1: "bought one!",
  [-1]: "sold out: the sale is over.",
  [-2]: "already bought: one each.",
  [-3]: "lost the race: the stock changed under WATCH, try again.",
};

const user = document.getElementById("user");
const rep = document.getElementById("rep");
const res = document.getElementById("res");

document.getElementById("buy").addEventListener("submit", async (event) => {
  event.preventDefault();
  const id = user.value;
  let status, answer;
  try {
    // A relative URL, so the page works from any host name.
    const response = await fetch("seckill", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ msg: id }),
    });
    status = response.status;
    answer = await response.json();
  } catch (err) {
    rep.textContent = `POST failed: ${err.message}`;
    res.textContent = `user ${id}: the server could not be reached; is seckill running?`;
    return;
  }
  if ("response_num" in answer) {
    rep.textContent = `POST submitted the user ID prefix ${id}; the server answered ${answer.response_num}`;
    res.textContent = `user ${answer.user_id}: ${ANSWERS[answer.response_num] ?? "an unknown answer"}`;
  } else {
    rep.textContent = `POST submitted the user ID prefix ${id}; the server answered HTTP ${status}`;
    res.textContent = `user ${id}: ${answer.error ?? "an unknown error"}`;
  }
});
