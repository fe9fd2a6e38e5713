// Approvals (issue 10): a peer AND a manager countersign with their own security keys; the
// requester's page follows live; a rejection is told; a failed step-up counts for nothing.
import { test, expect, Page, Browser } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { Countersign, deploymentUpdate, invitedPerson, Person, startCountersign, statefulSetDelete, webhook } from "./support";

const REQUESTER = "alice@example.com";
const LINK = /ask for it at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8}))/;
const REASON = "INC-4411: scale down during the failover";
const shots = join(__dirname, "..", "..", "docs", "screenshots");

test.describe.configure({ mode: "serial" });

let cs: Countersign;
const people: Record<string, Person> = {};
const pageErrors: string[] = [];

async function deny(replicas: number): Promise<{ link: string; code: string; message: string }> {
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(REQUESTER, "payments", replicas));
  expect(denied.json.response.allowed).toBe(false);
  const message: string = denied.json.response.status.message;
  const m = LINK.exec(message)!;
  expect(m, message).not.toBeNull();
  return { link: m[1], code: m[2], message };
}

function person(browser: Browser, username: string, role: string, groups: string[]): Promise<Person> {
  return invitedPerson(browser, cs, username, role, groups, pageErrors);
}

async function hydrated(p: Page) {
  await expect(p.locator("html")).toHaveAttribute("data-hydrated", "yes");
}

async function ask(link: string) {
  const { page } = people.alice;
  await page.goto(link);
  await hydrated(page);
  await expect(page.getByRole("heading", { name: "This change needs approval: ask for it" })).toBeVisible();
  await page.getByLabel("Why do you need it?").fill(REASON);
  await page.getByRole("button", { name: "Ask for approval with your passkey" }).click();
  await expect(page.getByRole("heading", { name: "Waiting for approvers" })).toBeVisible();
}

async function decide(who: string, code: string, decision: "Approve" | "Reject", reason = "") {
  const { page } = people[who];
  await page.goto(`${cs.publicUrl}/approvals/${code}`);
  await hydrated(page);
  if (reason) await page.getByLabel("Your reason").fill(reason);
  await page.getByRole("button", { name: `${decision} with passkey` }).click();
}

test.beforeAll(async ({ browser }) => {
  cs = await startCountersign(join(__dirname, "..", "fixtures", "approval-guardrails.yaml"));
  mkdirSync(shots, { recursive: true });
  people.alice = await person(browser, REQUESTER, "engineer", []);
  people.bob = await person(browser, "bob", "approver", ["payments-oncall"]);
  people.carol = await person(browser, "carol", "approver", ["payments-managers"]);
});

test.afterAll(async () => {
  for (const p of Object.values(people)) await p.context.close();
  await cs?.stop();
});

test("a peer AND a manager approve; the requester's page follows live; the retry is admitted once", async () => {
  const { link, code, message } = await deny(1);
  expect(message).toMatch(/^approval required by guardrail "payments-escalation": ask for it at /);
  await ask(link);
  const alice = people.alice.page;
  await expect(alice.locator('[data-list="payments-oncall"]')).toContainText("Nobody yet");
  await expect(alice.locator("[data-reason]")).toHaveText(REASON);
  await alice.screenshot({ path: join(shots, "approval-waiting-desktop.png"), fullPage: true });

  // Bob's header counts what waits for him; the queue shows who asks, why and for what.
  const bob = people.bob.page;
  await bob.goto(cs.publicUrl);
  await expect(bob.locator("[data-approvals-badge]")).toHaveText(/^1/);
  await hydrated(bob);
  await bob.getByRole("link", { name: /Approvals/ }).click();
  await expect(bob.getByRole("heading", { name: "Approvals", level: 1 }), pageErrors.join("\n")).toBeVisible();
  const item = bob.locator(`[data-queue-item="${code}"]`);
  await expect(item).toContainText("Change Deployment api");
  await expect(item).toContainText(REQUESTER);
  await expect(item).toContainText(REASON);
  await expect(item).toContainText("Needs you");
  await bob.screenshot({ path: join(shots, "approval-queue-desktop.png"), fullPage: true });
  await item.getByRole("link", { name: "Review" }).click();
  await expect(bob.locator('[data-change="spec.replicas"]')).toHaveText("spec.replicas 3 → 1");
  await hydrated(bob);
  await bob.screenshot({ path: join(shots, "approval-review-desktop.png"), fullPage: true });
  await decide("bob", code, "Approve", "Checked the failover plan");
  await expect(bob.locator("[data-cannot-decide]")).toHaveText("You approved it.");

  // Alice did not reload: her page shows Bob's approval, then the grant.
  await expect(alice.locator('[data-list="payments-oncall"]')).toContainText("Approved by bob");
  await expect(alice.locator('[data-list="payments-managers"]')).toContainText("1 more needed");
  expect((await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(REQUESTER, "payments", 1))).json.response.allowed).toBe(false);
  await decide("carol", code, "Approve");
  await expect(alice.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  await expect(alice.locator("[data-decision]")).toHaveCount(2);

  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(REQUESTER, "payments", 1));
  expect(retry.json.response.allowed).toBe(true);
  const again = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(REQUESTER, "payments", 1));
  expect(again.json.response.allowed).toBe(false);
  expect(pageErrors).toEqual([]);
});

