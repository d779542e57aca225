// The dashboard's charts: plain SVG drawn here (no library, no CDN). Each mark carries the
// numbers it stands for in data- attributes and a <title>, so that what is drawn can be checked.

const SVG = "http://www.w3.org/2000/svg";
const PALETTE = ["#2f6fdf", "#d9480f", "#2b8a3e", "#ae3ec9", "#f59f00", "#0c8599", "#e64980", "#5c940d", "#495057", "#1864ab", "#a61e4d", "#862e9c"];

function svg(tag, attributes = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

const pct = (share) => `${(share * 100).toFixed(1)}%`;
// Charts are drawn at the width of their card, so that 12 px of text stays 12 px on a phone.
const MIN_WIDTH = 300;
// About how wide a character of the chart's text is, to cut a long name where it would not fit.
const CHARACTER = 6.6;
const label = (group) => group ?? "(no campaign)";

// One colour per name, the same in every chart of a refresh (names sorted first).
function colours(names) {
  const sorted = [...new Set(names.map(label))].sort();
  return Object.fromEntries(sorted.map((name, i) => [name, PALETTE[i % PALETTE.length]]));
}

function legend(entries) {
  const list = document.createElement("ul");
  list.className = "legend";
  for (const [name, colour, note] of entries) {
    const item = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    item.append(swatch, ` ${name}${note ? ` ${note}` : ""}`);
    list.append(item);
  }
  return list;
}

// Conversion rate per source, its 95% Wilson interval as an error bar, and everyone's rate as
// a dashed line.
export function qualityChart(answer, width = 760) {
  width = Math.max(MIN_WIDTH, width);
  const rowHeight = 26, right = 92, left = Math.min(230, Math.round(width * 0.4));
  const fits = Math.floor((left - 10) / CHARACTER);
  const short = (name) => (name.length > fits ? `${name.slice(0, fits - 1)}…` : name);
  const items = answer.items.filter((i) => i.leads > 0);
  const height = rowHeight * items.length + 34;
  const top = Math.max(0.05, ...items.map((i) => i.high ?? 0));
  const x = (share) => left + (share / top) * (width - left - right);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": "conversion rate per source" });
  const overall = answer.leads ? answer.conversions / answer.leads : 0;
  chart.append(svg("line", { class: "overall", x1: x(overall), x2: x(overall), y1: 0, y2: height - 24, "data-rate": overall },
    svg("title", {}, `all leads: ${pct(overall)}`)));
  for (const tick of [0, top / 2, top]) {
    chart.append(svg("text", { x: x(tick), y: height - 6, class: "tick", "text-anchor": "middle" }, pct(tick)));
  }
  items.forEach((item, row) => {
    const y = row * rowHeight + 14;
    const mark = svg("g", {
      class: `source ${item.verdict}`, "data-group": item.group ?? "", "data-rate": item.rate,
      "data-low": item.low, "data-high": item.high, "data-leads": item.leads, "data-verdict": item.verdict,
    });
    mark.append(
      svg("title", {}, `${label(item.group)}: ${pct(item.rate)} (95% ${pct(item.low)}–${pct(item.high)}), ${item.conversions} of ${item.leads} leads, ${item.verdict.replaceAll("_", " ")}`),
      svg("text", { x: left - 8, y: y + 4, "text-anchor": "end", class: "name" }, short(label(item.group))),
      svg("line", { class: "interval", x1: x(item.low), x2: x(item.high), y1: y, y2: y }),
      svg("line", { class: "whisker", x1: x(item.low), x2: x(item.low), y1: y - 5, y2: y + 5 }),
      svg("line", { class: "whisker", x1: x(item.high), x2: x(item.high), y1: y - 5, y2: y + 5 }),
      svg("circle", { class: "rate", cx: x(item.rate), cy: y, r: 4 }),
      svg("text", { x: width - right + 8, y: y + 4, class: "value" }, `${pct(item.rate)} (${item.leads})`),
    );
    chart.append(mark);
  });
  return chart;
}

// Kaplan-Meier curves: the share converted by day d after acquisition, one step line a source.
export function cohortChart(answer, width = 760) {
  width = Math.max(MIN_WIDTH, width);
  const height = Math.round(Math.min(260, width * 0.55)), left = 46, bottom = 26, top = 8, right = 12;
  const items = answer.items.filter((i) => i.curve.length);
  const lastDay = Math.max(1, ...items.map((i) => i.curve.at(-1).day));
  const x = (day) => left + (day / lastDay) * (width - left - right);
  const y = (share) => top + (1 - share) * (height - top - bottom);
  const colour = colours(answer.items.map((i) => i.group));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": "cohort curves" });
  for (const share of [0, 0.5, 1]) {
    chart.append(svg("line", { class: "grid", x1: left, x2: width - right, y1: y(share), y2: y(share) }),
      svg("text", { x: left - 6, y: y(share) + 4, "text-anchor": "end", class: "tick" }, `${share * 100}%`));
  }
  chart.append(svg("text", { x: width - right, y: height - 6, "text-anchor": "end", class: "tick" }, `day ${lastDay}`),
    svg("text", { x: left, y: height - 6, class: "tick" }, "day 0"));
  for (const item of items) {
    let d = `M ${x(0)} ${y(0)}`;
    for (const point of item.curve) d += ` H ${x(point.day)} V ${y(point.share)}`;
    const points = item.curve.map((p) => `${p.day}:${p.share}`).join(" ");
    chart.append(svg("path", { class: "curve", d, stroke: colour[label(item.group)], "data-group": item.group ?? "", "data-points": points, "data-median": item.median_days ?? "" },
      svg("title", {}, `${label(item.group)}: ${pct(item.curve.at(-1).share)} by day ${item.curve.at(-1).day}`)));
  }
  const box = document.createElement("div");
  box.append(chart, legend(items.map((i) => [label(i.group), colour[label(i.group)], i.median_days === null ? "(median not reached)" : `(median ${i.median_days} d)`])));
  return box;
}

// New leads and conversions per week, stacked by channel: two bars a week.
export function trendChart(answer, width = 760) {
  width = Math.max(MIN_WIDTH, width);
  const height = Math.round(Math.min(240, width * 0.55)), left = 40, bottom = 28, top = 8;
  const weeks = [...new Set(answer.weeks.map((w) => w.week))].sort();
  const channels = [...new Set(answer.weeks.map((w) => w.channel))].sort();
  const colour = colours(channels);
  const totals = {};
  for (const w of answer.weeks) {
    totals[`leads ${w.week}`] = (totals[`leads ${w.week}`] ?? 0) + w.leads;
    totals[`conversions ${w.week}`] = (totals[`conversions ${w.week}`] ?? 0) + w.conversions;
  }
  const most = Math.max(1, ...Object.values(totals));
  const slot = (width - left) / Math.max(1, weeks.length);
  const bar = Math.max(2, slot * 0.38);
  const scale = (n) => (n / most) * (height - top - bottom);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": "weekly trend" });
  chart.append(svg("text", { x: left - 6, y: top + 10, "text-anchor": "end", class: "tick" }, most),
    svg("text", { x: left - 6, y: height - bottom, "text-anchor": "end", class: "tick" }, 0));
  weeks.forEach((week, i) => {
    for (const [kind, offset] of [["leads", 0], ["conversions", bar + 2]]) {
      let base = height - bottom;
      for (const channel of channels) {
        const found = answer.weeks.find((w) => w.week === week && w.channel === channel);
        const count = found ? found[kind] : 0;
        if (!count) continue;
        const h = scale(count);
        base -= h;
        chart.append(svg("rect", { class: kind, x: left + i * slot + offset, y: base, width: bar, height: h, fill: colour[channel], "data-week": week, "data-channel": channel, "data-kind": kind, "data-count": count },
          svg("title", {}, `week of ${week}, ${channel}: ${count} ${kind === "leads" ? "new leads" : "conversions"}`)));
      }
    }
    if (i % Math.ceil(weeks.length / Math.max(2, Math.floor(width / 90))) === 0) chart.append(svg("text", { x: left + i * slot, y: height - 8, class: "tick" }, week.slice(5)));
  });
  const box = document.createElement("div");
  box.append(chart, legend(channels.map((c) => [c, colour[c], ""])));
  const note = document.createElement("p");
  note.className = "rate";
  note.textContent = "Each week: new leads (left bar) and conversions (right bar, paler), by channel.";
  box.append(note);
  return box;
}
