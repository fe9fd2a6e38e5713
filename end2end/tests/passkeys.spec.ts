// Several named passkeys per account, usernameless sign-in, and a cloned key (counter regression)
// blocked for good — in a real browser with Chrome's virtual authenticators over CDP.
import { test, expect, CDPSession, Locator, Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addAuthenticator, Countersign, deploymentUpdate, startCountersign, webhook } from "./support";

const USER = "alice@example.com";
const docs = join(__dirname, "..", "..", "docs");
const LINK = /confirm at (http:\/\/localhost:\d+\/c\/[2-9A-HJ-NP-Z]{8}),/;

let cs: Countersign;

test.beforeAll(async () => {
  cs = await startCountersign(undefined, ["--first-admin", USER]);
});

test.afterAll(async () => {
  await cs?.stop();
});

/** A same-origin JSON POST from the page, with its CSRF token, as the portal's own script sends it. */
async function postFromPage(page: Page, path: string, body: unknown): Promise<{ status: number; json: any }> {
  return page.evaluate(
    async ([path, body]) => {
      const meta = document.querySelector('meta[name="csrf-token"]') as HTMLMetaElement | null;
      const res = await fetch(path as string, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", ...(meta ? { "X-CSRF-Token": meta.content } : {}) },
        body: JSON.stringify(body),
      });
      return { status: res.status, json: await res.json().catch(() => null) };
    },
    [path, body] as const,
  );
}

/** Unplug one virtual authenticator (returning the credentials it held) and plug in a fresh one. */
async function swapAuthenticator(cdp: CDPSession, from: string): Promise<{ id: string; unplugged: any[] }> {
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId: from });
  await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: from });
  return { id: await addAuthenticator(cdp, true), unplugged: credentials };
}

/** CDP gives credential ids in standard base64; the portal uses base64url. */
const b64u = (id: string) => Buffer.from(id, "base64").toString("base64url");

function watch(page: Page) {
  (page as any).__log = [];
  page.on("response", (r) => (page as any).__log.push(`${r.status()} ${r.url()}`));
  page.on("console", (m) => (page as any).__log.push(`console ${m.text()}`));
  page.on("framenavigated", (f) => (page as any).__log.push(`nav ${f.url()}`));
}

/** Wait for the stylesheet before a screenshot (the body's background comes from it). */
async function styled(page: Page) {
  // Any colour will do (Tailwind may emit oklch or a lab() fallback); unstyled, the body is transparent.
  await expect.poll(() => page.evaluate(() => getComputedStyle(document.body).backgroundColor)).not.toBe("rgba(0, 0, 0, 0)");
}

/** Press a button of a WebAuthn form once the portal's script has taken the forms over. */
async function press(scope: Page | Locator, name: string) {
  const page = "page" in scope ? scope.page() : scope;
  await expect
    .poll(() => page.evaluate(() => document.documentElement.dataset.webauthnReady), {
      message: `${page.url()}: ${JSON.stringify((page as any).__log)}`,
    })
    .toBe("yes");
  await scope.getByRole("button", { name, exact: true }).click();
}

const rows = (page: Page) => page.locator("[data-passkey-row]");
const row = (page: Page, name: string) => rows(page).filter({ has: page.locator("[data-passkey-name]", { hasText: name }) });

