// One purchase as the tutorial's page posts it, and what the answers mean.
// Shared by the button (seckill.js) and the crowd (crowd.js).

// What each response_num means to the buyer. Python page: switch (rep_num) { case 1: ... }
export const ANSWERS = {
  1: "bought one!",
  [-1]: "sold out: the sale is over.",
  [-2]: "already bought: one each.",
  [-3]: "lost the race: the stock changed under WATCH, try again.",
  [-4]: "not open yet: nothing bought; wait for the opening.",
};

export const UNREACHABLE =
  "The server could not be reached: is seckill still running, and is this machine on its network?";

// Posts one purchase. Python page: xhr.open('POST', ...); xhr.send(...)
// Resolves to the HTTP status and the JSON body; rejects only when the
// server could not be reached.
export async function post(id) {
  // A relative URL, so the page works from any host name.
  const response = await fetch("seckill", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ msg: id }),
  });
  return { status: response.status, body: await readJson(response) };
}

// GETs a JSON answer of this server, the same way.
export async function get(path) {
  const response = await fetch(path, { cache: "no-store" });
  return { status: response.status, body: await readJson(response) };
}

// A proxy in the way may answer with something that is not JSON.
async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

// A sentence for an answer that carries an error instead of a response_num,
// chosen by its `cause`, which the server names for programs to test.
export function problem(status, body) {
  const said = (body.error ?? `the server answered HTTP ${status}`).replace(/\.$/, "");
  switch (body.cause) {
    case "redis":
      // The server's words say what to do; the page adds only that it recovers.
      return `Redis, where the sale is kept, is not answering, so the sale cannot go on: ${said}. ` +
        "The page recovers by itself.";
    case "no_permission":
      // Redis answers, but refuses: the teacher grants a right, then it works.
      return `Redis refuses this purchase: the server's Redis user lacks a right (${said}).`;
    case "busy":
      // Redis is healthy: the server is overloaded, and a retry may be served.
      return `The server is busy with the buyers ahead of you (${said}).`;
    case "maybe_sold":
      return `Redis did not confirm this purchase in time: it may have gone through (${said}).`;
    case "unreplicated":
      return `Sold on the Redis master, but no replica confirmed it in time: a failover could still lose it (${said}).`;
    case "no_sale":
      // The server's words say what to do, the right step first.
      return `${said.charAt(0).toUpperCase()}${said.slice(1)}.`;
    case "bad_stock":
      return `Nothing can be sold: the stock in Redis is not a whole number (${said}).`;
    case "replaced":
      return `This server's sale was replaced by a fresh one from another server (${said}).`;
    case "closing":
      return "The sale is closing: the server is stopping.";
    case "cross_site":
      // Seen from the sale's own page only behind a proxy that changes Host.
      return `The server refused it as sent from another site (${said}). ` +
        "If this is the sale's own page, a proxy in front of seckill may be changing the Host header.";
  }
  if (status >= 400 && status < 500) {
    return `The server refused it: ${said}.`;
  }
  return `The server could not answer: ${said}.`;
}
