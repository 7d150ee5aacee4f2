// codestill traces viewer: lazy span details, "show the whole" links, run comparison, charts.
(function () {
  "use strict";

  async function fetchText(url) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(res.status + " " + (await res.text()));
    return res.text();
  }

  // The whole of a long string replaces its head, in place.
  document.addEventListener("click", async (ev) => {
    const a = ev.target.closest("a.whole");
    if (!a) return;
    ev.preventDefault();
    const cut = a.closest(".cut");
    const pre = cut && cut.previousElementSibling;
    a.textContent = "loading…";
    try {
      const text = await fetchText(a.href);
      if (pre) pre.textContent = text;
      cut.textContent = "showing all " + text.length + " characters";
    } catch (e) { a.textContent = "failed: " + e.message; }
  });

  // Span details: lazily fetched into the detail pane; the URL names the span, so it can be shared.
  const detail = document.getElementById("detail");
  async function showSpan(id, push) {
    if (!detail) return false;
    const run = detail.dataset.run;
    detail.innerHTML = '<p class="hint">loading…</p>';
    try {
      detail.innerHTML = await fetchText(`${BASE}/runs/${run}/spans/${id}`);
    } catch (e) { detail.innerHTML = '<p class="error-msg"></p>'; detail.firstChild.textContent = e.message; }
    document.querySelectorAll(".span-link.selected").forEach((el) => el.classList.remove("selected"));
    document.querySelectorAll(`.span-link[data-span="${id}"]`).forEach((el) => el.classList.add("selected"));
    if (push) {
      const url = new URL(location.href);
      url.searchParams.set("span", id);
      history.replaceState(null, "", url);
    }
    return true;
  }
  const BASE = document.querySelector('link[rel=stylesheet]').getAttribute("href").replace(/\/static\/viewer\.css$/, "");
  document.addEventListener("click", (ev) => {
    const a = ev.target.closest("a.span-link");
    if (!a || !detail || a.pathname !== location.pathname) return;
    ev.preventDefault();
    showSpan(a.dataset.span, true);
    detail.scrollIntoView({ block: "nearest" });
  });
  if (detail) {
    const id = new URL(location.href).searchParams.get("span");
    if (id) showSpan(id, false).then(() => detail.scrollIntoView());
  }

  // <details class="lazy" data-src=...>: the body is fetched the first time it opens.
  document.querySelectorAll("details.lazy").forEach((d) => {
    d.addEventListener("toggle", async () => {
      if (!d.open || d.dataset.loaded) return;
      d.dataset.loaded = "1";
      const body = d.querySelector(".lazy-body");
      try { body.innerHTML = await fetchText(d.dataset.src); }
      catch (e) { body.textContent = "failed: " + e.message; }
    });
  });

  // Runs list: compare the two ticked runs.
  const cmpButton = document.getElementById("compare-selected");
  if (cmpButton) {
    const ticked = () => [...document.querySelectorAll("input.cmp:checked")].map((c) => c.value);
    document.addEventListener("change", () => { cmpButton.disabled = ticked().length !== 2; });
    cmpButton.addEventListener("click", () => {
      const [a, b] = ticked();
      location.href = `${BASE}/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
    });
  }
  const cmpWith = document.getElementById("compare-with");
  if (cmpWith) cmpWith.addEventListener("change", () => {
    if (cmpWith.value) location.href = `${BASE}/compare?a=${cmpWith.dataset.run}&b=${cmpWith.value}`;
  });

  // Dashboard charts: plotly figures the server wrote as JSON.
  document.querySelectorAll("[data-figure]").forEach((el) => {
    const fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    window.Plotly.newPlot(el, fig.data, fig.layout, { displaylogo: false, responsive: true });
  });
})();
