// xsearch web page: plain JS, no build step, no network beyond this server's /api.
"use strict";

const RTL = new Set(["Arab", "Hebr", "Syrc", "Thaa", "Nkoo", "Adlm"]);
// ISO 639-3 codes of the index -> the BCP 47 tags browsers pick fonts and line breaking by.
const TWO = { eng: "en", fra: "fr", deu: "de", spa: "es", por: "pt", ita: "it", rus: "ru",
  ukr: "uk", pol: "pl", tur: "tr", arb: "ar", ara: "ar", heb: "he", pes: "fa", fas: "fa",
  urd: "ur", hin: "hi", ben: "bn", tam: "ta", npi: "ne", zho: "zh", jpn: "ja", kor: "ko",
  tha: "th", vie: "vi", ind: "id", swh: "sw", amh: "am", tir: "ti", yor: "yo", hau: "ha" };

const MAX_K = 100;  // the most hits the API gives (api_models.MAX_K)
const $ = (sel) => document.querySelector(sel);
const main = () => $("#main");

function el(tag, attrs = {}, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined) continue;
    node.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return node;
}

function script(lang) { return lang && lang.includes("_") ? lang.split("_").pop() : null; }
function dirOf(lang) { return RTL.has(script(lang)) ? "rtl" : "auto"; }
function bcp47(lang) {
  if (!lang) return null;
  const [code, scr] = lang.split("_");
  return (TWO[code] || code) + (scr ? "-" + scr : "");
}
// Attributes that make text in a language render right: direction, fonts, line breaking.
function langAttrs(lang, cls) {
  const s = script(lang);
  return { lang: bcp47(lang), dir: dirOf(lang), class: [cls, s ? "script-" + s : ""].join(" ").trim() };
}

async function api(path, opts) {
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {  // the browser's own words ("Failed to fetch") say nothing of the cause
    throw new Error("the xsearch server does not answer (stopped, or the network is down); " +
                    "start it again with: xsearch serve");
  }
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (!res.ok) throw new Error((body && body.error) || res.status + " " + res.statusText);
  return body;
}

// Bumped on every navigation: an answer that arrives after the user moved on is dropped.
let routeSeq = 0;
function stale(seq) { return seq !== routeSeq; }

function setStatus(msg) { $("#status").textContent = msg || ""; }

// -- highlighting -----------------------------------------------------------------------

const LETTER = /[\p{L}\p{M}\p{N}]/u;
// Scripts written without spaces: a query word may sit inside a longer run of letters.
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}]/u;

// Fallback when the hit has no offsets: whole query words found in the snippet.
function queryRanges(text, query) {
  const low = text.toLocaleLowerCase();
  const words = query.toLocaleLowerCase().split(/[\s\p{P}\p{S}]+/u)
    .filter((w) => w.length > 2 || (w.length > 1 && UNSPACED.test(w)));
  const out = [];
  for (const w of new Set(words)) {
    const inner = UNSPACED.test(w);
    let at = low.indexOf(w);
    while (at !== -1) {
      const end = at + w.length;
      const bounded = !LETTER.test(low[at - 1] || "") && !LETTER.test(low[end] || "");
      if (inner || bounded) out.push([at, end]);
      at = low.indexOf(w, end);
    }
  }
  return out;
}

function highlighted(text, ranges) {
  const frag = document.createDocumentFragment();
  const sorted = ranges.filter((r) => r[1] > r[0]).sort((a, b) => a[0] - b[0]);
  let pos = 0;
  for (const [s, e] of sorted) {
    const start = Math.max(s, pos), end = Math.min(e, text.length);
    if (end <= start) continue;
    frag.append(text.slice(pos, start), el("mark", { text: text.slice(start, end) }));
    pos = end;
  }
  frag.append(text.slice(pos));
  return frag;
}

// The API counts offsets in code points (Python's); a JS string in UTF-16 units, two for an
// emoji or a rare CJK character.
function toUnits(text, ranges) {
  const at = [0];
  for (const ch of text) at.push(at[at.length - 1] + ch.length);
  const unit = (i) => at[Math.min(Math.max(i, 0), at.length - 1)];
  return ranges.map(([s, e]) => [unit(s), unit(e)]);
}

