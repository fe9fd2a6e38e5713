// Issue 18 in a browser, in store mode: the guardrails in force with their last change, the saved
// versions, and two versions compared; axe in both colour schemes; screenshots for the docs.
import { test, expect, Page, BrowserContext } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { addAuthenticator, axeAndScreenshots, Countersign, SHOTS, startCountersign } from "./support";

const root = join(__dirname, "..", "..");
const DESKTOP = { width: 1280, height: 800 };

test.describe.configure({ mode: "serial" });

let cs: Countersign;
let context: BrowserContext;
let page: Page;

test.beforeAll(async ({ browser }) => {
  cs = await startCountersign(null, ["--first-admin", "alice@example.com"]);
  context = await browser.newContext({ viewport: DESKTOP });
  page = await context.newPage();
  await addAuthenticator(await context.newCDPSession(page), true);
  mkdirSync(SHOTS, { recursive: true });
  await page.goto(cs.setupLink!);
  await page.getByLabel("Display name").fill("Alice Example");
  await page.getByLabel("Name for this passkey").fill("Laptop key");
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Alice Example", level: 1 })).toBeVisible();
});

test.afterAll(async () => {
  await context?.close();
  await cs?.stop();
});

test("a saved change shows on the guardrails page, in the versions and compared", async ({ browser }) => {
  test.setTimeout(180_000);
  // v1 is the shipped library; v2 makes scale-to-zero a dry run, saved with the CLI.
  const bin = process.env.COUNTERSIGN_BIN || join(root, "target", "release", "countersign");
  const draft = mkdtempSync(join(tmpdir(), "countersign-draft-"));
  const library = join(root, "policies", "library");
  const scale = readFileSync(join(library, "scale-to-zero.yaml"), "utf8");
  expect(scale).toContain("spec:\n");
  execFileSync(bin, ["policy", "export", "--to", draft, "--data-dir", cs.dataDir], { cwd: root });
  const file = join(draft, "scale-to-zero.yaml");
  writeFileSync(file, readFileSync(file, "utf8").replace("spec:\n", "spec:\n  mode: dryRun\n"));
  const applied = execFileSync(bin, ["policy", "apply", draft, "--reason", "watch scale-to-zero before enforcing it", "--data-dir", cs.dataDir], { cwd: root }).toString();
  expect(applied).toContain("v2: saved");

  // Every replica follows the store within a second or so.
  await expect.poll(() => /put in force\S*\s\S*version\S*=\S*v2/.test(cs.output()), { timeout: 15_000 }).toBe(true);
  await page.goto(`${cs.publicUrl}/admin/guardrails`);
  await expect(page.locator("[data-version]")).toHaveAttribute("data-version", "v2");
  const row = page.locator('[data-guardrail-row="scale-to-zero"]');
  await expect(row).toContainText("Dry run");
  await expect(row.locator("[data-changed-in]")).toHaveAttribute("data-changed-in", "2");
  await expect(page.locator('[data-guardrail-row="privileged-containers"] [data-changed-in]')).toHaveAttribute("data-changed-in", "1");

  await page.getByRole("link", { name: "see the versions" }).click();
  await expect(page.locator('[data-version-row="2"]')).toContainText("watch scale-to-zero before enforcing it");
  await page.locator('[data-version-row="2"]').getByRole("link", { name: "What changed" }).click();
  const compared = page.locator('[data-comparison="1-2"]');
  await expect(compared).toBeVisible();
  await expect(compared.locator("[data-difference]")).toHaveCount(1);
  await expect(compared.locator('[data-difference="scale-to-zero"] [data-diff="+"]')).toContainText("mode: dryRun");
  const comparison = page.url();

  expect(await axeAndScreenshots(browser, context, [
    ["guardrails-store", `${cs.publicUrl}/admin/guardrails`, true],
    ["guardrail-compare", comparison, true],
  ])).toEqual([]);
});
