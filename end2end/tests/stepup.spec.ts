// The whole loop in a real browser: setup → denied with a link → step-up → grant → admitted once.
import { test, expect } from "@playwright/test";
import { createLocalJWKSet, jwtVerify } from "jose";
import { join } from "node:path";
import { addAuthenticator, Countersign, deploymentUpdate, startCountersign, webhook } from "./support";

const USER = "alice@example.com";
const LINK = /^step-up required by guardrail "prod-workloads": confirm at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8})), then retry \(expires \d\d:\d\d UTC\)$/;
const docs = join(__dirname, "..", "..", "docs");

let cs: Countersign;

test.beforeAll(async () => {
  cs = await startCountersign(undefined, ["--first-admin", USER]);
});

test.afterAll(async () => {
  await cs?.stop();
});

test("step-up loop: denied with a link, confirmed with a security key, admitted once", async ({ browser }) => {
  expect(cs.setupLink, "first start prints a setup link").not.toBeNull();
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const cdp = await context.newCDPSession(page);
  const authenticatorId = await addAuthenticator(cdp, true);

  // 1. The first admin registers a passkey through the one-time setup link.
  await page.goto(cs.setupLink!);
  await expect(page.getByLabel("Kubernetes username")).toHaveValue(USER);
  await page.getByLabel("Display name").fill("Alice Example");
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Alice Example" })).toBeVisible();
  await expect(page.getByText("You have no requests of your own")).toBeVisible();
  await page.screenshot({ path: join(docs, "home-empty.png"), fullPage: true });

  // The setup link works once.
  const again = await context.newPage();
  await again.goto(cs.setupLink!);
  await expect(again.getByRole("alert")).toContainText("already been used");
  await again.close();

  // 2. A guarded change is denied with a link.
  const review = deploymentUpdate(USER, "payments", 1);
  const denied = await webhook(cs, "POST", "/k8s/admit", review);
  expect(denied.status).toBe(200);
  expect(denied.json.apiVersion).toBe("admission.k8s.io/v1");
  expect(denied.json.response.uid).toBe(review.request.uid);
  expect(denied.json.response.allowed).toBe(false);
  expect(denied.json.response.status.code).toBe(403);
  const match = LINK.exec(denied.json.response.status.message);
  expect(match, denied.json.response.status.message).not.toBeNull();
  const [, link, code] = match!;

  // The identical retry (new uid, new resourceVersion) finds the same challenge.
  const sameAgain = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 1, "4712"));
  expect(LINK.exec(sameAgain.json.response.status.message)![2]).toBe(code);

  // 3. The link shows what was attempted.
  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Change Deployment api", exact: true })).toBeVisible();
  await expect(page.getByText("Guardrail prod-workloads")).toBeVisible();
  await expect(page.locator("dd", { hasText: USER })).toBeVisible();
  await expect(page.locator("dd", { hasText: /^payments$/ })).toBeVisible();
  await expect(page.locator("dd", { hasText: /^api$/ })).toBeVisible();
  await expect(page.locator("[data-diff-view] > pre").getByText("+   replicas: 1")).toBeVisible();
  await expect(page.getByText("resourceVersion")).toHaveCount(0);
  await expect(page.getByText("Waiting for step-up")).toBeVisible();
  await page.screenshot({ path: join(docs, "challenge-before.png"), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(docs, "challenge-mobile.png"), fullPage: true });
  await page.setViewportSize({ width: 1100, height: 900 });
  // Keyboard: the first Tab lands on the skip link, and the confirm button is reachable and focus-visible.
  await page.keyboard.press("Tab");
  await expect(page.getByRole("link", { name: "Skip to content" })).toBeFocused();

  // 4. Confirm with the security key (user verification on).
  await page.getByRole("button", { name: "Confirm with passkey" }).click();
  const grantBox = page.locator("[data-grant-id]");
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  await expect(page.locator("[data-grant-scope]")).toHaveAttribute("data-grant-scope", "request");
  await expect(page.getByText("1 use left")).toBeVisible();
  await page.screenshot({ path: join(docs, "challenge-after.png"), fullPage: true });
  const grantId = await grantBox.getAttribute("data-grant-id");
  const token = (await page.locator("[data-grant-token]").textContent())!.trim();
  expect(grantId).toMatch(/^[0-9a-f-]{36}$/);

  // 5. The identical review is admitted, naming the grant and the guardrail.
  const retry = deploymentUpdate(USER, "payments", 1, "4713");
  const admitted = await webhook(cs, "POST", "/k8s/admit", retry);
  expect(admitted.json.response.uid).toBe(retry.request.uid);
  expect(admitted.json.response.allowed).toBe(true);
  expect(admitted.json.response.auditAnnotations).toEqual({
    grant: grantId,
    guardrail: "prod-workloads",
    // The guardrail version that decided (files mode: the digest of the files).
    version: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
  });

  // 6. Single use: the next identical review is denied with a new challenge.
  const spent = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 1));
  expect(spent.json.response.allowed).toBe(false);
  const nextCode = LINK.exec(spent.json.response.status.message)![2];
  expect(nextCode).not.toBe(code);

  // 7. The grant verifies with an independent JOSE library against the JWKS.
  const jwks = await webhook(cs, "GET", "/.well-known/jwks.json");
  expect(jwks.json.keys[0]).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA" });
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks.json), {
    issuer: cs.publicUrl,
    algorithms: ["EdDSA"],
  });
  expect(protectedHeader.kid).toBe(jwks.json.keys[0].kid);
  expect(payload.sub).toBe(USER);
  expect(payload.jti).toBe(grantId);
  expect(payload).toMatchObject({ cluster: "e2e", guardrail: "prod-workloads", scope: "request", challenge: code, uses: 1 });
  expect(payload.evidence).toMatchObject({ method: "webauthn", account: USER, userVerified: true });
  // A tampered token does not verify.
  const [h, p, s] = token.split(".");
  const forged = Buffer.from(JSON.stringify({ ...payload, sub: "mallory" })).toString("base64url");
  await expect(jwtVerify(`${h}.${forged}.${s}`, createLocalJWKSet(jwks.json))).rejects.toThrow();

  // 8. Without user verification the same credential cannot confirm.
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  expect(credentials.length).toBe(1);
  await cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId });
  const noUv = await addAuthenticator(cdp, false);
  await cdp.send("WebAuthn.addCredential", { authenticatorId: noUv, credential: credentials[0] });
  const other = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 5));
  const [, otherLink] = LINK.exec(other.json.response.status.message)!;
  await page.goto(otherLink);
  // An honest browser will not even ask a key that cannot verify the user.
  await page.getByRole("button", { name: "Confirm with passkey" }).click();
  await expect(page.getByRole("status").filter({ hasText: "cancelled or timed out" })).toBeVisible();
  // A tampered client that relaxes userVerification gets an assertion with UV=0: the server refuses it.
  await page.route("**/auth/stepup/start", async (route) => {
    const response = await route.fetch();
    const options = await response.json();
    options.publicKey.userVerification = "discouraged";
    await route.fulfill({ response, json: options });
  });
  await page.getByRole("button", { name: "Confirm with passkey" }).click();
  await expect(page.getByRole("status").filter({ hasText: "did not verify you" })).toBeVisible();
  await page.unroute("**/auth/stepup/start");
  await page.reload();
  await expect(page.getByText("Waiting for step-up")).toBeVisible();
  await expect(page.locator("[data-grant-id]")).toHaveCount(0);
  // Hydration and the WebAuthn glue ran without a single uncaught error.
  expect(pageErrors).toEqual([]);
  const stillDenied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 5));
  expect(stillDenied.json.response.allowed).toBe(false);

  await context.close();
});

