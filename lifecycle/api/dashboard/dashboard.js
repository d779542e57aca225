// The dashboard: plain JavaScript reading the same /api it documents (works offline, no CDN).
import { cohortChart, qualityChart, trendChart } from "./charts.js";

const REFRESH_MS = 5000;
const state = { token: null, lead: null };

const params = new URLSearchParams(location.hash.slice(1));
if (params.get("token")) {
  sessionStorage.setItem("lifecycle-token", params.get("token"));
  history.replaceState(null, "", location.pathname);  // keep the token out of the address bar
}
state.token = sessionStorage.getItem("lifecycle-token");

// One prompt for all the requests that get a 401 (they wait for it together), and none again
// once a token was refused: the page says so instead of asking at every refresh.
let asking = null;
let refused = false;
function askForToken() {
  if (refused) return Promise.resolve(false);
  asking ??= new Promise((resolve) => {
    const token = prompt("This API needs its token (LIFECYCLE_API_TOKEN):");
    if (token) { state.token = token; sessionStorage.setItem("lifecycle-token", token); }
    refused = !token;  // cancelled: not again at every refresh
    resolve(Boolean(token));
  }).finally(() => { asking = null; });
  return asking;
}

async function api(path, retried = false) {
  const sent = state.token;
  const headers = sent ? { Authorization: `Bearer ${sent}` } : {};
  const response = await fetch(path, { headers });
  if (response.status === 401) {
    // A token given while this request was on its way: try that one before asking.
    if (!retried && (state.token !== sent || (await askForToken()))) return api(path, true);
    refused = true;
    sessionStorage.removeItem("lifecycle-token");
    throw new Error("This API needs its token: reload the page to give it (or open it as /#token=...).");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || body.title || response.statusText);
  return body;
}

const $ = (selector) => document.querySelector(selector);
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  for (const child of children) node.append(child instanceof Node ? child : String(child ?? ""));
  return node;
}
const money = (minor) => (minor === null || minor === undefined ? "-" : (minor / 100).toLocaleString("en", { maximumFractionDigits: 2, minimumFractionDigits: 2 }));
const percent = (rate) => (rate === null || rate === undefined ? "-" : `${(rate * 100).toFixed(1)}%`);
const when = (iso) => (iso ? iso.slice(0, 16).replace("T", " ") : "-");
// The end of an id: its start is a time (ids sort by it), the same for leads made together.
const short = (id) => `…${id.slice(-8)}`;

function leadLink(id) {
  const link = el("a", { class: "lead", "data-lead": id, title: id }, short(id));
  link.addEventListener("click", () => showLead(id));
  return link;
}

function filters() {
  const form = new FormData($("#filters"));
  const query = new URLSearchParams();
  for (const name of ["campaign", "channel"]) if (form.get(name)) query.set(name, form.get(name));
  if (form.get("from")) query.set("from", form.get("from"));
  // "to" is a day of the period (people read "Oct 1 to Oct 31" with the 31st): the API's
  // period ends before its "to", so it is asked for the day after.
  if (form.get("to")) query.set("to", dayAfter(form.get("to")));
  return query;
}

