// The portal as a newcomer meets it (issue 9): the truth about grants, the decision on the first
// screen, keyboard and screen-reader paths, pages without script, dark mode, accessibility, phones.
import { test, expect, Page, BrowserContext } from "@playwright/test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { addAuthenticator, axeAndScreenshots, Countersign, deploymentUpdate, startCountersign, webhook } from "./support";

const USER = "alice@example.com";
const LINK = /confirm at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8}))/;
const shots = join(__dirname, "..", "..", "docs", "screenshots");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

test.describe.configure({ mode: "serial" });

let cs: Countersign;
let context: BrowserContext;
let page: Page;
const pageErrors: string[] = [];
/** Challenge pages in each state, kept by the tests that made them, for axe and the screenshots. */
const links: Record<string, string> = {};

async function deny(replicas: number): Promise<{ link: string; code: string }> {
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", replicas));
  expect(denied.json.response.allowed).toBe(false);
  const m = LINK.exec(denied.json.response.status.message)!;
  return { link: m[1], code: m[2] };
}

async function admitted(replicas: number): Promise<boolean> {
  const r = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", replicas, `${Math.random()}`));
  return r.json.response.allowed;
}

async function hydrated(p: Page) {
  await expect(p.locator("html")).toHaveAttribute("data-hydrated", "yes");
}

/** The element fits in the viewport without scrolling. */
async function onFirstScreen(p: Page, selector: string) {
  const box = await p.locator(selector).boundingBox();
  const viewport = p.viewportSize()!;
  expect(box, selector).not.toBeNull();
  expect(box!.y + box!.height, `${selector} bottom at ${box!.y + box!.height}px`).toBeLessThanOrEqual(viewport.height);
  expect(box!.x + box!.width).toBeLessThanOrEqual(viewport.width);
}

async function confirm(p: Page, link: string) {
  await p.goto(link);
  await hydrated(p);
  await p.getByRole("button", { name: "Confirm with passkey" }).click();
  await expect(p.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
}

test.beforeAll(async ({ browser }) => {
  cs = await startCountersign(undefined, ["--first-admin", USER]);
  context = await browser.newContext({ viewport: DESKTOP });
  page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await addAuthenticator(await context.newCDPSession(page), true);
  mkdirSync(shots, { recursive: true });
});

test.afterAll(async () => {
  await context?.close();
  await cs?.stop();
});

test("a new administrator names the first passkey and is shown what to do next", async () => {
  await page.goto(cs.setupLink!);
  await expect(page).toHaveTitle("Create your administrator account · Countersign");
  await page.getByLabel("Display name").fill("Alice Example");
  await page.getByLabel("Name for this passkey").fill("Laptop key");
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Alice Example", level: 1 })).toBeVisible();
  const firstRun = page.locator("[data-first-run]");
  await expect(firstRun).toContainText("Connect the cluster");
  await expect(firstRun).toContainText("countersign webhook-config");
  await expect(firstRun).toContainText("countersign user invite");
  await page.getByRole("link", { name: "Passkeys" }).click();
  await expect(page.locator("[data-passkey-name]")).toHaveText(["Laptop key"]);
  // The raw AAGUID is not what people read.
  await expect(page.locator("[data-passkey-row]")).not.toContainText(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}/);
});

test("the challenge page puts the decision first, in people's words", async () => {
  const { link, code } = await deny(1);
  for (const viewport of [DESKTOP, PHONE]) {
    await page.setViewportSize(viewport);
    await page.goto(link);
    await expect(page.getByRole("heading", { name: "Change Deployment api", level: 1 })).toBeVisible();
    await expect(page).toHaveTitle("Change Deployment api · Countersign");
    await expect(page.locator("[data-summary]")).toContainText(`${USER} asked to change Deployment api in namespace payments on cluster e2e`);
    await expect(page.locator('[data-change="spec.replicas"]')).toHaveText("spec.replicas 3 → 1");
    await onFirstScreen(page, "button:has-text('Confirm with passkey')");
  }
  await page.setViewportSize(DESKTOP);
  // The compact diff shows the change with context; the whole object is one click away.
  const compact = page.locator("[data-diff-view] > pre");
  await expect(compact.getByText("+   replicas: 1")).toBeVisible();
  await expect(compact.locator('[data-diff="@"]').first()).toContainText("unchanged line");
  await page.getByText(/Show the whole object/).click();
  await expect(page.locator("[data-diff-view] details pre")).toContainText("image: registry.example.com/payments/api:1.42.0");
  // The home list names the object, the place and the state.
  await page.goto(cs.publicUrl);
  const row = page.locator(`[data-request="${code}"]`);
  await expect(row).toContainText("Change Deployment api");
  await expect(row).toContainText("in namespace payments");
  await expect(row.locator("[data-standing]")).toHaveText("Waiting for step-up");
});

