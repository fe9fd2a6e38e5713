// Identity mapping: a CI service account's challenge is confirmed by its human owner; a person confirms
// for their other Kubernetes usernames; nobody else's challenge can be confirmed.
import { test, expect } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { addAuthenticator, Countersign, deploymentUpdate, startCountersign, webhook } from "./support";

const DEPLOYER = "system:serviceaccount:ci:deployer";
const LINK = /confirm at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8})), then retry/;

let cs: Countersign;

test.beforeAll(async () => {
  cs = await startCountersign(undefined, ["--identities", join(__dirname, "..", "fixtures", "identities.yaml"), "--first-admin", "jane"]);
});

test.afterAll(async () => {
  await cs?.stop();
});

async function challengeFor(username: string, replicas: number): Promise<{ link: string; code: string; review: any }> {
  const review = deploymentUpdate(username, "payments", replicas);
  const denied = await webhook(cs, "POST", "/k8s/admit", review);
  expect(denied.json.response.allowed).toBe(false);
  const match = LINK.exec(denied.json.response.status.message);
  expect(match, denied.json.response.status.message).not.toBeNull();
  return { link: match![1], code: match![2], review };
}

test("service-account challenges reach their owner; other people's stay closed", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  await addAuthenticator(cdp, true);
  await page.goto(cs.setupLink!);
  await expect(page.getByLabel("Kubernetes username")).toHaveValue("jane");
  await page.getByLabel("Display name").fill("Jane Doe");
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Jane Doe" })).toBeVisible();

  // The pipeline is denied; its challenge is on jane's home page, because she owns the account.
  const ci = await challengeFor(DEPLOYER, 2);
  await page.reload();
  await expect(page.locator(`a[href="/c/${ci.code}"]`)).toBeVisible();

  // She confirms it with her own key; the pipeline's retry is admitted, and the grant says who vouched.
  await page.goto(ci.link);
  await expect(page.locator("dd", { hasText: DEPLOYER })).toBeVisible();
  await page.getByRole("button", { name: "Confirm with passkey" }).click();
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  const retry = { ...ci.review, request: { ...ci.review.request, uid: "e2e-ci-retry" } };
  const admitted = await webhook(cs, "POST", "/k8s/admit", retry);
  expect(admitted.json.response.allowed).toBe(true);
  const grantId = admitted.json.response.auditAnnotations.grant;
  const token = (await page.locator("[data-grant-token]").textContent())!.trim();
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
  expect(claims.sub).toBe(DEPLOYER);
  expect(claims.evidence.account).toBe("jane");
  expect(grantId).toBe(await page.locator("[data-grant-id]").getAttribute("data-grant-id"));

  // Her other Kubernetes username is hers to confirm too.
  const alias = await challengeFor("jane-admin", 4);
  await page.goto(alias.link);
  await expect(page.getByRole("button", { name: "Confirm with passkey" })).toBeVisible();

  // Someone else's request: the page turns her away, and so does the server if she tries anyway.
  const bob = await challengeFor("bob", 5);
  await page.goto(bob.link);
  await expect(page.getByRole("alert")).toContainText("Only bob can confirm this request.");
  await expect(page.getByRole("button", { name: "Confirm with passkey" })).toHaveCount(0);
  const forced = await page.evaluate(async (code) => {
    const csrf = document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content;
    const r = await fetch("/auth/stepup/start", {
      method: "POST",
      headers: { "content-type": "application/json", ...(csrf ? { "x-csrf-token": csrf } : {}) },
      body: JSON.stringify({ code }),
    });
    return { status: r.status, text: await r.text() };
  }, bob.code);
  expect(forced.status).toBe(403);
  expect(forced.text).toContain("only bob can confirm it");
  await context.close();
});

test("an admin invites someone with a role; the link makes that account only", async ({ browser }) => {
  const bin = process.env.COUNTERSIGN_BIN || join(__dirname, "..", "..", "target", "release", "countersign");
  const invite = execFileSync(bin, ["user", "invite", "--role", "approver", "--username", "bob", "--data-dir", cs.dataDir, "--public-url", cs.publicUrl], {
    encoding: "utf8",
  }).trim();
  expect(invite).toMatch(new RegExp(`^${cs.publicUrl}/setup/[A-Za-z0-9_-]+$`));

  const context = await browser.newContext();
  const page = await context.newPage();
  await addAuthenticator(await context.newCDPSession(page), true);
  await page.goto(invite);
  await expect(page.getByRole("heading", { name: "Create your account" })).toBeVisible();
  await expect(page.getByText("with the role approver")).toBeVisible();
  const username = page.getByLabel("Kubernetes username");
  await expect(username).toHaveValue("bob");
  await expect(username).toHaveAttribute("readonly", "");
  await page.getByLabel("Display name").fill("Bob Builder");
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Bob Builder" })).toBeVisible();
  await expect(page.locator("header")).toContainText("approver");

  // Used once.
  const again = await context.newPage();
  await again.goto(invite);
  await expect(again.getByRole("alert")).toContainText("already been used");
  await context.close();
});