// Each cell carries its column's header: on a phone, rows are shown as "header: value" lines.
function fill(tbody, rows, classes = []) {
  const labels = [...tbody.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  tbody.replaceChildren(...rows.map((cells) => el("tr", {}, ...cells.map((cell, i) =>
    el("td", { "data-label": labels[i] ?? "", class: classes[i] ?? "" }, cell)))));
}

function dayAfter(day) {
  const next = new Date(`${day}T00:00:00Z`);
  next.setUTCDate(next.getUTCDate() + 1);
  return next.toISOString().slice(0, 10);
}

// Both days are in the period: a "to" before "from" is no period at all.
function periodProblem() {
  const form = new FormData($("#filters"));
  const [from, to] = [form.get("from"), form.get("to")];
  return from && to && to < from ? "“to” is before “from”" : null;
}

// What a card shows is the answer to the filters asked last: an answer to filters changed
// since (a refresh already on its way) is dropped, never drawn over the newer one.
const asks = {};
function ask(card) {
  const mine = (asks[card] = (asks[card] ?? 0) + 1);
  return () => mine === asks[card];
}

async function drawFunnel() {
  const latest = ask("funnel");
  const problem = periodProblem();
  if (problem) { $("#funnel").replaceChildren(el("p", { class: "error" }, problem)); return; }
  let funnel;
  try {
    funnel = await api(`/api/funnel?${filters()}`);
  } catch (error) {
    // Never the funnel of the filters before: it would pass for this one.
    if (latest()) $("#funnel").replaceChildren(el("p", { class: "error" }, error.message));
    throw error;
  }
  if (!latest()) return;
  const top = Math.max(1, ...Object.values(funnel.reached));
  const steps = { mql: "lead_to_mql", sales_ready: "mql_to_sales_ready", customer: "sales_ready_to_customer" };
  $("#funnel").replaceChildren(
    ...Object.entries(funnel.reached).map(([stage, count]) =>
      el("div", { class: "bar-row", "data-stage": stage },
        el("span", {}, stage.replace("_", " ")),
        el("div", { class: "bar", style: `width:${(100 * count) / top}%` }),
        el("span", { class: "count" }, count),
        el("span", { class: "rate" }, steps[stage] ? `${percent(funnel.conversion[steps[stage]])} from prev.` : ""))),
    el("p", { class: "rate" }, `lead → customer: ${percent(funnel.conversion.lead_to_customer)}`));
}

async function drawTemperature() {
  const answer = await api("/api/temperature");
  const total = Math.max(1, ...Object.values(answer.counts));
  $("#temperature").replaceChildren(
    ...Object.entries(answer.counts).map(([name, count]) =>
      el("div", { class: "bar-row", "data-temperature": name },
        el("span", {}, name),
        el("div", { class: `bar ${name}`, style: `width:${(100 * count) / total}%` }),
        el("span", { class: "count" }, count),
        el("span", {}, ""))));
}

async function drawCosts() {
  const by = $("#cpl-by").value;
  const model = $("#cpl-model").value;
  for (const id of ["#attribution", "#attribution-note", "#cpl-conversion"]) $(id).hidden = !model;
  $("#cpl").hidden = Boolean(model);
  if (model) return drawAttribution(by, model, $("#cpl-conversion").value);
  const latest = ask("costs");
  const answer = await api(`/api/cost-per-lead?by=${by}`);
  if (!latest()) return;
  const rows = answer.rows.map((r) => {
    const cells = [r.group, r.currency, money(r.spend_minor), r.leads, money(r.cpl), r.sqls, money(r.cost_per_sql), r.customers, money(r.revenue_minor), percent(r.roi)];
    return cells;
  });
  fill($("#cpl tbody"), rows);
  $("#cpl tbody").querySelectorAll("tr").forEach((tr, i) => tr.setAttribute("data-group", answer.rows[i].group));
}

// Conversions credited under a model, a row per group and currency: spend, cost and ROI.
async function drawAttribution(by, model, conversion) {
  const latest = ask("costs");
  const answer = await api(`/api/attribution?${new URLSearchParams({ by, model, conversion })}`);
  if (!latest()) return;
  const rows = [], groups = [];
  for (const item of answer.items) {
    const currencies = [...new Set([...Object.keys(item.spend_minor), ...Object.keys(item.revenue_minor)])].sort();
    for (const currency of currencies.length ? currencies : [""]) {
      rows.push([item.group ?? "(no campaign)", item.credit.toFixed(2), currency, money(item.spend_minor[currency]), money(item.cost_per_conversion[currency]), money(item.revenue_minor[currency]), percent(item.roi[currency])]);
      groups.push([item.group ?? "", currency]);
    }
  }
  fill($("#attribution tbody"), rows);
  $("#attribution tbody").querySelectorAll("tr").forEach((tr, i) => { tr.dataset.group = groups[i][0]; tr.dataset.currency = groups[i][1]; });
  $("#attribution-note").textContent = `${answer.conversions} ${conversion} conversions shared out by ${model.replaceAll("_", " ")}; touches up to ${answer.lookback_days} days before each conversion count.`;
}

const MODEL_COLUMNS = ["first_touch", "last_touch", "linear", "position_based", "w_shaped", "time_decay", "markov"];

async function drawModels() {
  const latest = ask("models");
  const conversion = $("#models-conversion").value;
  const answer = await api(`/api/attribution/compare?by=campaign&conversion=${conversion}`);
  if (!latest()) return;
  fill($("#models tbody"), answer.items.map((item) => [item.group ?? "(no campaign)", ...MODEL_COLUMNS.map((m) => item.credit[m].toFixed(1))]));
  $("#models tbody").querySelectorAll("tr").forEach((tr, i) => { tr.dataset.group = answer.items[i].group ?? ""; });
}

function period() {
  const query = filters();
  query.delete("campaign"); query.delete("channel");
  return query;
}

async function drawQuality() {
  const latest = ask("quality");
  const query = period();
  query.set("by", $("#quality-by").value);
  query.set("conversion", $("#quality-conversion").value);
  const [quality, cohorts] = await Promise.all([api(`/api/quality?${query}`), api(`/api/cohorts?${query}`)]);
  if (!latest()) return;
  $("#quality").replaceChildren(quality.items.length ? qualityChart(quality, $("#quality").clientWidth) : el("p", { class: "rate" }, "No leads acquired in the period."));
  $("#cohorts").replaceChildren(cohortChart(cohorts, $("#cohorts").clientWidth));
}

async function drawTrend() {
  const latest = ask("trend");
  const query = period();
  const conversion = $("#quality-conversion").value;
  query.set("conversion", conversion);
  const answer = await api(`/api/trend?${query}`);
  if (!latest()) return;
  $("#trend-conversion").textContent = conversion;
  $("#trend").replaceChildren(trendChart(answer, $("#trend").clientWidth));
}

// The filters offer every campaign and channel the data has, whatever the cost table shows.
async function drawChoices() {
  const groups = await api("/api/groups");
  offerChoices("campaign", groups.campaigns);
  offerChoices("channel", groups.channels);
}

function offerChoices(name, values) {
  const select = $(`#filters select[name=${name}]`);
  const known = new Set([...select.options].map((o) => o.value));
  for (const value of [...new Set(values)].sort()) if (value && !known.has(value)) select.append(el("option", { value }, value));
}

async function drawHot() {
  const query = filters();
  query.delete("from"); query.delete("to");
  query.set("temperature", "hot"); query.set("limit", "10");
  const latest = ask("hot");
  const page = await api(`/api/leads?${query}`);
  if (!latest()) return;
  fill($("#hot tbody"), page.leads.map((l) => [leadLink(l.lead_id), l.stage, l.score.toFixed(1), when(l.hot_until)]));
}

async function drawSla() {
  const answer = await api("/api/sla");
  $("#sla-rule").textContent = `${answer.breaches.length} not contacted within ${answer.within_hours} h`;
  fill($("#sla tbody"), answer.breaches.slice(-10).reverse().map((b) => [leadLink(b.lead_id), b.stage, when(b.sales_ready_at), when(b.first_sales_touch_at)]));
}

// What the engine just decided (lead.lifecycle's changes, as /api/changes gives them).
function happened(change) {
  const d = change.data;
  if (change.type === "StageChanged") return d.from ? `${d.from} → ${d.to}` : `new ${d.to}`;
  if (change.type === "TemperatureChanged") {
    const cooled = ["hot", "warm", "cold"].indexOf(d.to) > ["hot", "warm", "cold"].indexOf(d.from);
    return d.from === null ? `new, ${d.to}` : cooled ? `cooled down to ${d.to}` : `went ${d.to}`;
  }
  if (change.type === "HandoffOverdue") return `overdue hand-off (${d.stage}, ${d.hours} h)`;
  if (change.type === "HandoffOverdueWithdrawn") return `hand-off was in time after all (${d.stage})`;
  if (change.type === "Erased") return "forgotten: erase it downstream too";
  return `merged ${d.merged_lead_ids.length} lead(s) into it`;
}

async function drawChanges() {
  const page = await api("/api/changes?last=12");
  fill($("#changes tbody"), page.changes.map((c) => [when(c.data.at), leadLink(c.data.lead_id), happened(c)]));
}

async function showLead(reference) {
  state.lead = reference;
  const box = $("#lead");
  try {
    const ref = (reference ?? "").trim();
    if (!ref) { box.replaceChildren(el("p", { class: "error" }, "Type an e-mail, a phone or a lead id.")); return; }
    const isId = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(ref);
    if (!isId && /^[….]*[0-9a-f-]{4,35}$/i.test(ref) && /[a-f]/i.test(ref)) {
      box.replaceChildren(el("p", { class: "error" }, "That is part of a lead id: click a short id to open its lead, or give the whole id (36 characters)."));
      return;
    }
    const [kind, ...rest] = ref.split(":");
    const identity = rest.length ? `${kind.trim().toLowerCase()}:${rest.join(":")}`
      : ref.includes("@") ? `email:${ref}` : `phone:${ref}`;
    const lead = await api(isId ? `/api/leads/${ref.toLowerCase()}` : `/api/leads?identity=${encodeURIComponent(identity)}`);
    const timeline = await api(`/api/leads/${lead.lead_id}/timeline`);
    const summary = el("table", { id: "lead-summary" });
    for (const [name, value] of [
      ["lead", lead.lead_id], ["stage", lead.stage], ["temperature", lead.temperature],
      ["score", `${lead.score.total} = fit ${lead.score.fit} + engagement ${lead.score.engagement}`],
      ["acquired by", `${lead.acquisition.campaign ?? "-"} (${lead.acquisition.channel ?? "-"})`],
      ["revenue", Object.entries(lead.revenue_minor).map(([c, v]) => `${money(v)} ${c}`).join(", ") || "-"],
    ]) summary.append(el("tr", {}, el("th", {}, name), el("td", { "data-field": name }, value)));
    const body = el("tbody");
    const entries = el("table", { id: "timeline", class: "many" }, el("thead", {}, el("tr", {}, ...["at", "what", "campaign", "detail", "moved to"].map((h) => el("th", {}, h)))), body);
    fill(body, timeline.entries.map((e) => [when(e.at), e.what, e.campaign ?? "", e.detail ?? "", e.moved_to ?? ""]),
      ["", "free", "", "free", "moved"]);
    box.replaceChildren(summary, el("p", { class: "why", id: "why" }, timeline.why), entries);
  } catch (error) {
    box.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

async function refresh() {
  try {
    await Promise.all([drawFunnel(), drawTemperature(), drawCosts(), drawModels(), drawQuality(), drawTrend(), drawChoices(), drawHot(), drawSla(), drawChanges()]);
    $("#status").textContent = `updated ${new Date().toLocaleTimeString()}`;
    $("#status").className = "";
    document.body.dataset.loaded = "true";
  } catch (error) {
    $("#status").textContent = error.message;
    $("#status").className = "error";
  }
}

$("#filters").addEventListener("change", refresh);
// Dates typed with the keyboard change the period before the field loses focus.
$("#filters").addEventListener("input", () => { if (periodProblem()) drawFunnel(); });
$("#cpl-by").addEventListener("change", drawCosts);
$("#cpl-model").addEventListener("change", drawCosts);
$("#cpl-conversion").addEventListener("change", drawCosts);
$("#models-conversion").addEventListener("change", drawModels);
$("#quality-by").addEventListener("change", drawQuality);
$("#quality-conversion").addEventListener("change", () => Promise.all([drawQuality(), drawTrend()]));
$("#search").addEventListener("submit", (event) => { event.preventDefault(); showLead(new FormData(event.target).get("q")); });
refresh();
setInterval(refresh, REFRESH_MS);