test("the skip link works after hydration, and confirming updates the page in place with focus on the result", async () => {
  const { link } = await deny(1);
  links["challenge-granted"] = link;
  await page.goto(link);
  await hydrated(page);
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();
  await page.keyboard.press("Enter");
  await expect(page.locator("main#main")).toBeFocused();
  expect(new URL(page.url()).pathname).toMatch(/^\/c\//);

  let navigations = 0;
  const count = (f: any) => f === page.mainFrame() && navigations++;
  page.on("framenavigated", count);
  await page.getByRole("button", { name: "Confirm with passkey" }).click();
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  await expect(page.locator("#outcome-heading")).toBeFocused();
  await expect(page.locator("[data-grant-uses]")).toHaveText("1 use left");
  // The islands that came with the refreshed page are live too: a relative time gains the
  // viewer's own zone beside UTC on hover once hydrated.
  await expect(page.locator("[data-outcome] time").first()).toHaveAttribute("title", / · .*UTC$/);
  page.off("framenavigated", count);
  expect(navigations, "the confirm did not reload the page").toBe(0);
});

test("a used grant says it was used, on its page and in the list", async () => {
  // The grant of the previous test is still live: this denial is for another change.
  const { link, code } = await deny(6);
  links["challenge-used"] = link;
  await confirm(page, link);
  expect(await admitted(6)).toBe(true);
  await page.reload();
  await expect(page.getByRole("heading", { name: "Used — this grant has let its request through" })).toBeVisible();
  await expect(page.locator("[data-grant-uses]")).toHaveText("None left");
  await expect(page.getByText("Granted — run your command again")).toHaveCount(0);
  await expect(page.locator("main span[data-standing]")).toHaveText("Used");
  await page.goto(cs.publicUrl);
  await expect(page.locator(`[data-request="${code}"] [data-standing]`)).toHaveText("Used");
});

test("an administrator revokes the right grant from a phone, and its page says by whom", async () => {
  const { link, code } = await deny(2);
  links["challenge-revoked"] = link;
  await confirm(page, link);
  const grantId = await page.locator("[data-grant-id]").getAttribute("data-grant-id");
  await page.setViewportSize(PHONE);
  await page.goto(`${cs.publicUrl}/admin/grants`);
  await hydrated(page);
  const row = page.locator(`[data-grant-row="${grantId}"]`);
  await expect(row).toContainText(USER);
  await expect(row).toContainText("Change deployment api");
  await expect(row).toContainText("in namespace payments");
  await expect(row).toContainText("1 use left");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, "the grants page scrolls sideways on a phone").toBeLessThanOrEqual(PHONE.width);
  await row.getByText("Revoke…").click();
  await expect(row.getByRole("dialog")).toContainText("Revoke this grant?");
  await page.screenshot({ path: join(shots, "grants-revoke-dialog-light-phone.png"), fullPage: true });
  // Revoke is within the screen's width (it used to sit off to the right).
  const revokeBox = (await row.getByRole("button", { name: "Revoke grant" }).boundingBox())!;
  expect(revokeBox.x + revokeBox.width).toBeLessThanOrEqual(PHONE.width);
  await row.getByRole("button", { name: "Revoke grant" }).click();
  await expect(page.locator("[data-toast]")).toContainText("Grant revoked");
  await expect(page.locator(`[data-grant-row="${grantId}"]`)).toHaveCount(0);
  await page.setViewportSize(DESKTOP);
  expect(await admitted(2)).toBe(false);

  await page.goto(link);
  await expect(page.getByRole("heading", { name: `Revoked by ${USER}` })).toBeVisible();
  await expect(page.locator("[data-outcome=revoked]")).toContainText("The webhook refuses this grant now");
  await page.goto(cs.publicUrl);
  await expect(page.locator(`[data-request="${code}"] [data-standing]`)).toHaveText("Revoked");
});

test("pages render their content without JavaScript", async ({ browser }) => {
  const { link } = await deny(7);
  const noScript = await browser.newContext({ javaScriptEnabled: false, storageState: await context.storageState() });
  const p = await noScript.newPage();
  await p.goto(link);
  await expect(p.getByRole("heading", { name: "Change Deployment api", level: 1 })).toBeVisible();
  await expect(p.locator('[data-change="spec.replicas"]')).toHaveText("spec.replicas 3 → 7");
  await expect(p.getByText("Loading…")).toHaveCount(0);
  await p.goto(cs.publicUrl);
  await expect(p.locator("[data-requests] li").first()).toContainText("Change Deployment api");
  await p.goto(`${cs.publicUrl}/admin/grants`);
  await expect(p.getByRole("heading", { name: "Grants", level: 1 })).toBeVisible();
  await noScript.close();
  const anonymous = await browser.newContext({ javaScriptEnabled: false });
  const a = await anonymous.newPage();
  await a.goto(cs.publicUrl);
  await expect(a.getByRole("link", { name: "Sign in" })).toBeVisible();
  await expect(a.locator("[data-no-account]")).toContainText("ask your Countersign administrator for a setup link");
  await anonymous.close();
});