test("a rejection ends it, and the page and the next retry say so with the reason", async () => {
  const { link, code } = await deny(2);
  await ask(link);
  await decide("bob", code, "Reject", "Not during the payments freeze");
  const alice = people.alice.page;
  await expect(alice.getByRole("heading", { name: "Rejected by bob" })).toBeVisible();
  await expect(alice.locator("[data-outcome=rejected]")).toContainText("Not during the payments freeze");
  // The manager can no longer approve it.
  const carol = people.carol.page;
  await carol.goto(`${cs.publicUrl}/approvals/${code}`);
  await expect(carol.getByRole("heading", { name: "Rejected", exact: true })).toBeVisible();
  await expect(carol.getByRole("button", { name: "Approve with passkey" })).toHaveCount(0);
  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(REQUESTER, "payments", 2));
  expect(retry.json.response.status.message).toContain('the last request was rejected by bob: "Not during the payments freeze"');
});

test("an approver whose step-up fails approves nothing", async () => {
  const { link, code } = await deny(5);
  await ask(link);
  const carol = people.carol;
  await carol.cdp.send("WebAuthn.setUserVerified", { authenticatorId: carol.authenticator, isUserVerified: false });
  await decide("carol", code, "Approve");
  await expect(carol.page.locator("[data-status]")).toHaveAttribute("data-tone", "error");
  await carol.cdp.send("WebAuthn.setUserVerified", { authenticatorId: carol.authenticator, isUserVerified: true });
  await carol.page.goto(`${cs.publicUrl}/approvals/${code}`);
  await expect(carol.page.locator('[data-list="payments-managers"]')).toContainText("Nobody yet");
  await expect(carol.page.getByRole("button", { name: "Approve with passkey" })).toBeVisible();
  // Alice withdraws it instead.
  const alice = people.alice.page;
  await alice.getByText("Withdraw request…").click();
  await alice.getByRole("button", { name: "Withdraw request", exact: true }).click();
  await expect(alice.getByRole("heading", { name: "You withdrew this request" })).toBeVisible();
});

