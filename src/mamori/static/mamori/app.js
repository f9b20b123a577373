// Small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
}, true);
// Double submits: disable a form's buttons once it is on its way (non-htmx forms only).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (event.defaultPrevented || form.hasAttribute("hx-post")) return;
  window.setTimeout(() => {
    form.querySelectorAll("button[type=submit], button:not([type])").forEach((b) => { b.disabled = true; });
  }, 0);
});

// Autosave of answers (forms marked data-autosave; see assessments/_question.html). A choice
// saves at once; typing saves after a pause and when the field is left. htmx sends one save at a
// time per question and, when more come in meanwhile, only the latest, with the values of that
// moment: so the last thing typed is always what is stored. The server answers with the status
// and the new version only; the inputs are never replaced, so no keystroke or focus is lost.
// Each form carries data-autosave-state: "editing" until its newest edit is confirmed, then
// "saved", or "refused" when the server did not take it (the reason is in its status line).
(() => {
  const TYPING_PAUSE_MS = 700;
  const pending = new Map(); // form -> timer of a save waiting for a pause in typing
  const unsaved = new Set(); // forms whose latest edit is not confirmed as saved

  const autosaveForm = (element) => element.closest && element.closest("form[data-autosave]");
  const typed = (element) => element.matches("textarea, input[type=text], input:not([type])");

  function edited(form) {
    form.dataset.edits = String(Number(form.dataset.edits || 0) + 1);
    form.dataset.autosaveState = "editing";
    unsaved.add(form);
  }

  function save(form) {
    window.clearTimeout(pending.get(form));
    pending.delete(form);
    if (window.htmx) window.htmx.trigger(form, "autosave");
  }

  document.addEventListener("input", (event) => {
    const form = autosaveForm(event.target);
    if (!form) return;
    edited(form);
    if (!typed(event.target)) return; // choices save on "change", right away
    window.clearTimeout(pending.get(form));
    pending.set(form, window.setTimeout(() => save(form), TYPING_PAUSE_MS));
  });

  document.addEventListener("change", (event) => {
    const form = autosaveForm(event.target);
    if (!form) return;
    if (!unsaved.has(form)) edited(form);
    save(form);
  });

  // Remember which edit each request carries; only when the newest one is confirmed is the
  // question saved. A refused save (error shown at the question) keeps it unsaved.
  document.addEventListener("htmx:beforeRequest", (event) => {
    const form = event.detail.elt;
    if (form && form.matches && form.matches("form[data-autosave]")) {
      form.dataset.sending = form.dataset.edits || "0";
    }
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const form = event.detail.elt;
    if (!form || !form.matches || !form.matches("form[data-autosave]")) return;
    const ok = event.detail.xhr && event.detail.xhr.status >= 200 && event.detail.xhr.status < 300;
    if (form.dataset.sending !== (form.dataset.edits || "0") || pending.has(form)) return;
    if (ok) unsaved.delete(form);
    form.dataset.autosaveState = ok ? "saved" : "refused";
  });

  // An inventory row is added in the page, without a round trip (the button posts the form
  // when JavaScript is off). The blank row comes from the question's <template>.
  document.addEventListener("click", (event) => {
    const button = event.target.closest && event.target.closest("[data-add-row]");
    const form = button && autosaveForm(button);
    if (!form) return;
    event.preventDefault();
    const template = form.querySelector("template[data-row-template]");
    const body = form.querySelector("table[data-inventory] tbody");
    if (!template || !body) return;
    let next = 0;
    body.querySelectorAll("[name^='row-']").forEach((field) => {
      next = Math.max(next, Number(field.name.split("-")[1]) + 1);
    });
    const html = template.innerHTML.replaceAll("__index__", String(next));
    body.insertAdjacentHTML("beforeend", html);
    const first = body.lastElementChild.querySelector("input, select");
    if (first) first.focus();
  });

  // Leaving the page: send what waits for a pause at once, and ask before dropping edits that
  // are not saved yet (still on their way, or refused).
  window.addEventListener("beforeunload", (event) => {
    pending.forEach((_timer, form) => save(form));
    if (unsaved.size > 0) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
})();