test("dark mode follows the system and the toggle is remembered", async ({ browser }) => {
  const dark = await browser.newContext({ colorScheme: "dark", storageState: await context.storageState() });
  const p = await dark.newPage();
  await p.goto(cs.publicUrl);
  const background = () => p.evaluate(() => getComputedStyle(document.body).backgroundColor);
  expect(await background()).toBe("rgb(11, 17, 32)");
  await hydrated(p);
  await p.getByRole("button", { name: "Light" }).click();
  expect(await background()).toBe("rgb(248, 250, 252)");
  await p.reload();
  expect(await background()).toBe("rgb(248, 250, 252)");
  await expect(p.getByRole("button", { name: "Light" })).toHaveAttribute("aria-pressed", "true");
  await p.getByRole("button", { name: "Dark" }).click();
  // The choice is saved (and the page settled) before the reload.
  await expect(p.getByRole("button", { name: "Dark" })).toHaveAttribute("aria-pressed", "true");
  await p.waitForLoadState("load");
  await p.reload();
  expect(await background()).toBe("rgb(11, 17, 32)");
  await expect(p.locator("html")).toHaveClass("dark");
  await dark.close();
});

test("errors say what happened and what to do next", async ({ browser }) => {
  const anonymous = await browser.newContext();
  const a = await anonymous.newPage();
  await addAuthenticator(await anonymous.newCDPSession(a), true);
  await a.goto(`${cs.publicUrl}/login`);
  await hydrated(a);
  await a.getByLabel("Username").fill("nobody@example.com");
  await a.getByRole("button", { name: "Sign in with username" }).click();
  const status = a.locator("[data-status][data-tone=error]").first();
  await expect(status).toContainText("No passkey answered for this username");
  // An error never looks like progress text.
  const colour = await status.evaluate((e) => getComputedStyle(e).color);
  expect(colour).toBe("rgb(185, 28, 28)");
  await a.goto(`${cs.publicUrl}/admin/grants`);
  await expect(a.getByRole("heading", { name: "Sign in to see grants", level: 1 })).toBeVisible();
  await expect(a.getByText("error running server function")).toHaveCount(0);
  await a.goto(cs.setupLink!);
  await expect(a.getByRole("heading", { name: "This setup link no longer works", level: 1 })).toBeVisible();
  await expect(a.getByRole("link", { name: "Sign in" }).last()).toBeVisible();
  const missing = await a.goto(`${cs.publicUrl}/no/such/page`);
  expect(missing!.status()).toBe(404);
  await expect(a.getByRole("heading", { name: "Page not found", level: 1 })).toBeVisible();
  await anonymous.close();

  // "End all sessions" asks first, then says what it did.
  const second = await browser.newContext({ storageState: await context.storageState() });
  const s = await second.newPage();
  await s.goto(`${cs.publicUrl}/c/ZZZZZZZZ`);
  await expect(s.getByRole("heading", { name: "No request has this code", level: 1 })).toBeVisible();
  await hydrated(s);
  await s.locator("[data-account-menu] > summary").click();
  await s.getByText("End all sessions…").click();
  await expect(s.getByRole("dialog")).toContainText("End every session of yours?");
  await s.getByRole("button", { name: "End all sessions", exact: true }).click();
  await expect(s.locator("[data-done]")).toContainText("Every session of yours has ended");
  await second.close();
  expect(pageErrors).toEqual([]);
});

/** Every page state, for axe and the screenshots. Runs last: it needs a fresh sign-in. */
test("every page passes axe in both colour schemes; screenshots for the docs", async ({ browser }) => {
  test.setTimeout(240_000);
  const { link: waiting } = await deny(4);
  const pages: [string, string, boolean][] = [
    ["home-signed-out", cs.publicUrl, false],
    ["login", `${cs.publicUrl}/login`, false],
    ["setup-used", cs.setupLink!, false],
    ["not-found", `${cs.publicUrl}/no/such/page`, false],
    ["home", cs.publicUrl, true],
    ["challenge-waiting", waiting, true],
    ["challenge-granted", links["challenge-granted"], true],
    ["challenge-used", links["challenge-used"], true],
    ["challenge-revoked", links["challenge-revoked"], true],
    ["challenge-unknown", `${cs.publicUrl}/c/ZZZZZZZZ`, true],
    ["grants", `${cs.publicUrl}/admin/grants`, true],
    ["guardrails", `${cs.publicUrl}/admin/guardrails`, true],
    ["guardrail-versions", `${cs.publicUrl}/admin/guardrails/versions`, true],
    ["passkeys", `${cs.publicUrl}/account`, true],
  ];
  await signInAgain();
  expect(await axeAndScreenshots(browser, context, pages)).toEqual([]);
});

/** Sign the first context in again (the previous test ended every session) with its passkey. */
async function signInAgain() {
  await page.goto(`${cs.publicUrl}/login`);
  await hydrated(page);
  await page.getByLabel("Username").fill(USER);
  await page.getByRole("button", { name: "Sign in with username" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Alice Example" })).toBeVisible();
}
