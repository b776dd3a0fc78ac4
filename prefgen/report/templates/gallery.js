// The gallery of pairs: filter, sort and page the rows embedded as JSON. Text from the data is only ever set with
// textContent (never parsed as HTML), so an answer holding markup is shown as text.
(function () {
  "use strict";
  var byId = function (id) { return document.getElementById(id); };
  var rows = JSON.parse(byId("pairs-data").textContent);
  var thumbs = JSON.parse(byId("thumbs-data").textContent);
  var pageSize = JSON.parse(byId("gallery-config").textContent).pageSize;
  var state = { text: "", method: "", source: "", margin: null, sort: "m-desc", page: 0 };
  var visible = rows;
  rows.forEach(function (row, i) {
    row._i = i;
    // An answer scored sentence by sentence is stored once, as its sentences.
    if (row.c === undefined) row.c = (row.csn || []).map(function (s) { return s[0]; }).join(" ");
    if (row.r === undefined) row.r = (row.rsn || []).map(function (s) { return s[0]; }).join(" ");
  });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fmt(value, digits) {
    if (value === null || value === undefined) return "-";
    var abs = Math.abs(value);
    return abs !== 0 && (abs >= 1e4 || abs < 1e-3) ? value.toExponential(2)
      : String(Number(value.toPrecision(digits || 4)));
  }
  function haystack(row) {
    if (row._h === undefined) row._h = [row.id, row.q, row.c, row.r].join("\n").toLowerCase();
    return row._h;
  }
  function compare(key, descending) {
    return function (a, b) {
      var x = a[key], y = b[key];
      if (x === undefined || x === null) return (y === undefined || y === null) ? a._i - b._i : 1;
      if (y === undefined || y === null) return -1;
      return (descending ? y - x : x - y) || a._i - b._i;
    };
  }

  function image(index, label) {
    var figure = el("figure");
    var img = el("img", "thumb");
    img.src = "data:image/jpeg;base64," + thumbs[index];
    img.alt = label;
    img.title = label;
    figure.append(img, el("figcaption", null, label));
    return figure;
  }

  function sentenceScores(scores, digits) {
    return Object.keys(scores).map(function (k) { return k + " " + fmt(scores[k], digits); }).join(" · ");
  }

  function answerText(text, sentences, shading) {
    var body = el("p", "text");
    if (!sentences || !sentences.length) {
      body.textContent = text;
      return body;
    }
    sentences.forEach(function (pair, i) {
      var scores = pair[1] || {};
      var span = el("span", "sent", pair[0]);
      var value = scores[shading.key];
      if (value !== undefined && shading.high > shading.low) {
        var alpha = 0.08 + 0.42 * (value - shading.low) / (shading.high - shading.low);
        span.style.backgroundColor = "rgba(70, 110, 190, " + alpha.toFixed(3) + ")";
      }
      span.title = sentenceScores(scores);
      body.append(span, el("span", "sent-scores", sentenceScores(scores, 3)));
      if (i < sentences.length - 1) body.append(document.createTextNode(" "));
    });
    return body;
  }

  function answer(kind, text, score, extra, sentences, shading) {
    var box = el("div", "answer " + kind);
    var head = el("div", "answer-head");
    head.append(el("span", "label", kind));
    if (score !== undefined) head.append(el("span", "score", "score " + fmt(score)));
    Object.keys(extra || {}).forEach(function (name) { head.append(el("span", "chip", name + " " + fmt(extra[name]))); });
    box.append(head, answerText(text, sentences, shading));
    return box;
  }

  // Sentence shading: darker = higher reward (CSR's) or CLIP score, on one scale for both answers of a pair.
  function shadingFor(row) {
    var sentences = (row.csn || []).concat(row.rsn || []);
    var key = sentences.some(function (s) { return s[1] && s[1].reward !== undefined; }) ? "reward" : "clip";
    var values = sentences.map(function (s) { return s[1] ? s[1][key] : undefined; })
      .filter(function (v) { return typeof v === "number"; });
    return { key: key, low: Math.min.apply(null, values), high: Math.max.apply(null, values) };
  }

  function card(row) {
    var article = el("article", "pair");
    article.dataset.id = row.id || "";
    var pics = el("div", "pics");
    if (row.t !== undefined) pics.append(image(row.t, "image"));
    if (row.ct !== undefined) pics.append(image(row.ct, "corrupted: " + (row.cd || "")));
    else if (row.cd) pics.append(el("div", "note", (row.cn || "corrupted image not shown") + " (" + row.cd + ")"));
    var main = el("div");
    main.append(el("p", "question", row.q || "(no question)"));
    var meta = el("div", "meta");
    meta.append(el("span", null, "margin " + fmt(row.m)));
    if (row.me) meta.append(el("span", null, "method " + row.me));
    if (row.qs) meta.append(el("span", null, "source " + row.qs));
    if (row.id) meta.append(el("span", null, "id " + row.id));
    main.append(meta);
    var answers = el("div", "answers");
    var shading = shadingFor(row);
    answers.append(answer("chosen", row.c, row.cs, row.cx, row.csn, shading),
                   answer("rejected", row.r, row.rs, row.rx, row.rsn, shading));
    main.append(answers);
    article.append(pics, main);
    return article;
  }

  function pages() { return Math.max(1, Math.ceil(visible.length / pageSize)); }

  function render() {
    var start = state.page * pageSize;
    var slice = visible.slice(start, start + pageSize);
    byId("pairs").replaceChildren.apply(byId("pairs"), slice.map(card));
    byId("page").textContent = "page " + (state.page + 1) + " of " + pages();
    byId("count").textContent = visible.length
      ? "pairs " + (start + 1) + "–" + (start + slice.length) + " of " + visible.length +
        (visible.length < rows.length ? " (filtered from " + rows.length + ")" : "")
      : "no pair matches";
    ["prev", "prev2"].forEach(function (id) { byId(id).disabled = state.page === 0; });
    ["next", "next2"].forEach(function (id) { byId(id).disabled = state.page >= pages() - 1; });
  }

  function update() {
    var text = state.text.trim().toLowerCase();
    visible = rows.filter(function (row) {
      return (!state.method || (row.me || "") === state.method) &&
        (!state.source || (row.qs || "") === state.source) &&
        (state.margin === null || (typeof row.m === "number" && row.m >= state.margin)) &&
        (!text || haystack(row).indexOf(text) >= 0);
    });
    if (state.sort !== "order") {
      var parts = state.sort.split("-");
      visible = visible.slice().sort(compare(parts[0], parts[1] === "desc"));
    }
    state.page = Math.min(state.page, pages() - 1);
    render();
  }

  function on(id, event, handler) { byId(id).addEventListener(event, handler); }
  on("f-text", "input", function (e) { state.text = e.target.value; state.page = 0; update(); });
  on("f-method", "change", function (e) { state.method = e.target.value; state.page = 0; update(); });
  on("f-source", "change", function (e) { state.source = e.target.value; state.page = 0; update(); });
  on("f-margin", "input", function (e) {
    var value = parseFloat(e.target.value);
    state.margin = isNaN(value) ? null : value; state.page = 0; update();
  });
  on("f-sort", "change", function (e) { state.sort = e.target.value; update(); });
  ["prev", "prev2"].forEach(function (id) { on(id, "click", function () { state.page -= 1; render(); window.scrollTo(0, byId("gallery").offsetTop); }); });
  ["next", "next2"].forEach(function (id) { on(id, "click", function () { state.page += 1; render(); window.scrollTo(0, byId("gallery").offsetTop); }); });

  update();
  window.__reportReady = performance.now();
  document.body.setAttribute("data-ready", "1");
})();
