// Keyboard, click and drag ranking for the annotation workspace. The form works without this file (rank lists
// and a submit button); this adds the shortcuts listed in the "?" panel.
(function () {
  "use strict";

  function form() { return document.getElementById("judgment-form"); }
  function cards() { return Array.from(document.querySelectorAll("#judgment-form .response")); }
  function selected() { return document.querySelector("#judgment-form .response.selected"); }
  // Focus and selection are one thing: the selected card is the one holding the keyboard focus (or a control inside
  // it), so a digit always ranks the response the annotator sees highlighted.
  function mark(card) {
    cards().forEach(function (c) {
      var on = c === card;
      c.classList.toggle("selected", on);
      if (on) { c.setAttribute("aria-current", "true"); } else { c.removeAttribute("aria-current"); }
    });
  }
  function select(card) {
    mark(card);
    if (card) { card.focus({ preventScroll: false }); }
  }
  function focusedCard() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("#judgment-form .response") : null;
  }
  // In a right-to-left layout the next card sits to the left, so the horizontal arrows swap meaning.
  function rightToLeft() {
    var section = document.querySelector("#judgment-form .responses");
    return !!section && getComputedStyle(section).direction === "rtl";
  }
  function rankSelect(card) { return card.querySelector("select[data-rank-for]"); }
  function isOpen(panel) { return panel.tagName === "DIALOG" ? panel.open : !panel.hidden; }
  function markExpanded(panel) {
    document.querySelectorAll('[data-toggle="' + panel.id + '"]').forEach(function (b) {
      if (!panel.contains(b)) { b.setAttribute("aria-expanded", String(isOpen(panel))); }
    });
  }
  // The shortcuts list is a modal dialog (focus moves in, Escape closes it, focus returns); other panels fold.
  function toggle(id) {
    var panel = document.getElementById(id);
    if (!panel) { return; }
    if (panel.tagName === "DIALOG") {
      if (panel.open) { panel.close(); } else { panel.showModal(); }
    } else {
      panel.hidden = !panel.hidden;
    }
    markExpanded(panel);
  }
  document.addEventListener("close", function (event) {
    if (event.target.tagName === "DIALOG") { markExpanded(event.target); }
  }, true);

  // Single-character shortcuts can be turned off (WCAG 2.1.4); the choice is kept in this browser.
  var SHORTCUTS_KEY = "crossfeed.shortcuts";
  function shortcutsOn() {
    try { return window.localStorage.getItem(SHORTCUTS_KEY) !== "off"; } catch (e) { return true; }
  }
  document.addEventListener("change", function (event) {
    if (event.target.id === "shortcuts-enabled") {
      try { window.localStorage.setItem(SHORTCUTS_KEY, event.target.checked ? "on" : "off"); } catch (e) { /* private mode */ }
    }
  });

  // The strip shows the ranking, best first; it follows the selects, and dragging in it rewrites them.
  function syncStrip() {
    var strip = document.querySelector("#judgment-form .ranking-strip");
    if (!strip) { return; }
    var chips = Array.from(strip.children);
    chips.sort(function (a, b) {
      var ra = Number(rankSelectFor(a.dataset.response).value || 99);
      var rb = Number(rankSelectFor(b.dataset.response).value || 99);
      return ra - rb;
    });
    chips.forEach(function (chip) {
      chip.classList.toggle("ranked", !!rankSelectFor(chip.dataset.response).value);
      strip.appendChild(chip);
    });
  }
  function rankSelectFor(responseId) {
    return document.querySelector('#judgment-form select[data-rank-for="' + responseId + '"]');
  }
  function rankFromStrip() {
    var strip = document.querySelector("#judgment-form .ranking-strip");
    Array.from(strip.children).forEach(function (chip, index) {
      rankSelectFor(chip.dataset.response).value = String(index + 1);
    });
    syncStrip();
    clearRankErrors();
  }

  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    if (event.target.matches && event.target.matches(".ranking-strip li")) {
      dragged = event.target;
      event.dataTransfer.effectAllowed = "move";
      event.dataTransfer.setData("text/plain", dragged.dataset.response);
    }
  });
  document.addEventListener("dragover", function (event) {
    var over = event.target.closest && event.target.closest(".ranking-strip li");
    if (dragged && over) { event.preventDefault(); }
  });
  document.addEventListener("drop", function (event) {
    var over = event.target.closest && event.target.closest(".ranking-strip li");
    if (!dragged || !over || over === dragged) { return; }
    event.preventDefault();
    var strip = over.parentNode;
    var items = Array.from(strip.children);
    var before = items.indexOf(dragged) > items.indexOf(over) ? over : over.nextSibling;
    strip.insertBefore(dragged, before);
    dragged = null;
    rankFromStrip();
  });

  document.addEventListener("focusin", function (event) {
    var card = event.target.closest && event.target.closest("#judgment-form .response");
    if (card && !card.classList.contains("selected")) { mark(card); }
  });

  // A refused ranking marks the responses without a rank; each mark goes as soon as that response gets one, and the
  // summary with its last problem, so no message outlives its cause.
  function clearRankError(select) {
    if (!select.value || select.getAttribute("aria-invalid") !== "true") { return; }
    var responseId = select.dataset.rankFor;
    select.removeAttribute("aria-invalid");
    select.removeAttribute("aria-describedby");
    var inCard = document.getElementById("error-" + responseId);
    if (inCard) { inCard.remove(); }
    var summary = document.getElementById("form-errors");
    if (!summary) { return; }
    summary.querySelectorAll('[data-error-for="' + responseId + '"]').forEach(function (li) { li.remove(); });
    if (!summary.querySelector("li")) { summary.hidden = true; }
  }
  function clearRankErrors() {
    document.querySelectorAll("#judgment-form select[data-rank-for]").forEach(clearRankError);
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("select[data-rank-for]")) { syncStrip(); clearRankErrors(); }
    if (event.target.id === "skip-reason") { showSkipOther(); }
  });

  // The skip form's own-words box matters only for "Other": shown while that reason is chosen. Marked required for
  // assistive technology only: the server's refusal says what to do in the interface language, a browser's
  // built-in bubble would not.
  function showSkipOther() {
    var reason = document.getElementById("skip-reason");
    var box = document.querySelector("[data-skip-other]");
    if (!reason || !box) { return false; }
    var other = reason.value === "other";
    box.hidden = !other;
    box.querySelector("input").setAttribute("aria-required", String(other));
    return other;
  }
  document.addEventListener("click", function (event) {
    var toggler = event.target.closest("[data-toggle]");
    if (toggler) { toggle(toggler.dataset.toggle); return; }
    var card = event.target.closest("#judgment-form .response");
    if (card && !event.target.closest("select, input, label, a")) { select(card); }
  });

  document.addEventListener("keydown", function (event) {
    var f = form();
    var typing = event.target.closest && event.target.closest("textarea, input[type=text], select");
    var character = event.key.length === 1;
    if (character && !shortcutsOn()) { return; }
    if (event.key === "?" && !typing) { toggle("shortcuts"); event.preventDefault(); return; }
    var dialog = document.querySelector("dialog[open]");
    if (dialog || !f || typing || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var all = cards();
    var current = focusedCard() || selected() || all[0];
    var index = all.indexOf(current);
    var forward = rightToLeft() ? "ArrowLeft" : "ArrowRight";
    var backward = rightToLeft() ? "ArrowRight" : "ArrowLeft";
    if (/^[1-8]$/.test(event.key)) {
      var rank = Number(event.key);
      if (rank > all.length) { return; }
      rankSelect(current).value = String(rank);
      syncStrip();
      clearRankErrors();
      if (index < all.length - 1) { select(all[index + 1]); }
      event.preventDefault();
    } else if (event.key === forward || event.key === "ArrowDown" || event.key === "j") {
      select(all[Math.min(index + 1, all.length - 1)]); event.preventDefault();
    } else if (event.key === backward || event.key === "ArrowUp" || event.key === "k") {
      select(all[Math.max(index - 1, 0)]); event.preventDefault();
    } else if (event.key === "w") {
      var box = current.querySelector('input[type=checkbox][value="wrong_language"]');
      if (box) { box.checked = !box.checked; }
      event.preventDefault();
    } else if (event.key === "g") {
      toggle("guidelines"); event.preventDefault();
    } else if (event.key === "Enter" && !event.target.closest("button, a")) {
      event.preventDefault();
      f.requestSubmit();
    }
  });

  // Post-editing (templates/annotation/_post_edit.html): Ctrl+Enter saves the edits, Alt+A accepts, Alt+U marks
  // unusable, from anywhere on the page, a text box included. Each presses its button, so the request is the one a
  // click sends (htmx posts the pressed button's verdict). By physical key (event.code): Alt+A is "å" on a Mac and
  // an Arabic letter on an Arabic layout.
  function postEditForm() { return document.getElementById("post-edit-form"); }
  document.addEventListener("keydown", function (event) {
    var f = postEditForm();
    if (!f || document.querySelector("dialog[open]")) { return; }
    var verdict = null;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && event.key === "Enter") { verdict = "edited"; }
    else if (event.altKey && !event.ctrlKey && !event.metaKey && event.code === "KeyA") { verdict = "accepted"; }
    else if (event.altKey && !event.ctrlKey && !event.metaKey && event.code === "KeyU") { verdict = "unusable"; }
    else if (event.key === "g" && !event.ctrlKey && !event.metaKey && !event.altKey && shortcutsOn() &&
             !(event.target.closest && event.target.closest("textarea, input[type=text], select"))) {
      toggle("guidelines"); event.preventDefault(); return;
    }
    if (!verdict) { return; }
    event.preventDefault();
    var button = f.querySelector('button[name="verdict"][value="' + verdict + '"]');
    if (button) { button.click(); }
  });

  // seconds_spent: time from when the item appeared to the submit.
  var shownAt = Date.now();
  document.addEventListener("submit", function (event) {
    if (event.target.id === "judgment-form" || event.target.id === "post-edit-form") {
      var field = event.target.querySelector('input[name="seconds_spent"]');
      if (field) { field.value = String(Math.round((Date.now() - shownAt) / 1000)); }
    }
  }, true);

  // Notices arrive inside the swapped HTML; one persistent live region (#status, in base.html) announces them.
  function announce() {
    var status = document.getElementById("status");
    var notice = document.querySelector("#workspace [data-status-message]");
    if (!status) { return; }
    status.textContent = "";
    if (notice) { window.setTimeout(function () { status.textContent = notice.textContent.trim(); }, 50); }
  }

  // Times come from the server in UTC with the zone named; shown here in the annotator's own zone, also named.
  function localTimes() {
    document.querySelectorAll("time[data-local]").forEach(function (element) {
      var when = new Date(element.getAttribute("datetime"));
      if (isNaN(when.getTime())) { return; }
      var options = { hour: "2-digit", minute: "2-digit", timeZoneName: "short" };
      if (element.dataset.local === "datetime") { options.year = "numeric"; options.month = "short"; options.day = "numeric"; }
      element.textContent = when.toLocaleString(document.documentElement.lang || undefined, options);
    });
  }

  function init() {
    shownAt = Date.now();
    localTimes();
    var box = document.getElementById("shortcuts-enabled");
    if (box) { box.checked = shortcutsOn(); }
    var all = cards();
    var summary = document.querySelector("#judgment-form .error[tabindex]");
    if (summary) {
      // After a refused ranking the focus goes to the list of problems, which names the responses by letter.
      mark(all.find(function (card) { return card.querySelector("[aria-invalid=true]"); }) || all[0]);
      summary.focus();
    } else if (all.length) { select(all[0]); }
    if (all.length) { syncStrip(); }
    var postEdit = postEditForm();
    if (postEdit) {
      // After a refusal the list of problems has the focus (it names the fields); otherwise the first text box.
      var problems = postEdit.querySelector(".error[tabindex]");
      var first = postEdit.querySelector("textarea[aria-invalid=true]") || postEdit.querySelector("textarea");
      if (problems) { problems.focus(); } else if (first) { first.focus(); }
    }
    showSkipOther();
    var refusedSkip = document.querySelector(".skip [aria-invalid=true]");
    if (refusedSkip) { refusedSkip.focus(); }
    announce();
  }
  document.addEventListener("htmx:afterSwap", init);
  document.addEventListener("htmx:responseError", function (event) {
    var workspace = document.getElementById("workspace");
    var banner = document.createElement("div");
    banner.className = "error";
    banner.setAttribute("role", "alert");
    // The text comes translated from the template (data-error-message), with the status put in here.
    var message = (workspace && workspace.dataset.errorMessage) ||
      "The server answered %(status)s. Your ranking is still on the page: try again.";
    banner.textContent = message.replace("%(status)s", String(event.detail.xhr.status));
    if (workspace) { workspace.prepend(banner); }
  });
  document.addEventListener("DOMContentLoaded", init);
})();

