"""The HTML report's inline style and script, and the Content-Security-Policy that allows only them.

The policy names each by its SHA-256: the page loads nothing from anywhere, and no script but this one
runs, even if a target's answer quoted in the evidence got past the escaping.
"""

from __future__ import annotations

import base64
import hashlib

STYLE = """
:root { --pass: #2e7d32; --fail: #c62828; --warn: #e65100; --info: #1565c0; --skip: #616161; --error: #6a1b9a; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1200px; padding: 1rem 1.5rem 3rem; color: #1b1b1b; background: #fff;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.6rem; margin: .5rem 0; } h2 { font-size: 1.25rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin: 0 0 .4rem; } h4 { font-size: .9rem; margin: .6rem 0 .2rem; }
dl.run, dl.rule, dl.evidence { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem;
  margin: .4rem 0; }
dt { font-weight: 600; color: #444; } dd { margin: 0; overflow-wrap: anywhere; }
ul.notes { padding-left: 1.2rem; color: #333; }
.totals { display: flex; flex-wrap: wrap; gap: .5rem; padding: 0; list-style: none; }
.totals li { padding: .3rem .7rem; border-radius: 4px; color: #fff; font-weight: 600; }
.bg-pass { background: var(--pass); } .bg-fail { background: var(--fail); } .bg-warn { background: var(--warn); }
.bg-info { background: var(--info); } .bg-skip { background: var(--skip); } .bg-error { background: var(--error); }
svg.chart text { font-size: 12px; fill: #1b1b1b; }
.s-pass { fill: var(--pass); } .s-fail { fill: var(--fail); } .s-warn { fill: var(--warn); }
.s-info { fill: var(--info); } .s-skip { fill: var(--skip); } .s-error { fill: var(--error); }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { border: 1px solid #ccc; padding: .2rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; } tfoot td { font-weight: 600; }
.filters { display: flex; flex-direction: column; gap: .4rem; margin: .5rem 0 1rem; }
.filters div { display: flex; flex-wrap: wrap; gap: .3rem; align-items: center; }
.filters span { width: 4.5rem; font-weight: 600; }
button { font: inherit; cursor: pointer; border: 1px solid #888; background: #f4f4f4; border-radius: 4px;
  padding: .1rem .6rem; }
button[aria-pressed="true"] { background: #1b1b1b; color: #fff; border-color: #1b1b1b; }
article.result { border: 1px solid #ccc; border-left: 6px solid var(--skip); border-radius: 4px;
  padding: .6rem .9rem; margin: .6rem 0; }
article.result[hidden] { display: none; }
article.status-pass { border-left-color: var(--pass); } article.status-fail { border-left-color: var(--fail); }
article.status-warn { border-left-color: var(--warn); } article.status-info { border-left-color: var(--info); }
article.status-error { border-left-color: var(--error); }
.badge { display: inline-block; min-width: 3.2rem; text-align: center; color: #fff; border-radius: 3px;
  padding: 0 .3rem; font-size: .85rem; text-transform: uppercase; }
.id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.low { color: var(--warn); font-weight: 600; }
.message { margin: .3rem 0; white-space: pre-wrap; overflow-wrap: anywhere; }
pre, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
pre { background: #f6f6f6; border: 1px solid #e0e0e0; padding: .4rem .6rem; white-space: pre-wrap;
  overflow-wrap: anywhere; margin: 0; max-height: 24rem; overflow: auto; }
details.exchange { margin: .4rem 0; } details.exchange > summary { cursor: pointer; }
.curl { display: flex; gap: .5rem; align-items: flex-start; margin: .4rem 0; }
.curl code { flex: 1; background: #f6f6f6; border: 1px solid #e0e0e0; padding: .3rem .5rem; overflow-wrap: anywhere; }
.offscreen { position: fixed; left: -10000px; top: 0; }
"""

SCRIPT = """
(function () {
  "use strict";
  var state = { status: "", area: "" };
  var results = Array.prototype.slice.call(document.querySelectorAll("article.result"));
  var filters = Array.prototype.slice.call(document.querySelectorAll("button.filter"));
  function matches(wanted, value) {
    return wanted === "" || wanted.split(" ").indexOf(value) !== -1;
  }
  function apply() {
    var shown = 0;
    results.forEach(function (item) {
      var visible = matches(state.status, item.dataset.status) && matches(state.area, item.dataset.area);
      item.hidden = !visible;
      if (visible) { shown += 1; }
    });
    document.getElementById("shown-count").textContent = String(shown);
    filters.forEach(function (button) {
      button.setAttribute("aria-pressed", String(state[button.dataset.filter] === button.dataset.value));
    });
  }
  filters.forEach(function (button) {
    button.addEventListener("click", function () {
      state[button.dataset.filter] = button.dataset.value;
      apply();
    });
  });
  function done(button, ok) {
    button.textContent = ok ? "Copied" : "Select and copy";
    button.dataset.copied = ok ? "yes" : "no";
    window.setTimeout(function () { button.textContent = "Copy"; }, 2000);
  }
  function copyBySelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (ignored) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.addEventListener("click", function () {
      var text = button.parentNode.querySelector("code").textContent;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(
          function () { done(button, true); },
          function () { done(button, copyBySelection(text)); }
        );
      } else {
        done(button, copyBySelection(text));
      }
    });
  });
  apply();
})();
"""


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src '{_sha256(STYLE)}'; script-src '{_sha256(SCRIPT)}'; "
    "img-src 'none'; connect-src 'none'; form-action 'none'; base-uri 'none'"
)