function hitRanges(hit, query) {
  if (Array.isArray(hit.highlights) && hit.highlights.length) {
    return toUnits(hit.snippet || "", hit.highlights);
  }
  return queryRanges(hit.snippet || "", query || "");
}

// -- views ------------------------------------------------------------------------------

function fileName(hit) {
  const base = (hit.path || "").split("/").pop();
  return base + (hit.record_id ? "#" + hit.record_id : "");
}

// At or below 0 a hit is no closer to the query than an average passage of its language: with a
// language filter or few on-topic passages these fill the list, and are shown as such.
function isWeak(hit) { return typeof hit.relevance === "number" && hit.relevance <= 0; }

function hitItem(hit, query, markWeak = false) {
  const weak = markWeak && isWeak(hit);
  return el("li", { class: "hit" + (weak ? " weak" : ""), "data-lang": hit.language,
    "data-relevance": hit.relevance },
    el("article", {},
      el("h3", langAttrs(hit.language),
        el("a", { href: "#/passage/" + hit.passage_id, class: "open" },
          hit.title || fileName(hit))),
      el("div", { class: "meta" },
        el("span", { class: "badge lang", title: "language_script" }, hit.language || "?"),
        el("span", { class: "badge" }, (script(hit.language) || "?") + " script"),
        el("span", { class: "score", title: "relevance: standard deviations above this " +
          "query's scores over the passages of the hit's language; cosine similarity" },
          Number(hit.relevance).toFixed(1) + "σ · cos " + Number(hit.cosine).toFixed(3)),
        weak ? el("span", { class: "badge weak-note" }, "no closer than its language's average")
          : null,
        el("span", { class: "path", title: hit.path }, fileName(hit) +
          " · chars " + hit.char_start + "–" + hit.char_end),
        hit.topic ? el("span", { class: "badge" }, hit.topic) : null),
      el("p", langAttrs(hit.language, "text snippet"),
        highlighted(hit.snippet || "", hitRanges(hit, query)))));
}

// Read again for every search: another `xsearch index` may have added or removed languages.
async function renderFacets(selected, seq) {
  const rows = await api("/api/languages");
  if (stale(seq)) return;
  // A link's short code (lang=fra, as the API takes it) ticks the languages it names
  // (fra_Latn); a language asked for that the index no longer holds stays listed, so it can
  // be unticked.
  const ticked = new Set();
  for (const lang of selected) {
    const code = lang.toLowerCase();
    const named = rows.filter((r) => r.language === lang ||
      (r.language && r.language.split("_")[0].toLowerCase() === code));
    for (const r of named) ticked.add(r.language);
    if (!named.length) {
      rows.push({ language: lang, passages: 0 });
      ticked.add(lang);
    }
  }
  const box = $("#langs");
  box.replaceChildren(el("legend", { class: "sr-only" }, "Filter by language"));
  for (const row of rows) {
    const id = "lang-" + row.language;
    box.append(el("div", { class: "facet" },
      el("input", { type: "checkbox", id, value: row.language,
        checked: ticked.has(row.language), onchange: facetChanged }),
      el("label", { for: id }, row.language),
      el("span", { class: "n", title: "passages" }, row.passages.toLocaleString())));
  }
}

// A link may ask for any number of hits the API gives (1 to 100), not only the ones the list
// offers; anything else is left out.
function setK(value) {
  const select = $("#k");
  if (!/^[0-9]+$/.test(value) || Number(value) < 1 || Number(value) > MAX_K) return;
  value = String(Number(value));
  if (![...select.options].some((o) => o.value === value)) {
    const n = Number(value);
    const after = [...select.options].find((o) => Number(o.value) > n);
    select.insertBefore(el("option", {}, value), after || null);
  }
  select.value = value;
}