test("passkeys: several named keys, rename, remove with a fresh touch, never the last; usernameless sign-in; a cloned key is blocked", async ({ browser }) => {
  expect(cs.setupLink, "first start prints a setup link").not.toBeNull();
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page);
  const cdp = await context.newCDPSession(page);
  const laptop = await addAuthenticator(cdp, true);

  // The first admin registers "First passkey" through the setup link.
  await page.goto(cs.setupLink!);
  await expect(page.getByLabel("Kubernetes username")).toHaveValue(USER);
  await page.getByLabel("Display name").fill("Alice Example");
  await press(page, "Register passkey");
  await expect(page.getByRole("heading", { name: "Hello, Alice Example" })).toBeVisible();
  // Registration asked for a discoverable credential (what usernameless sign-in needs).
  const first = await cdp.send("WebAuthn.getCredentials", { authenticatorId: laptop });
  expect(first.credentials).toHaveLength(1);
  expect(first.credentials[0].isResidentCredential).toBe(true);

  // The account page is linked from the header and lists the one key; it cannot be removed.
  await page.getByRole("link", { name: "Passkeys" }).click();
  await expect(page.getByRole("heading", { name: "Your passkeys" })).toBeVisible();
  await expect(rows(page)).toHaveCount(1);
  await expect(row(page, "First passkey").locator("[data-passkey-status]")).toHaveText("Active");
  await expect(row(page, "First passkey").getByText("never used")).toBeVisible();
  await expect(row(page, "First passkey").getByRole("button", { name: "Remove…" })).toBeDisabled();
  await expect(page.getByText("Your only usable passkey cannot be removed")).toBeVisible();
  // The server refuses it too, whatever the page shows.
  const last = await postFromPage(page, "/account/passkeys/remove/start", { credentialId: b64u(first.credentials[0].credentialId) });
  expect(last.status).toBe(409);
  expect(last.json.error).toContain("last usable passkey");

  // A second key, on another device, with a name.
  const yubi = await swapAuthenticator(cdp, laptop);
  await page.locator("#add-passkey-name").fill("YubiKey backup");
  await press(page, "Add passkey");
  await expect(page.getByText("Passkey added.")).toBeVisible();
  await expect(rows(page)).toHaveCount(2);
  await expect(row(page, "YubiKey backup").locator("[data-passkey-status]")).toHaveText("Active");
  // An empty name is refused before any key is touched.
  await page.locator("#add-passkey-name").fill("   ");
  await press(page, "Add passkey");
  await expect(page.getByRole("status").filter({ hasText: "Give the passkey a name." })).toBeVisible();

  // Rename the first one.
  const firstRow = row(page, "First passkey");
  await firstRow.getByRole("textbox", { name: "Name" }).fill("Old laptop");
  await press(firstRow, "Rename");
  await expect(page.getByText("Passkey renamed.")).toBeVisible();
  await expect(row(page, "Old laptop")).toHaveCount(1);
  await expect(row(page, "First passkey")).toHaveCount(0);

  // Removing needs a fresh assertion: finishing without one is refused.
  const forged = await postFromPage(page, "/account/passkeys/remove/finish", {
    credentialId: b64u(first.credentials[0].credentialId),
    credential: { id: "x", rawId: "eA", type: "public-key", extensions: {}, response: { authenticatorData: "", clientDataJSON: "", signature: "" } },
  });
  expect(forged.status).toBe(400);
  await expect(rows(page)).toHaveCount(2);
  // With the YubiKey present, touching it removes the old laptop's key.
  await press(row(page, "Old laptop"), "Remove…");
  await expect(page.getByText("Passkey removed.")).toBeVisible();
  await expect(rows(page)).toHaveCount(1);
  await expect(row(page, "YubiKey backup").getByRole("button", { name: "Remove…" })).toBeDisabled();
  await expect(row(page, "YubiKey backup").getByText("last used")).toBeVisible();

  // A third key ("Phone"), so the account survives the YubiKey being blocked below.
  const phone = await swapAuthenticator(cdp, yubi.id);
  await page.locator("#add-passkey-name").fill("Phone");
  await press(page, "Add passkey");
  await expect(page.getByText("Passkey added.")).toBeVisible();
  await expect(rows(page)).toHaveCount(2);

  // Unknown usernames get the same shape of answer as known ones (no user enumeration).
  const known = await postFromPage(page, "/auth/login/start", { username: USER });
  const unknown = await postFromPage(page, "/auth/login/start", { username: "nobody@example.com" });
  expect(known.status).toBe(200);
  expect(unknown.status).toBe(200);
  expect(Object.keys(unknown.json.publicKey).sort()).toEqual(Object.keys(known.json.publicKey).sort());
  expect(unknown.json.publicKey.allowCredentials.length).toBeGreaterThan(0);

  // Usernameless sign-in with the YubiKey in another browser.
  const other = await browser.newContext();
  const page2 = await other.newPage();
  watch(page2);
  const cdp2 = await other.newCDPSession(page2);
  const yubi2 = await addAuthenticator(cdp2, true);
  expect(phone.unplugged).toHaveLength(1);
  for (const c of phone.unplugged) await cdp2.send("WebAuthn.addCredential", { authenticatorId: yubi2, credential: c });
  await page2.goto(`${cs.publicUrl}/login`);
  await expect(page2.getByRole("button", { name: "Sign in with a passkey" })).toBeVisible();
  await styled(page2);
  await page2.screenshot({ path: join(docs, "login.png"), fullPage: true });
  await press(page2, "Sign in with a passkey");
  await expect(page2.getByRole("heading", { name: "Hello, Alice Example" })).toBeVisible();
  // The username path keeps working.
  await page2.locator("[data-account-menu] > summary").click();
  await page2.getByRole("button", { name: "Sign out", exact: true }).click();
  await page2.goto(`${cs.publicUrl}/login`);
  await page2.getByLabel("Username").fill(USER);
  await press(page2, "Sign in with username");
  await expect(page2.getByRole("heading", { name: "Hello, Alice Example" })).toBeVisible();
  await page2.locator("[data-account-menu] > summary").click();
  await page2.getByRole("button", { name: "Sign out", exact: true }).click();

  // A clone: the same key answers with a signature counter lower than the last one seen.
  const { credentials: [seen] } = await cdp2.send("WebAuthn.getCredentials", { authenticatorId: yubi2 });
  expect(seen.signCount).toBeGreaterThan(1);
  await cdp2.send("WebAuthn.removeCredential", { authenticatorId: yubi2, credentialId: seen.credentialId });
  await cdp2.send("WebAuthn.addCredential", { authenticatorId: yubi2, credential: { ...seen, signCount: 0 } });
  await page2.goto(`${cs.publicUrl}/login`);
  await press(page2, "Sign in with a passkey");
  await expect(page2.getByRole("status").filter({ hasText: "signature counter went backwards" })).toBeVisible();
  // Never accepted again, even once its counter is ahead.
  await cdp2.send("WebAuthn.removeCredential", { authenticatorId: yubi2, credentialId: seen.credentialId });
  await cdp2.send("WebAuthn.addCredential", { authenticatorId: yubi2, credential: { ...seen, signCount: seen.signCount + 100 } });
  await press(page2, "Sign in with a passkey");
  await expect(page2.getByRole("status").filter({ hasText: "blocked" })).toBeVisible();
  await page2.getByLabel("Username").fill(USER);
  await press(page2, "Sign in with username");
  await expect(page2.getByRole("status").filter({ hasText: "No passkey answered for this username" })).toBeVisible();
  await expect(page2.getByRole("heading", { name: "Hello, Alice Example" })).toHaveCount(0);
  await other.close();

  // The owner sees it blocked on the account page; the phone still works.
  await page.goto(`${cs.publicUrl}/account`);
  await expect(row(page, "YubiKey backup").locator("[data-passkey-status]")).toHaveText("Blocked — possible cloned key");
  await expect(row(page, "YubiKey backup").getByText("signature counter lower than before", { exact: false })).toBeVisible();
  await expect(row(page, "Phone").locator("[data-passkey-status]")).toHaveText("Active");
  // The phone is now the only usable key: it cannot go, the blocked one can.
  await expect(row(page, "Phone").getByRole("button", { name: "Remove…" })).toBeDisabled();
  await expect(row(page, "YubiKey backup").getByRole("button", { name: "Remove…" })).toBeEnabled();
  await styled(page);
  await page.screenshot({ path: join(docs, "account-keys.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(docs, "account-keys-mobile.png"), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });

  // A step-up with the phone: the grant's evidence names the credential, its model, UV, time,
  // client address and user agent.
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 2));
  const [, link] = LINK.exec(denied.json.response.status.message)!;
  await page.goto(link);
  await press(page, "Confirm with passkey");
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  const token = (await page.locator("[data-grant-token]").textContent())!.trim();
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  const { credentials: [phoneKey] } = await cdp.send("WebAuthn.getCredentials", { authenticatorId: phone.id });
  expect(claims.evidence).toMatchObject({
    method: "webauthn",
    account: USER,
    credentialId: b64u(phoneKey.credentialId),
    aaguid: "01020304-0506-0708-0102-030405060708", // Chrome's virtual authenticator model
    userVerified: true,
    clientAddress: "127.0.0.1",
  });
  expect(claims.evidence.userAgent).toContain("Chrome");
  expect(Math.abs(claims.evidence.authTime - Date.now() / 1000)).toBeLessThan(120);
  // Every change landed in the audit log (read straight from the SQLite store).
  const kinds = execFileSync("sqlite3", [join(cs.dataDir, "countersign.db"), "select kind || ' ' || detail from audit_events order by seq"], { encoding: "utf8" });
  for (const kind of ["passkey.added", "passkey.renamed", "passkey.removed", "passkey.counter_regression"]) {
    expect(kinds, kind).toContain(kind);
  }
  expect(kinds).toMatch(/^passkey\.removed .*"name":"Old laptop"/m);
  expect(kinds).toMatch(/^passkey\.counter_regression .*"name":"YubiKey backup"/m);
  expect(kinds).toMatch(/^login .*"discoverable":true/m);
  expect(cs.output()).not.toContain("panicked");
  await context.close();
});