// People (docs/campaigns.md): the guidelines of the item's response language, and the activity ping for the time
// report.
(function () {
  "use strict";

  // With several native languages the guidelines panel holds one version per language: show the item's.
  function showItemGuidelines() {
    var form = document.getElementById("judgment-form") || document.getElementById("post-edit-form");
    var versions = document.querySelectorAll("#guidelines [data-guidelines-for]");
    if (!form || versions.length < 2) { return; }
    var language = form.dataset.responseLanguage;
    var match = Array.from(versions).find(function (v) { return v.dataset.guidelinesFor.split(" ").indexOf(language) >= 0; });
    versions.forEach(function (v) { v.hidden = !!match && v !== match; });
  }
  document.addEventListener("htmx:afterSwap", showItemGuidelines);

  // At most one ping a minute, and only when the annotator did something on a visible page: the server counts
  // minutes with a ping (and the judgments) as active time, and gaps longer than the idle limit as none.
  var PING_EVERY_MS = 60000;
  var lastPing = 0;
  function csrfToken() {
    try { return JSON.parse(document.body.getAttribute("hx-headers"))["X-CSRFToken"]; } catch (e) { return ""; }
  }
  function ping() {
    var workspace = document.getElementById("workspace");
    var url = workspace && workspace.dataset.activityUrl;
    var now = Date.now();
    if (!url || document.visibilityState !== "visible" || now - lastPing < PING_EVERY_MS) { return; }
    lastPing = now;
    var form = document.getElementById("judgment-form") || document.getElementById("post-edit-form");
    var body = new URLSearchParams();
    if (form && form.dataset.item) { body.set("item", form.dataset.item); }
    window.fetch(url, { method: "POST", credentials: "same-origin", keepalive: true, body: body,
                        headers: { "X-CSRFToken": csrfToken() } }).catch(function () { /* offline: no minute */ });
  }
  ["keydown", "pointerdown", "wheel", "input", "touchstart"].forEach(function (type) {
    document.addEventListener(type, ping, { passive: true, capture: true });
  });
})();
