// Countersign live pages. The server renders every page whole; when something changes (an event
// on /events, a ceremony finished on this page) this fetches the page again and swaps its
// [data-live-region]s for the fresh ones, then hydrates the islands that came with them.
(() => {
  "use strict";

  let running = null; // the refresh in flight
  let again = false; // another was asked for meanwhile
  let deferred = false; // an event arrived while the person was typing

  // A ceremony is running (its response renews the session cookie: a fetch now would carry the
  // old one), or a field of the page holds words not yet sent: a swap would lose them.
  const busy = () => document.querySelector("form[aria-busy=true]") !== null;
  const typing = () =>
    [...document.querySelectorAll("main textarea, main input[type=text], main input:not([type])")].some(
      (f) => f.value !== f.defaultValue,
    );

  function hydrate(region) {
    if (typeof window.__hydrateIsland !== "function") return;
    for (const island of region.querySelectorAll("leptos-island")) {
      window.__hydrateIsland(island, island.dataset.component);
    }
  }

  async function swap(focusResult) {
    const response = await fetch(window.location.href, {
      credentials: "same-origin",
      headers: { Accept: "text/html" },
    });
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    // Words typed while the page was being fetched would be lost: keep them, refresh later.
    if (!focusResult && typing()) {
      deferred = true;
      return;
    }
    // A dialog the person opened stays open across the swap (a refresh is not their doing).
    const open = [...document.querySelectorAll("details[data-dialog][open]")].map((d) => d.dataset.dialog);
    for (const region of document.querySelectorAll("[data-live-region]")) {
      const next = fresh.querySelector(`[data-live-region="${region.dataset.liveRegion}"]`);
      if (!next) continue;
      region.replaceChildren(...[...next.childNodes].map((n) => document.adoptNode(n)));
      hydrate(region);
    }
    for (const id of open) {
      const dialog = document.querySelector(`details[data-dialog="${CSS.escape(id)}"]`);
      if (dialog) dialog.open = true;
    }
    // The session may have been renewed (a step-up rotates it): forms must carry the new token.
    const token = fresh.querySelector('meta[name="csrf-token"]');
    const mine = document.querySelector('meta[name="csrf-token"]');
    if (token && mine && token.content) mine.content = token.content;
    if (fresh.title) document.title = fresh.title;
    if (focusResult) {
      const heading = document.querySelector("main [data-result-heading]");
      if (heading) heading.focus();
    }
  }

  // Refresh the page in place; `focusResult` moves focus to the result of what the person did.
  async function refresh(focusResult = false) {
    if (running) {
      again = true;
      await running;
      return refresh(focusResult);
    }
    running = swap(focusResult).finally(() => (running = null));
    await running;
    if (again) {
      again = false;
      await refresh();
    }
  }

  window.countersignLive = { refresh };

  // Events come in bursts (an approval, then the grant): one refresh for each burst.
  let soon = null;
  function onEvent() {
    if (busy() || typing()) {
      deferred = true;
      return;
    }
    if (soon) return;
    soon = setTimeout(() => {
      soon = null;
      // They may have started typing in the meantime: hold it back again.
      if (busy() || typing()) {
        deferred = true;
        return;
      }
      refresh().catch(() => {});
    }, 300);
  }
  // What was held back while the person typed, once they have left the field empty or sent it.
  document.addEventListener("focusout", () => {
    if (deferred && !busy() && !typing()) {
      deferred = false;
      refresh().catch(() => {});
    }
  });

  // The skip link: browsers scroll to `#main` but do not all move focus there; do both.
  document.addEventListener("click", (event) => {
    if (!event.target.closest || !event.target.closest("a[data-skip-link]")) return;
    const main = document.getElementById("main");
    if (!main) return;
    event.preventDefault();
    main.focus();
    main.scrollIntoView();
  });

  // Signed-in pages listen; the events carry no data, the page refetches through its usual checks.
  if (document.querySelector("[data-live-events]") && "EventSource" in window) {
    new EventSource("/events").onmessage = onEvent;
  }
})();