function currentParams() {
  const hash = location.hash.replace(/^#/, "");
  const q = hash.indexOf("?");
  return new URLSearchParams(q === -1 ? "" : hash.slice(q + 1));
}

function go(params) { location.hash = "#/?" + params.toString(); }

function facetChanged() {
  const p = currentParams();
  p.delete("lang");
  for (const box of document.querySelectorAll("#langs input:checked")) p.append("lang", box.value);
  p.set("q", $("#q").value.trim());
  p.set("k", $("#k").value);
  if (p.get("q")) go(p);
}

async function searchView(params, seq) {
  const q = params.get("q") || "";
  const langs = params.getAll("lang");
  $("#q").value = q;
  if (params.get("k")) setK(params.get("k"));
  await renderFacets(langs, seq).catch((e) => setStatus(e.message));
  if (stale(seq)) return;
  const out = main();
  if (!q) {
    out.replaceChildren(el("p", { class: "empty" },
      "Type a question in any language and press Enter: hits come from every language."));
    return;
  }
  const url = new URLSearchParams({ q, k: $("#k").value });  // setK left out a bad one
  for (const l of langs) url.append("lang", l);
  setStatus("searching…");
  try {
    const res = await api("/api/search?" + url);
    if (stale(seq)) return;  // the user moved on meanwhile
    // The languages the link's names stand for (lang=fr, lang=Hindi): those are ticked.
    if (res.lang) await renderFacets(res.lang, seq).catch(() => {});
    if (stale(seq)) return;
    const nl = Object.keys(res.languages).length;
    const weak = res.hits.filter(isWeak).length;
    setStatus(res.hits.length + (res.hits.length === 1 ? " hit" : " hits") + " in " + nl +
      (nl === 1 ? " language" : " languages") +
      (weak ? " (" + weak + " no closer than an average passage of their language)" : ""));
    out.replaceChildren(
      el("h2", { class: "sr-only" }, "Results"),
      res.hits.length ? el("ol", { class: "hits" }, res.hits.map((h) => hitItem(h, q, true)))
        : el("p", { class: "empty" }, "No hits."));
  } catch (e) {
    if (stale(seq)) return;
    setStatus("");
    out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

function passageBlock(p, current) {
  return el("section", { class: "passage" + (current ? " current" : ""), id: "p" + p.passage_id,
    "aria-current": current ? "true" : null },
    el("div", { class: "ord" }, "passage " + (p.ordinal + 1) + " · chars " + p.char_start + "–" +
      p.char_end),
    el("p", langAttrs(p.language, "text"), p.text));
}

async function passageView(id, seq) {
  const out = main();
  setStatus("loading…");
  try {
    const p = await api("/api/passages/" + id + "?neighbours=2");
    if (stale(seq)) return;
    const doc = el("div", { class: "doc" },
      p.before.map((x) => passageBlock(x, false)), passageBlock(p, true),
      p.after.map((x) => passageBlock(x, false)));
    const others = el("section", { class: "others", "aria-labelledby": "others-title" },
      el("h2", { id: "others-title" }, "This passage in other languages"),
      el("p", { class: "empty" }, "looking…"));
    out.replaceChildren(
      el("p", {}, el("button", { type: "button", class: "back",
        onclick: () => history.back() }, "← Back")),
      el("h2", langAttrs(p.language), p.title || fileName(p)),
      el("div", { class: "meta" }, el("span", { class: "badge lang" }, p.language),
        el("span", { class: "path" }, p.path + (p.record_id ? "#" + p.record_id : "")),
        el("a", { href: "#/document/" + p.document_id }, "whole document")),
      doc, others);
    setStatus("");
    $("#p" + p.passage_id).scrollIntoView({ block: "center" });
    const tr = await api("/api/passages/" + id + "/translations?k=1");
    if (stale(seq)) return;
    const list = el("ol", { class: "hits" });
    for (const g of tr.groups) for (const h of g.hits) list.append(hitItem(h, ""));
    others.replaceChildren(others.firstChild,
      tr.groups.length ? list : el("p", { class: "empty" }, "No other languages indexed."));
  } catch (e) {
    setStatus("");
    out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

async function documentView(id, seq) {
  const out = main();
  try {
    const d = await api("/api/documents/" + id);
    if (stale(seq)) return;
    out.replaceChildren(
      el("h2", langAttrs(d.language), d.title || fileName(d)),
      el("div", { class: "meta" }, el("span", { class: "badge lang" }, d.language || "?"),
        el("span", { class: "path" }, d.path),
        d.n_passages + (d.n_passages === 1 ? " passage" : " passages")),
      el("div", { class: "doc" }, d.passages.map((p) => el("div", {},
        el("a", { href: "#/passage/" + p.passage_id }, "open passage " + (p.ordinal + 1)),
        passageBlock(p, false)))));
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

function heatColour(v) {
  if (v === null || v === undefined) return "#e5e7eb";
  // red (0) -> yellow (0.5) -> green (1)
  const hue = Math.round(Math.max(0, Math.min(1, v)) * 120);
  return "hsl(" + hue + " 70% " + (v < 0.5 ? 62 : 72) + "%)";
}

async function benchView(params, seq) {
  const out = main();
  const metric = params.get("metric") || "recall@1";
  const query = new URLSearchParams({ metric });
  if (params.get("run")) query.set("run", params.get("run"));
  try {
    const b = await api("/api/bench?" + query);
    if (stale(seq)) return;
    const pick = () => {
      location.hash = "#/bench?" + new URLSearchParams({ metric: $("#metric").value,
        run: $("#run").value });
    };
    const select = el("select", { id: "metric", onchange: pick },
      b.metrics.map((m) => el("option", { selected: m === metric }, m)));
    const runs = el("select", { id: "run", onchange: pick },
      b.runs.map((r) => el("option", { selected: r === b.run }, r)));
    const head = el("tr", {}, el("th", { scope: "col" }, "query ↓ / doc →"),
      b.document_languages.map((d) => el("th", { scope: "col" }, d)));
    const rows = b.query_languages.map((q, i) => el("tr", {},
      el("th", { scope: "row" }, q),
      b.matrix[i].map((v, j) => el("td", { style: "background:" + heatColour(v),
        title: q + " → " + b.document_languages[j] + ": " + (v ?? "n/a") },
        v === null ? "–" : (v * 100).toFixed(0)))));
    out.replaceChildren(
      el("h2", {}, "Benchmark: " + b.run),
      el("p", {}, "Model " + b.model + " on " + b.dataset + ". Mean " + metric + ": " +
        (b.mean === null || b.mean === undefined ? "n/a" : b.mean.toFixed(3)) +
        ". Cells are percentages; rows are query languages, columns document languages."),
      el("p", {}, el("label", { for: "run" }, "Run "), runs, " ",
        el("label", { for: "metric" }, "Metric "), select),
      el("div", { class: "heat-wrap" }, el("table", { class: "heat" },
        el("caption", {}, metric + " per language pair"), el("thead", {}, head),
        el("tbody", {}, rows))));
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

async function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  if (!hash.startsWith("/")) return;  // an in-page anchor (#main), not a view
  const seq = ++routeSeq;
  const facets = $("#facets");
  let m;
  const wide = !/^\/(\?|$)/.test(hash);
  setStatus("");
  $(".layout").classList.toggle("wide", wide);
  if ((m = hash.match(/^\/passage\/(\d+)/))) { facets.hidden = true; await passageView(m[1], seq); }
  else if ((m = hash.match(/^\/document\/(\d+)/))) { facets.hidden = true; await documentView(m[1], seq); }
  else if (hash.startsWith("/bench")) { facets.hidden = true; await benchView(currentParams(), seq); }
  else { facets.hidden = false; await searchView(currentParams(), seq); }
  document.body.dataset.routed = String(Number(document.body.dataset.routed || 0) + 1);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    p.set("q", $("#q").value.trim());
    p.set("k", $("#k").value);
    for (const box of document.querySelectorAll("#langs input:checked")) p.append("lang", box.value);
    if (!p.get("q")) return;
    if ("#/?" + p.toString() === location.hash) route(); else go(p);
  });
  $("#clear-langs").addEventListener("click", () => {
    for (const box of document.querySelectorAll("#langs input:checked")) box.checked = false;
    facetChanged();
  });
  // "Skip to results" moves the focus; following its #main would leave the current view.
  $(".skip").addEventListener("click", (ev) => { ev.preventDefault(); main().focus(); });
  window.addEventListener("hashchange", route);
  route();
});
