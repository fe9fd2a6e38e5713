// Countersign WebAuthn glue. The browser runs the ceremony; every decision is made on the server.
// Forms opt in with data-webauthn="setup|login|passkey|confirm|decide|withdraw|add|rename|remove"; progress goes to their [data-status] line.
(() => {
  "use strict";

  const fromB64u = (s) => {
    const b64 = s.replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0)).buffer;
  };
  const toB64u = (buf) => {
    let s = "";
    new Uint8Array(buf).forEach((b) => (s += String.fromCharCode(b)));
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  };

  // The page's CSRF token (server-rendered meta tag), required on every POST.
  function csrfHeaders() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? { "X-CSRF-Token": meta.content } : {};
  }

  // Where to go after signing in: a path on this origin, resolved as the browser will resolve it,
  // or home. The server applies the same rule (app/src/auth/next.rs); this is the browser's copy,
  // so a `next` that reached the page some other way still cannot leave the portal.
  function sameOriginPath(next) {
    if (typeof next !== "string" || !next.startsWith("/") || next.length > 2048) return null;
    if (/[\u0000-\u0020\u007f-\u009f\\]/.test(next)) return null;
    let url;
    try {
      url = new URL(next, window.location.origin);
    } catch {
      return null;
    }
    if (url.origin !== window.location.origin || url.username || url.password) return null;
    const path = url.pathname + url.search + url.hash;
    return path.startsWith("//") ? null : path;
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...csrfHeaders() },
      body: JSON.stringify(body),
    });
    // A step-up renews the session and its CSRF token: later calls from this page use the new one.
    const renewed = res.headers.get("x-csrf-token");
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (renewed && meta) meta.content = renewed;
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.error || `The server answered ${res.status}.`);
    return data;
  }

  function creationOptions(options) {
    const pk = options.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    pk.user.id = fromB64u(pk.user.id);
    (pk.excludeCredentials || []).forEach((c) => (c.id = fromB64u(c.id)));
    return options;
  }

  function requestOptions(options) {
    const pk = options.publicKey;
    pk.challenge = fromB64u(pk.challenge);
    (pk.allowCredentials || []).forEach((c) => (c.id = fromB64u(c.id)));
    return options;
  }

  const attestation = (c) => ({
    id: c.id,
    rawId: toB64u(c.rawId),
    type: c.type,
    extensions: c.getClientExtensionResults(),
    response: {
      attestationObject: toB64u(c.response.attestationObject),
      clientDataJSON: toB64u(c.response.clientDataJSON),
      transports: c.response.getTransports ? c.response.getTransports() : [],
    },
  });

  const assertion = (c) => ({
    id: c.id,
    rawId: toB64u(c.rawId),
    type: c.type,
    extensions: c.getClientExtensionResults(),
    response: {
      authenticatorData: toB64u(c.response.authenticatorData),
      clientDataJSON: toB64u(c.response.clientDataJSON),
      signature: toB64u(c.response.signature),
      userHandle: c.response.userHandle ? toB64u(c.response.userHandle) : null,
    },
  });

  const ceremonies = {
    async setup(form, say) {
      const data = new FormData(form);
      say("Waiting for your passkey…");
      const options = await post("/auth/setup/start", {
        token: form.dataset.token,
        username: data.get("username") || "",
        displayName: data.get("display_name") || "",
        passkeyName: data.get("passkey_name") || "",
      });
      const credential = await navigator.credentials.create(creationOptions(options));
      say("Checking…");
      return post("/auth/setup/finish", attestation(credential));
    },
    async login(form, say) {
      const username = new FormData(form).get("username") || "";
      if (!username.trim()) throw new Error("Enter your username.");
      say("Waiting for your passkey…");
      const options = await post("/auth/login/start", { username });
      const credential = await navigator.credentials.get(requestOptions(options));
      say("Checking…");
      const done = await post("/auth/login/finish", assertion(credential));
      return { redirect: sameOriginPath(form.dataset.next) || done.redirect };
    },
    // Usernameless: the authenticator offers the passkeys it holds for this site.
    async passkey(form, say) {
      say("Choose a passkey and verify it's you…");
      const options = await post("/auth/login/passkey/start", {});
      const credential = await navigator.credentials.get(requestOptions(options));
      say("Checking…");
      const done = await post("/auth/login/passkey/finish", assertion(credential));
      return { redirect: sameOriginPath(form.dataset.next) || done.redirect };
    },
    async add(form, say) {
      const name = (new FormData(form).get("name") || "").trim();
      if (!name) throw new Error("Give the passkey a name.");
      let options = await post("/account/passkeys/add/start", { name });
      if (options.reauthenticate) {
        // Signed in a while ago: one of the existing keys confirms it's still you first.
        say("First confirm it's you with one of your passkeys…");
        const existing = await navigator.credentials.get(requestOptions(options.reauthenticate));
        options = await post("/account/passkeys/add/confirm", { credential: assertion(existing) });
      }
      say("Waiting for your new passkey…");
      const credential = await navigator.credentials.create(creationOptions(options));
      say("Saving…");
      return post("/account/passkeys/add/finish", attestation(credential));
    },
    async rename(form, say) {
      const name = (new FormData(form).get("name") || "").trim();
      if (!name) throw new Error("Give the passkey a name.");
      say("Saving…");
      return post("/account/passkeys/rename", { credentialId: form.dataset.credentialId, name });
    },
    async remove(form, say) {
      const credentialId = form.dataset.credentialId;
      say("Confirm with one of your passkeys to remove this one…");
      const options = await post("/account/passkeys/remove/start", { credentialId });
      const credential = await navigator.credentials.get(requestOptions(options));
      say("Removing…");
      return post("/account/passkeys/remove/finish", { credentialId, credential: assertion(credential) });
    },
    // Approval guardrails send a reason (and, breaking the glass, say so).
    async confirm(form, say) {
      const code = form.dataset.code;
      const reason = form.elements.reason ? form.elements.reason.value.trim() : null;
      const breakGlass = form.dataset.breakGlass === "yes";
      say("Confirm with your passkey (PIN, fingerprint or face)…");
      const options = await post("/auth/stepup/start", { code, reason, breakGlass });
      const credential = await navigator.credentials.get(requestOptions(options));
      say(form.elements.reason && !breakGlass ? "Asking the approvers…" : "Issuing your grant…");
      return post("/auth/stepup/finish", { code, credential: assertion(credential) });
    },
    // An approver's decision; which button was pressed says approve or reject.
    async decide(form, say, submitter) {
      const code = form.dataset.code;
      const decision = (submitter && submitter.value) || "approve";
      const reason = form.elements.reason ? form.elements.reason.value.trim() : "";
      if (decision === "reject" && !reason) throw new Error("Say why you reject it, so the requester knows.");
      say("Confirm with your passkey (PIN, fingerprint or face)…");
      const options = await post("/auth/decide/start", { code, decision, reason });
      const credential = await navigator.credentials.get(requestOptions(options));
      say(decision === "reject" ? "Recording your rejection…" : "Recording your approval…");
      return post("/auth/decide/finish", { code, credential: assertion(credential) });
    },
    async withdraw(form, say) {
      say("Withdrawing…");
      return post("/c/withdraw", { code: form.dataset.code });
    },
  };

  function friendly(err, ceremony) {
    if (err && err.name === "NotAllowedError") {
      // Signing in by username: the server answers an unknown name like a known one, so the
      // browser cannot tell "no key for this name" from "cancelled"; say both.
      if (ceremony === "login") return "No passkey answered for this username. Check the username, or use “Sign in with a passkey”. If you cancelled, try again.";
      return "The passkey request was cancelled or timed out, or no registered passkey answered. Try again.";
    }
    if (err && err.name === "InvalidStateError") return "This passkey is already registered.";
    return (err && err.message) || "Something went wrong. Try again.";
  }

  // Tests (and styles) can tell the forms are live: before this, a submit would reload the page.
  document.documentElement.dataset.webauthnReady = "yes";

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("form[data-webauthn]");
    if (!form) return;
    event.preventDefault();
    const run = ceremonies[form.dataset.webauthn];
    const status = form.querySelector("[data-status]");
    const submitter = event.submitter;
    const button = submitter || form.querySelector("button[type=submit]");
    const buttons = form.querySelectorAll("button[type=submit]");
    // The tone is an attribute the styles key on (an error must never look like progress).
    const say = (text, isError) => {
      if (!status) return;
      status.textContent = text;
      status.dataset.tone = isError ? "error" : "busy";
    };
    if (!run) return;
    if (!window.PublicKeyCredential && form.dataset.webauthn !== "withdraw") {
      say("This browser does not support passkeys.", true);
      return;
    }
    buttons.forEach((b) => (b.disabled = true));
    form.setAttribute("aria-busy", "true");
    try {
      const done = await run(form, say, submitter);
      say("Done.");
      if (form.dataset.inPlace === "yes" && window.countersignLive) {
        // The page updates itself (live.js) and moves focus to the result instead of reloading.
        form.removeAttribute("aria-busy");
        try {
          await window.countersignLive.refresh(true);
          return;
        } catch (_) {
          // Could not fetch the page: load it instead.
        }
      }
      window.location.assign(sameOriginPath(done.redirect) || window.location.pathname);
    } catch (err) {
      say(friendly(err, form.dataset.webauthn), true);
      buttons.forEach((b) => (b.disabled = false));
      button && button.focus();
    } finally {
      form.removeAttribute("aria-busy");
    }
  });
})();