const fixtures = join(__dirname, "..", "fixtures");
const CHROMIUM_AAGUID = "01020304-0506-0708-0102-030405060708"; // Chrome's virtual authenticator model

/** An allow-list approving `models` under the root in `rootFile` (a fixture), written to `dir`. */
function allowList(dir: string, name: string, rootFile: string, models: [string, string][]): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      "apiVersion: countersign.dev/v1alpha1",
      "kind: AuthenticatorAllowList",
      "spec:",
      "  vendors:",
      `    - name: ${name}`,
      `      roots: [{file: ${join(fixtures, rootFile)}}]`,
      "      models:",
      ...models.map(([aaguid, model]) => `        - {aaguid: ${aaguid}, name: ${model}}`),
      "",
    ].join("\n"),
  );
  return file;
}

/** Wait until a stopped Countersign has really exited (the next one opens the same database). */
async function exited(server: Countersign) {
  await expect.poll(() => server.process.exitCode ?? server.process.signalCode).not.toBeNull();
}

test("an authenticator allow-list: only models attested by a listed vendor root register, and only they confirm", async ({ browser }) => {
  const dir = mkdtempSync(join(tmpdir(), "countersign-allowlist-"));
  // Refused at registration: a listed model whose attestation chains to another vendor's root (what a
  // counterfeit or software key looks like), and a model the listed vendor's entry does not name.
  const forged = allowList(dir, "forged", "other-vendor-root.pem", [[CHROMIUM_AAGUID, "Chromium virtual authenticator"]]);
  const strict = allowList(dir, "strict", "chromium-attestation-root.pem", [["cb69481e-8ff7-4039-93ec-0a2729a154a8", "YubiKey 5 Series"]]);
  for (const [file, refusal] of [
    [forged, "says it is a Chromium virtual authenticator, but it could not prove it"],
    [strict, `this authenticator model (${CHROMIUM_AAGUID}) is not on this site's list`],
  ]) {
    const server = await startCountersign(undefined, ["--authenticator-allowlist", file, "--first-admin", USER]);
    try {
      const context = await browser.newContext();
      const page = await context.newPage();
      await addAuthenticator(await context.newCDPSession(page), true);
      let asked = "";
      // Read the options on their way to the page: a body read after the page navigates away is gone.
      await page.route("**/auth/setup/start", async (route) => {
        const response = await route.fetch();
        asked = (await response.json()).publicKey.attestation;
        await route.fulfill({ response });
      });
      await page.goto(server.setupLink!);
      await expect(page.getByLabel("Kubernetes username")).toHaveValue(USER);
      await press(page, "Register passkey");
      await expect(page.getByRole("status").filter({ hasText: refusal }), server.output()).toBeVisible();
      expect(asked).toBe("direct");
      const audit = execFileSync("sqlite3", [join(server.dataDir, "countersign.db"), "select kind || ' ' || detail from audit_events order by seq"], { encoding: "utf8" });
      expect(audit).toContain("account.setup_failed");
      expect(audit).toContain(refusal);
      await context.close();
    } finally {
      await server.stop();
    }
  }

  // A person who registered before the list existed keeps signing in, but cannot confirm with that key.
  const data = mkdtempSync(join(tmpdir(), "countersign-e2e-"));
  const before = await startCountersign(undefined, ["--first-admin", USER], { dataDir: data });
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page);
  const cdp = await context.newCDPSession(page);
  const laptop = await addAuthenticator(cdp, true);
  await page.goto(before.setupLink!);
  await expect(page.getByLabel("Kubernetes username")).toHaveValue(USER);
  await press(page, "Register passkey");
  await expect(page.getByRole("heading", { name: /^Hello, / })).toBeVisible();
  await before.stop();
  await exited(before);

  const server = await startCountersign(undefined, ["--authenticator-allowlist", join(fixtures, "authenticators.yaml")], { dataDir: data });
  try {
    await page.goto(`${server.publicUrl}/login`);
    await press(page, "Sign in with a passkey");
    await expect(page.getByRole("heading", { name: /^Hello, / })).toBeVisible();
    await page.goto(`${server.publicUrl}/account`);
    await expect(row(page, "First passkey").locator("[data-passkey-status]")).toHaveText("Sign-in only");
    await expect(row(page, "First passkey").getByText("has not proven it is an approved security key")).toBeVisible();
    await expect(page.locator("[data-approved-models]")).toContainText("Chromium virtual authenticator");

    const denied = await webhook(server, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 2));
    const [, link] = LINK.exec(denied.json.response.status.message)!;
    await page.goto(link);
    await press(page, "Confirm with passkey");
    await expect(page.getByRole("status").filter({ hasText: "approved list" })).toBeVisible();

    // An approved key, proven by its attestation: added, shown with its model, and it confirms.
    await swapAuthenticator(cdp, laptop);
    await page.goto(`${server.publicUrl}/account`);
    await page.locator("#add-passkey-name").fill("Approved key");
    await press(page, "Add passkey");
    await expect(page.getByText("Passkey added.")).toBeVisible();
    await expect(row(page, "Approved key").locator("[data-passkey-status]")).toHaveText("Active");
    await expect(row(page, "Approved key").locator("[data-passkey-model]")).toHaveText("Chromium virtual authenticator");
    await styled(page);
    await page.screenshot({ path: join(docs, "account-keys-allowlist.png"), fullPage: true });

    await page.goto(link);
    await press(page, "Confirm with passkey");
    await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
    const token = (await page.locator("[data-grant-token]").textContent())!.trim();
    const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
    expect(claims.evidence.aaguid).toBe(CHROMIUM_AAGUID);
    const kinds = execFileSync("sqlite3", [join(data, "countersign.db"), "select kind from audit_events order by seq"], { encoding: "utf8" });
    expect(kinds).toContain("stepup.failed");
    expect(server.output()).not.toContain("panicked");
  } finally {
    await context.close();
    await server.stop();
    rmSync(data, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  }
});
