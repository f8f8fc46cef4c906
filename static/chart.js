// The sale on a canvas: stock left falling from the initial stock, and
// conflicts (lost races) climbing. The time axis follows the sale: it starts
// just before the figures began to move, at most a minute ago, and shows at
// least four seconds (eight samples), so a sale of a few seconds fills the width.
const WINDOW_MS = 60_000;
const SHORTEST_MS = 4_000;
const STOCK_COLOUR = "#1f6fd6";
const CONFLICTS_COLOUR = "#d65f00";

export class Chart {
  constructor(canvas) {
    this.canvas = canvas;
    this.points = [];
  }

  // Keeps a sample of /seckill/stats taken at `time` (ms) and redraws.
  add(time, stats) {
    this.points.push({ time, initial: stats.initial_stock, stock: stats.remaining, conflicts: stats.conflicts });
    while (this.points.length > 0 && this.points[0].time < time - WINDOW_MS) {
      this.points.shift();
    }
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    // Sharp on any screen: as many canvas pixels as device pixels.
    const ratio = window.devicePixelRatio || 1;
    const width = Math.round(canvas.clientWidth * ratio) || canvas.width;
    const height = Math.round(width * 0.34);
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    const pad = 6 * ratio;
    const font = 11 * ratio;
    ctx.font = `${font}px system-ui, sans-serif`;
    ctx.fillStyle = "#555";
    const now = this.points.length > 0 ? this.points[this.points.length - 1].time : 0;
    const span = this.span(now);
    ctx.fillText(`${Math.round(span / 1000)} s ago`, pad, height - pad);
    ctx.textAlign = "right";
    ctx.fillText("now", width - pad, height - pad);
    ctx.textAlign = "left";
    if (this.points.length === 0) {
      return;
    }
    const top = font + 2 * pad;
    const bottom = height - font - 2 * pad;
    const x = (time) => pad + (width - 2 * pad) * Math.max(0, 1 - (now - time) / span);
    // A share of the height, 0 at the bottom; naive's oversold stock stays on the axis.
    const y = (share) => bottom - (bottom - top) * Math.min(1, Math.max(0, share));
    const initial = Math.max(1, this.points[this.points.length - 1].initial);
    const mostConflicts = Math.max(1, ...this.points.map((p) => p.conflicts));
    this.line((p) => p.stock / initial, STOCK_COLOUR, ctx, x, y, ratio);
    this.line((p) => p.conflicts / mostConflicts, CONFLICTS_COLOUR, ctx, x, y, ratio);
    ctx.fillStyle = STOCK_COLOUR;
    ctx.fillText(`stock ${this.points[this.points.length - 1].stock} of ${initial}`, pad, font + pad);
    ctx.fillStyle = CONFLICTS_COLOUR;
    ctx.textAlign = "right";
    ctx.fillText(`conflicts ${this.points[this.points.length - 1].conflicts}`, width - pad, font + pad);
    ctx.textAlign = "left";
  }

  // How much time the axis shows: from the last sample before the figures
  // first moved, within the last minute, and at least SHORTEST_MS.
  span(now) {
    const first = this.points[0];
    const moved = this.points.findIndex((p) => p.stock !== first.stock || p.conflicts !== first.conflicts);
    const start = moved > 0 ? this.points[moved - 1].time : now;
    return Math.min(WINDOW_MS, Math.max(SHORTEST_MS, now - start));
  }

  line(share, colour, ctx, x, y, ratio) {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2 * ratio;
    ctx.beginPath();
    this.points.forEach((p, i) => {
      const to = i === 0 ? ctx.moveTo : ctx.lineTo;
      to.call(ctx, x(p.time), y(share(p)));
    });
    ctx.stroke();
  }
}