test("a challenge can only be seen and confirmed by the person it belongs to", async ({ browser }) => {
  // Bob's challenge opened without signing in asks for sign-in and shows nothing of the request.
  const review = deploymentUpdate("bob@example.com", "prod-eu", 2);
  const denied = await webhook(cs, "POST", "/k8s/admit", review);
  const [, link] = LINK.exec(denied.json.response.status.message)!;
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Sign in to review this request" })).toBeVisible();
  await expect(page.getByText("prod-eu")).toHaveCount(0);
  // Any well-formed code asks for sign-in first, so codes cannot be probed anonymously.
  await page.goto(`${cs.publicUrl}/c/ZZZZZZZZ`);
  await expect(page.getByRole("heading", { name: "Sign in to review this request" })).toBeVisible();
  await context.close();
});

test("the webhook refuses bad input with 400 and a clear message", async () => {
  const malformed = await webhook(cs, "POST", "/k8s/admit", "{not json");
  expect(malformed.status).toBe(400);
  expect(malformed.json.error).toContain("malformed AdmissionReview");
  const wrongVersion = await webhook(cs, "POST", "/k8s/admit", { apiVersion: "admission.k8s.io/v1beta1", kind: "AdmissionReview", request: {} });
  expect(wrongVersion.status).toBe(400);
  expect(wrongVersion.json.error).toContain("admission.k8s.io/v1");
  const noRequest = await webhook(cs, "POST", "/k8s/admit", { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview" });
  expect(noRequest.status).toBe(400);
  expect(noRequest.json.error).toContain("no request");
  const health = await webhook(cs, "GET", "/healthz");
  expect(health.text).toBe("ok");
});

test("cross-site posts to the portal are refused", async ({ request }) => {
  const res = await request.post(`${cs.publicUrl}/auth/login/start`, {
    headers: { Origin: "https://evil.example", "Content-Type": "application/json" },
    data: { username: USER },
  });
  expect(res.status()).toBe(403);
});
