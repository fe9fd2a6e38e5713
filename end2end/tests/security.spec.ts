// Sessions, CSRF and roles in a real browser: the session id changes at sign-in, a POST without the
// page's CSRF token is refused, and an admin revokes a live grant from the Grants page. Finding 12:
// after signing in, the browser follows `next` only to a path on the portal.
import { test, expect, Page } from "@playwright/test";
import { createServer, Server } from "node:http";
import { join } from "node:path";
import { addAuthenticator, Countersign, deploymentUpdate, freePort, startCountersign, webhook } from "./support";

const USER = "ada@example.com";
const LINK = /confirm at (http:\/\/localhost:\d+\/c\/[2-9A-HJ-NP-Z]{8})/;
const COOKIE = "countersign_session";

let cs: Countersign;

test.beforeAll(async () => {
  cs = await startCountersign(undefined, ["--first-admin", USER]);
});

test.afterAll(async () => {
  await cs?.stop();
});

test("session id replaced at sign-in, CSRF token required, admin revokes a grant", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const cdp = await context.newCDPSession(page);
  await addAuthenticator(cdp, true);

  // An attacker plants a session id of their choosing before the victim signs in.
  const before = "AAAAAAAAAAAAAAAAAAAAAA";
  await context.addCookies([{ name: COOKIE, value: before, url: cs.publicUrl }]);
  // Before signing in, a page view stores no session (finding 9): its CSRF token rides in a cookie.
  await page.goto(cs.setupLink!);
  const cookieOf = async (name: string) => (await context.cookies()).find((c) => c.name === name);
  const sessionOf = async () => (await cookieOf(COOKIE))?.value;
  const csrfCookie = await cookieOf("countersign_csrf");
  expect(csrfCookie?.httpOnly, "the CSRF cookie is HttpOnly").toBe(true);
  expect(csrfCookie?.sameSite).toBe("Strict");
  const tokenBefore = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  expect(tokenBefore).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(csrfCookie?.value, "the page embeds the cookie's token").toBe(tokenBefore);

  await expect(page.getByLabel("Kubernetes username")).toHaveValue(USER);
  await page.getByLabel("Display name").fill("Ada Admin");
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Ada Admin" })).toBeVisible();
  const after = await sessionOf();
  expect(after).toBeTruthy();
  expect(after, "the session id survived sign-in").not.toBe(before);
  const tokenAfter = await page.locator('meta[name="csrf-token"]').getAttribute("content");
  expect(tokenAfter, "the CSRF token survived sign-in").not.toBe(tokenBefore);

  // The planted (pre-sign-in) session id is not signed in.
  const planted = await browser.newContext();
  await planted.addCookies([{ name: COOKIE, value: before!, url: cs.publicUrl }]);
  const plantedPage = await planted.newPage();
  await plantedPage.goto(cs.publicUrl);
  await expect(plantedPage.getByRole("heading", { name: "Trust on demand." })).toBeVisible();
  await planted.close();

  // A step-up gives a live grant.
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 1));
  const link = LINK.exec(denied.json.response.status.message)![1];
  await page.goto(link);
  await page.getByRole("button", { name: "Confirm with passkey" }).click();
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  const grantId = await page.locator("[data-grant-id]").getAttribute("data-grant-id");

  // A same-origin POST without the page's token changes nothing.
  const forged = await page.evaluate(async (id) => {
    const res = await fetch("/api/revoke_grant", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `id=${encodeURIComponent(id!)}`,
    });
    return res.status;
  }, grantId);
  expect(forged).toBe(403);

  // The admin's Grants page lists it; revoking asks for confirmation, then takes effect at once.
  await page.goto(cs.publicUrl);
  await page.getByRole("link", { name: "Grants" }).click();
  await expect(page.getByRole("heading", { name: "Grants", exact: true })).toBeVisible();
  const row = page.locator(`[data-grant-row="${grantId}"]`);
  await expect(row).toContainText(USER);
  await expect(row).toContainText("prod-workloads");
  await row.getByText("Revoke…").click();
  // The whole confirmation shows on a desktop, not cut off by the table.
  const confirm = row.getByRole("button", { name: "Revoke grant" });
  await expect(confirm).toBeInViewport();
  await page.screenshot({ path: join(__dirname, "..", "..", "docs", "screenshots", "grants-revoke-desktop.png") });
  await confirm.click();
  await expect(page.getByText("Grant revoked.")).toBeVisible();
  await expect(page.getByText("No live grants")).toBeVisible();
  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 1, "4713"));
  expect(retry.json.response.allowed, "a revoked grant still admitted").toBe(false);

  // Sign out everywhere ends this session too.
  await page.locator("[data-account-menu] > summary").click();
  await page.getByText("End all sessions…").click();
  await page.getByRole("button", { name: "End all sessions", exact: true }).click();
  await expect(page.locator("[data-done]")).toContainText("Every session of yours has ended");
  expect(pageErrors).toEqual([]);
  await context.close();
});

/** Wait for the WebAuthn script, then press the button. */
async function press(page: Page, name: string) {
  await expect.poll(() => page.evaluate(() => document.documentElement.dataset.webauthnReady)).toBe("yes");
  await page.getByRole("button", { name, exact: true }).click();
}

test("finding 12: after sign-in the browser never follows next off the portal", async ({ browser }) => {
  // The attacker's site, counting visits.
  let visits = 0;
  const evilPort = await freePort();
  const evil: Server = createServer((_req, res) => {
    visits += 1;
    res.end("evil");
  });
  await new Promise<void>((ok) => evil.listen(evilPort, "127.0.0.1", ok));
  const evilHost = `127.0.0.1:${evilPort}`;
  const own = await startCountersign(undefined, ["--first-admin", "eve-target@example.com"]);
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    await addAuthenticator(await context.newCDPSession(page), true);
    await page.goto(own.setupLink!);
    await expect(page.getByLabel("Kubernetes username")).toHaveValue("eve-target@example.com");
    await page.getByLabel("Display name").fill("Target");
    await page.getByRole("button", { name: "Register passkey" }).click();
    await expect(page.getByRole("heading", { name: "Hello, Target" })).toBeVisible();

    for (const next of [
      `//${evilHost}/`,
      `/\\${evilHost}/`,
      `/\t/${evilHost}/`,
      `/\n/${evilHost}/`,
      `/%09/${evilHost}/`,
      `/.//${evilHost}/`,
      `http://${evilHost}/`,
    ]) {
      await page.locator("[data-account-menu] > summary").click();
      await page.getByRole("button", { name: "Sign out", exact: true }).click();
      await page.goto(`${own.publicUrl}/login?next=${encodeURIComponent(next)}`);
      await page.getByLabel("Username").fill("eve-target@example.com");
      await press(page, "Sign in with username");
      await page.waitForLoadState("load");
      await expect(page.locator("[data-account-menu]")).toBeVisible();
      expect(new URL(page.url()).origin, `next=${JSON.stringify(next)} left the portal`).toBe(own.publicUrl);
    }
    expect(visits, "the browser reached the attacker's site").toBe(0);

    // A path on the portal is still followed.
    await page.locator("[data-account-menu] > summary").click();
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.goto(`${own.publicUrl}/login?next=${encodeURIComponent("/account")}`);
    await page.getByLabel("Username").fill("eve-target@example.com");
    await press(page, "Sign in with username");
    await expect(page).toHaveURL(`${own.publicUrl}/account`);
    expect(pageErrors).toEqual([]);
    await context.close();
  } finally {
    await own.stop();
    evil.close();
  }
});