test("on a phone the queue and the waiting page fit the screen", async () => {
  const { link, code } = await deny(4);
  await ask(link);
  const phone = { width: 390, height: 844 };
  const bob = people.bob.page;
  await bob.setViewportSize(phone);
  await bob.goto(`${cs.publicUrl}/approvals`);
  await expect(bob.locator(`[data-queue-item="${code}"]`)).toBeVisible();
  const width = await bob.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(phone.width);
  await bob.screenshot({ path: join(shots, "approval-queue-phone.png"), fullPage: true });
  await bob.locator(`[data-queue-item="${code}"]`).getByRole("link", { name: "Review" }).click();
  await expect(bob.getByRole("button", { name: "Approve with passkey" })).toBeVisible();
  expect(await bob.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(phone.width);
  await bob.screenshot({ path: join(shots, "approval-review-phone.png"), fullPage: true });
  const alice = people.alice.page;
  await alice.setViewportSize(phone);
  await alice.reload();
  await expect(alice.getByRole("heading", { name: "Waiting for approvers" })).toBeVisible();
  expect(await alice.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(phone.width);
  await alice.screenshot({ path: join(shots, "approval-waiting-phone.png"), fullPage: true });
});

test("the approval pages pass axe in both colour schemes", async () => {
  const { link, code } = await deny(6);
  await ask(link);
  const pages: [Page, string][] = [
    [people.alice.page, link],
    [people.bob.page, `${cs.publicUrl}/approvals`],
    [people.bob.page, `${cs.publicUrl}/approvals/${code}`],
  ];
  const violations: string[] = [];
  for (const scheme of ["light", "dark"] as const) {
    for (const [p, url] of pages) {
      await p.emulateMedia({ colorScheme: scheme });
      await p.goto(url);
      await hydrated(p);
      const results = await new AxeBuilder({ page: p }).analyze();
      const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
      violations.push(...bad.map((v) => `${url}/${scheme}: ${v.id} ${v.nodes.map((n) => n.target).join(" ")}`));
    }
  }
  await people.bob.page.goto(`${cs.publicUrl}/approvals/${code}`);
  await people.bob.page.screenshot({ path: join(shots, "approval-review-dark-phone.png"), fullPage: true });
  expect(violations).toEqual([]);
});

test("an admin changes an approver's groups in place on the users page", async ({ browser }) => {
  const dana = await person(browser, "dana", "admin", []);
  const page = dana.page;
  await page.goto(`${cs.publicUrl}/admin/users`);
  await hydrated(page);
  let navigations = 0;
  page.on("framenavigated", (f) => f === page.mainFrame() && navigations++);
  const row = page.locator('[data-user-row="bob"]');
  await expect(row.locator("[data-user-groups]")).toHaveText("payments-oncall");
  await row.getByText("Edit groups…").click();
  await row.getByLabel("Groups of bob").fill("payments-oncall, sre");
  await row.getByRole("button", { name: "Save groups" }).click();
  await expect(page.locator("[data-toast]")).toHaveText("Groups saved: payments-oncall, sre.");
  await expect(row.locator("[data-user-groups]")).toHaveText("payments-oncall, sre");
  expect(navigations, "saving reloaded the page").toBe(0);
  // The server has it: a fresh load shows the same.
  await page.reload();
  await expect(page.locator('[data-user-row="bob"] [data-user-groups]')).toHaveText("payments-oncall, sre");
  await dana.context.close();
});

test("a request two guardrails need a grant for: one denial names both, one approval, the first retry is admitted", async () => {
  const review = () => statefulSetDelete(REQUESTER, "payments", "ledger");
  const denied = await webhook(cs, "POST", "/k8s/admit", review());
  const message: string = denied.json.response.status.message;
  expect(message).toMatch(/^approval required by guardrails "payments-statefulset-deletes", "statefulset-deletes": ask for it at /);
  expect((denied.json.response.warnings as string[]).join("\n")).toContain("Deleting a StatefulSet needs a fresh key touch.");
  const m = LINK.exec(message)!;
  await ask(m[1]);
  const alice = people.alice.page;
  await expect(alice.getByText("Guardrails payments-statefulset-deletes, statefulset-deletes")).toBeVisible();
  await decide("bob", m[2], "Approve", "Checked the ledger backup");
  await decide("carol", m[2], "Approve");
  await expect(alice.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  await alice.screenshot({ path: join(shots, "two-guardrails-granted-phone.png"), fullPage: true });
  // It is true: the first retry goes through, under both guardrails, once.
  const retry = await webhook(cs, "POST", "/k8s/admit", review());
  expect(retry.json.response.allowed, JSON.stringify(retry.json.response)).toBe(true);
  expect(retry.json.response.auditAnnotations.guardrail.split(",").sort()).toEqual(["payments-statefulset-deletes", "statefulset-deletes"]);
  const again = await webhook(cs, "POST", "/k8s/admit", review());
  expect(again.json.response.allowed).toBe(false);
  expect(pageErrors).toEqual([]);
});

test("an admin invites someone, changes a role and disables an account in place", async ({ browser }) => {
  const erin = await person(browser, "erin", "admin", []);
  const gus = await person(browser, "gus", "engineer", []);
  const page = erin.page;
  await page.goto(`${cs.publicUrl}/admin/users`);
  await hydrated(page);
  let navigations = 0;
  page.on("framenavigated", (f) => f === page.mainFrame() && navigations++);
  // Erin's own row offers nothing to change.
  await expect(page.locator('[data-user-row="erin"]')).toContainText("another admin changes it");

  await page.locator("#invite-username").fill("frank@example.com");
  await page.locator("#invite-role").selectOption("approver");
  await page.locator("#invite-groups").fill("payments-oncall");
  await page.getByRole("button", { name: "Make invitation link" }).click();
  await expect(page.locator("#invite-link")).toHaveValue(/\/setup\/[A-Za-z0-9_-]+$/);
  const invited = page.locator('[data-invitation-row="frank@example.com"]');
  await expect(invited).toContainText("approver");
  await expect(invited).toContainText("payments-oncall");

  const row = page.locator('[data-user-row="gus"]');
  await row.getByText("Change role…").click();
  await row.getByLabel("Role of gus").selectOption("approver");
  await row.getByRole("button", { name: "Save role" }).click();
  await expect(page.locator("[data-toast]")).toHaveText("gus is now approver.");
  await expect(row.locator("[data-user-role]")).toHaveText("approver");

  await row.getByText("Disable…").click();
  await page.getByRole("button", { name: "Disable account" }).click();
  await expect(page.locator("[data-toast]")).toContainText("gus is disabled");
  await expect(row).toHaveAttribute("data-disabled", "yes");
  await page.screenshot({ path: join(shots, "users-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: join(shots, "users-phone.png"), fullPage: true });
  await row.getByRole("button", { name: "Enable" }).click();
  await expect(page.locator("[data-toast]")).toHaveText("gus is enabled again.");
  await expect(row).not.toHaveAttribute("data-disabled", "yes");
  expect(navigations, "a change reloaded the page").toBe(0);
  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  expect(bad.map((v) => `${v.id} ${v.nodes.map((n) => n.target).join(" ")}`)).toEqual([]);
  await erin.context.close();
  await gus.context.close();
});

test("break glass while approvers are still deciding: marked on the page and in the audit annotations, admitted once", async ({ browser }) => {
  const leadName = "lead@example.com";
  const lead = await person(browser, leadName, "engineer", ["oncall-leads"]);
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(leadName, "payments", 8));
  const m = LINK.exec(denied.json.response.status.message)!;
  expect(m, denied.json.response.status.message).not.toBeNull();
  const page = lead.page;
  await page.goto(m[1]);
  await hydrated(page);
  await page.getByLabel("Why do you need it?").fill(REASON);
  await page.getByRole("button", { name: "Ask for approval with your passkey" }).click();
  await expect(page.getByRole("heading", { name: "Waiting for approvers" })).toBeVisible();
  await hydrated(page);
  await page.getByText("Break glass…").click();
  await page.getByLabel("What is the emergency?").fill("payments are down: INC-5000");
  await page.getByRole("button", { name: "Break glass with your passkey" }).click();
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  await expect(page.locator("[data-break-glass]")).toContainText("Break glass");
  await page.screenshot({ path: join(shots, "break-glass-granted-desktop.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
  await page.screenshot({ path: join(shots, "break-glass-granted-phone.png"), fullPage: true });

  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(leadName, "payments", 8));
  expect(retry.json.response.allowed).toBe(true);
  const grantId = retry.json.response.auditAnnotations.grant;
  expect(retry.json.response.auditAnnotations["break-glass"]).toBe(grantId);
  const again = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(leadName, "payments", 8));
  expect(again.json.response.allowed).toBe(false);
  // The approvers it bypassed see it on their queue.
  const bob = people.bob.page;
  await bob.setViewportSize({ width: 1280, height: 800 });
  await bob.goto(`${cs.publicUrl}/approvals`);
  const glass = bob.locator(`[data-glass-item="${m[2]}"]`);
  await expect(glass).toContainText("Break glass");
  await expect(glass).toContainText("payments are down: INC-5000");
  await bob.screenshot({ path: join(shots, "approval-queue-break-glass-desktop.png"), fullPage: true });
  await lead.context.close();
});
