// Sign-in and step-up through a real OpenID Provider (npm oidc-provider on loopback, oidc/provider.mjs):
// discovery, code + PKCE, state and nonce, and RFC 9470 step-up with acr_values / max_age whose
// acr, amr and auth_time Countersign checks on return.
import { test, expect, Page } from "@playwright/test";
import { createLocalJWKSet, jwtVerify } from "jose";
import { join } from "node:path";
import { Countersign, deploymentUpdate, freePort, invitedPerson, OpenIdProvider, startCountersign, startProvider, webhook } from "./support";

const USER = "alice@example.com";
const MFA = "urn:countersign:mfa";
const SECRET = "countersign-e2e-secret-not-for-production";
const LINK = /confirm at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8})), then retry/;
const policies = join(__dirname, "..", "fixtures", "oidc-guardrails.yaml");

function oidcFlags(issuer: string): string[] {
  return [
    "--oidc-issuer", issuer,
    "--oidc-client-id", "countersign",
    "--oidc-scopes", "openid,profile,email,groups",
    "--oidc-mfa-acr", MFA,
    "--oidc-username-claim", "email",
    "--oidc-groups-claim", "groups",
    "--oidc-groups-prefix", "oidc:",
    // Portal roles from the provider's groups (Alice is in payments-oncall).
    "--oidc-role-group", "approver=oidc:payments-oncall",
    "--oidc-role-group", "admin=oidc:platform-admins",
  ];
}

/** Countersign (OIDC on) and the provider whose client redirects back to it. */
async function startPair(frontPort?: number): Promise<{ cs: Countersign; idp: OpenIdProvider }> {
  const port = await freePort();
  const front = frontPort ? `http://127.0.0.1:${frontPort}` : null;
  // The secret comes from the environment, as in production; it must never be printed.
  process.env.COUNTERSIGN_OIDC_CLIENT_SECRET = SECRET;
  const cs = await startCountersign(policies, oidcFlags(front ?? `http://127.0.0.1:${port}`));
  const idp = await startProvider(port, [`${cs.publicUrl}/auth/oidc/callback`], frontPort);
  return { cs, idp };
}

let cs: Countersign;
let idp: OpenIdProvider;

test.beforeAll(async () => {
  ({ cs, idp } = await startPair());
});

test.afterAll(async () => {
  await cs?.stop();
  await idp?.stop();
});

/** Authorization requests the browser sent to the provider. */
function recordAuthorizations(page: Page, issuer: string): URL[] {
  const seen: URL[] = [];
  page.on("request", (r) => {
    if (r.url().startsWith(`${issuer}/auth?`)) seen.push(new URL(r.url()));
  });
  return seen;
}

async function signInAtProvider(page: Page, factor: "Password only" | "Password and security key") {
  await expect(page.getByRole("heading", { name: "Test IdP sign-in" })).toBeVisible();
  await page.getByLabel("Password", { exact: true }).fill("wonderland");
  await page.getByLabel(factor).check();
  await page.getByRole("button", { name: "Sign in at the IdP" }).click();
}

async function signIn(page: Page, factor: "Password only" | "Password and security key") {
  await page.goto(`${cs.publicUrl}/login`);
  await page.getByRole("button", { name: "Sign in with your identity provider" }).click();
  await signInAtProvider(page, factor);
  await expect(page.getByRole("heading", { name: "Hello, Alice Example" })).toBeVisible();
}

async function deniedLink(review: ReturnType<typeof deploymentUpdate>): Promise<[string, string]> {
  const denied = await webhook(cs, "POST", "/k8s/admit", review);
  expect(denied.json.response.allowed).toBe(false);
  const m = LINK.exec(denied.json.response.status.message);
  expect(m, denied.json.response.status.message).not.toBeNull();
  return [m![1], m![2]];
}

test("sign in through the identity provider: the header shows the mapped user", async ({ browser }) => {
  expect(cs.output()).toContain(`oidc:       ${idp.issuer}`);
  expect(cs.output()).not.toContain(SECRET);
  const context = await browser.newContext();
  const page = await context.newPage();
  const asked = recordAuthorizations(page, idp.issuer);
  await signIn(page, "Password only");
  await expect(page.locator("header")).toContainText("Signed in as Alice Example");
  // Her role comes from her groups (approver), not the engineer default; no admin-only link.
  await expect(page.locator("header")).toContainText("approver");
  await expect(page.getByRole("link", { name: "Grants" })).toHaveCount(0);
  // The email claim is the Kubernetes username (as the API server's --oidc-username-claim=email).
  await expect(page.locator("main code", { hasText: USER })).toBeVisible();
  // Authorization code with PKCE (S256), state and nonce; no step-up parameters on a plain sign-in.
  expect(asked).toHaveLength(1);
  const q = asked[0].searchParams;
  expect(q.get("response_type")).toBe("code");
  expect(q.get("client_id")).toBe("countersign");
  expect(q.get("code_challenge_method")).toBe("S256");
  expect(q.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(q.get("state")).toBeTruthy();
  expect(q.get("nonce")).toBeTruthy();
  expect(q.get("scope")!.split(" ")).toEqual(expect.arrayContaining(["openid", "email", "groups"]));
  expect(q.get("acr_values")).toBeNull();
  expect(q.get("max_age")).toBeNull();
  // Signing out ends it.
  await page.locator("[data-account-menu] > summary").click();
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("link", { name: "Sign in" })).toBeVisible();
  await context.close();
});

test("step-up: a one-factor session is refused, the acr_values round trip issues the grant and the retry is admitted", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const asked = recordAuthorizations(page, idp.issuer);
  await signIn(page, "Password only");

  const [link, code] = await deniedLink(deploymentUpdate(USER, "payments", 1));
  await page.goto(link);
  await expect(page.getByRole("heading", { name: "Change Deployment api", exact: true })).toBeVisible();
  // An OIDC session confirms at its provider, not with a passkey.
  await expect(page.getByRole("button", { name: "Confirm with passkey" })).toHaveCount(0);
  await page.getByRole("button", { name: "Confirm with your identity provider" }).click();

  // RFC 9470: the provider is asked for the multi-factor level and the guardrail's freshness, and —
  // since this session has one factor only — to prompt for a new login.
  await expect(page.getByRole("heading", { name: "Test IdP sign-in" })).toBeVisible();
  const stepUp = asked[asked.length - 1].searchParams;
  expect(stepUp.get("acr_values")).toBe(MFA);
  expect(stepUp.get("max_age")).toBe("300");
  expect(stepUp.get("prompt")).toBe("login");
  await expect(page.locator("[data-acr-values]")).toHaveText(MFA);

  // The person picks the password only: the token comes back with acr pwd / amr [pwd] — refused.
  await signInAtProvider(page, "Password only");
  await expect(page).toHaveURL(new RegExp(`/c/${code}\\?oidc=not_mfa$`));
  await expect(page.locator("[data-oidc-problem]")).toContainText("one factor only");
  await expect(page.getByText("Waiting for step-up")).toBeVisible();
  await expect(page.locator("[data-grant-id]")).toHaveCount(0);
  const still = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "payments", 1, "4712"));
  expect(still.json.response.allowed).toBe(false);

  // Again, with the security key at the provider: the grant is issued.
  await page.getByRole("button", { name: "Confirm with your identity provider" }).click();
  await expect(page.getByLabel("Password and security key")).toBeChecked(); // acr_values honoured
  await signInAtProvider(page, "Password and security key");
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  const grantId = await page.locator("[data-grant-id]").getAttribute("data-grant-id");
  const token = (await page.locator("[data-grant-token]").textContent())!.trim();

  const retry = deploymentUpdate(USER, "payments", 1, "4713");
  const admitted = await webhook(cs, "POST", "/k8s/admit", retry);
  expect(admitted.json.response.allowed).toBe(true);
  expect(admitted.json.response.auditAnnotations).toEqual({
    grant: grantId,
    guardrail: "prod-workloads",
    // The guardrail version that decided (files mode: the digest of the files).
    version: expect.stringMatching(/^sha256:[0-9a-f]{16}$/),
  });

  // The grant's evidence names the method and the provider's acr, amr and auth_time.
  const jwks = await webhook(cs, "GET", "/.well-known/jwks.json");
  const { payload } = await jwtVerify(token, createLocalJWKSet(jwks.json), { issuer: cs.publicUrl });
  const evidence = payload.evidence as Record<string, unknown>;
  expect(evidence).toMatchObject({ method: "oidc", account: USER, acr: MFA, amr: ["pwd", "hwk"] });
  expect(Math.abs((evidence.authTime as number) - Date.now() / 1000)).toBeLessThan(60);
  await context.close();
});

test("step-up: a sign-in older than the guardrail's freshness makes the provider ask again (max_age)", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const asked = recordAuthorizations(page, idp.issuer);
  await signIn(page, "Password and security key");
  // The vault guardrail wants an authentication from the last 3 seconds.
  const [link] = await deniedLink(deploymentUpdate(USER, "vault", 2));
  await page.waitForTimeout(4_500);
  await page.goto(link);
  await page.getByRole("button", { name: "Confirm with your identity provider" }).click();
  // The session is multi-factor, so no prompt=login was sent: max_age alone made the provider prompt.
  await expect(page.getByRole("heading", { name: "Test IdP sign-in" })).toBeVisible();
  const q = asked[asked.length - 1].searchParams;
  expect(q.get("max_age")).toBe("3");
  expect(q.get("acr_values")).toBe(MFA);
  expect(q.get("prompt")).toBeNull();
  await signInAtProvider(page, "Password and security key");
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible();
  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "vault", 2, "4800"));
  expect(retry.json.response.allowed).toBe(true);
  await context.close();
});

/** Start signing in, then re-send the authorization request with one parameter changed (as an
 * attacker in the middle would), and sign in at the provider. */
async function signInWithTamperedAuthorization(page: Page, param: string, value: string) {
  const asked = recordAuthorizations(page, idp.issuer);
  await page.goto(`${cs.publicUrl}/login`);
  await page.getByRole("button", { name: "Sign in with your identity provider" }).click();
  await expect(page.getByRole("heading", { name: "Test IdP sign-in" })).toBeVisible();
  const tampered = new URL(asked[asked.length - 1]);
  expect(tampered.searchParams.get(param)).toBeTruthy();
  tampered.searchParams.set(param, value);
  await page.goto(tampered.toString());
  await signInAtProvider(page, "Password only");
}

test("a tampered state is refused and nobody is signed in", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The provider faithfully returns the forged state to the callback; the session holds the real one.
  await signInWithTamperedAuthorization(page, "state", "forged-by-an-attacker");
  await expect(page).toHaveURL(/\/login\?oidc=state/);
  await expect(page.getByRole("alert")).toContainText("state mismatch");
  await expect(page.getByRole("link", { name: "Sign in" })).toBeVisible();
  // The flow was used up: a callback replayed without one is a readable refusal, not an error page.
  const replay = await page.goto(`${cs.publicUrl}/auth/oidc/callback?code=replayed&state=forged-by-an-attacker`);
  expect(replay!.status()).toBe(200);
  await expect(page.getByRole("alert")).toContainText("No sign-in through the identity provider was in progress");
  await context.close();
});

test("an ID token with another nonce is refused", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  // The state is genuine, but the ID token carries a nonce this session never issued.
  await signInWithTamperedAuthorization(page, "nonce", "a-nonce-countersign-never-sent");
  await expect(page).toHaveURL(/\/login\?oidc=nonce/);
  await expect(page.getByRole("alert")).toContainText("nonce mismatch");
  await expect(page.getByRole("link", { name: "Sign in" })).toBeVisible();
  await context.close();
});

test("an ID token from another issuer than the configured one is refused", async ({ browser }) => {
  // Countersign is configured for the front's issuer; the front's discovery document names itself as
  // issuer but hands out the real provider's endpoints and keys, whose ID tokens carry the real `iss`.
  const other = await startPair(await freePort());
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${other.cs.publicUrl}/login`);
    await page.getByRole("button", { name: "Sign in with your identity provider" }).click();
    await signInAtProvider(page, "Password and security key");
    await expect(page.getByRole("alert")).toContainText("different identity provider");
    await expect(page.getByRole("link", { name: "Sign in" })).toBeVisible();
    await context.close();
  } finally {
    await other.cs.stop();
    await other.idp.stop();
  }
});

test("an identity-provider requester asks for approval: reason, step-up at the provider, a manager approves, the retry is admitted once", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, "Password and security key");
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "escrow", 2));
  const message: string = denied.json.response.status.message;
  const m = /ask for it at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8}))/.exec(message);
  expect(m, message).not.toBeNull();
  const [link, code] = [m![1], m![2]];

  await page.goto(link);
  await expect(page.getByRole("heading", { name: "This change needs approval: ask for it" })).toBeVisible();
  // No passkey here: she asks through her provider.
  await expect(page.getByRole("button", { name: "Ask for approval with your passkey" })).toHaveCount(0);
  await page.getByLabel("Why do you need it?").fill("INC-7001: rotate the escrow signer");
  await page.getByRole("button", { name: "Ask for approval with your identity provider" }).click();
  const waiting = page.getByRole("heading", { name: "Waiting for approvers" });
  const idpLogin = page.getByRole("heading", { name: "Test IdP sign-in" });
  await expect(waiting.or(idpLogin)).toBeVisible();
  if (await idpLogin.isVisible()) await signInAtProvider(page, "Password and security key");
  await expect(waiting).toBeVisible();
  await expect(page.locator("[data-reason]")).toHaveText("INC-7001: rotate the escrow signer");

  // A manager with a passkey approves; her page follows.
  const carol = await invitedPerson(browser, cs, "carol", "approver", ["payments-managers"]);
  await carol.page.goto(`${cs.publicUrl}/approvals/${code}`);
  await expect(carol.page.locator("html")).toHaveAttribute("data-hydrated", "yes");
  await carol.page.getByRole("button", { name: "Approve with passkey" }).click();
  await expect(carol.page.getByRole("heading", { name: "Approved" })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Granted — run your command again" })).toBeVisible({ timeout: 15_000 });

  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "escrow", 2));
  expect(retry.json.response.allowed).toBe(true);
  const again = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "escrow", 2));
  expect(again.json.response.allowed).toBe(false);
  await carol.context.close();
  await context.close();
});

test("an identity-provider requester breaks the glass through the provider: marked, admitted once", async ({ browser }) => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await signIn(page, "Password and security key");
  const denied = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "escrow", 4));
  const message: string = denied.json.response.status.message;
  const m = /ask for it at (http:\/\/localhost:\d+\/c\/([2-9A-HJ-NP-Z]{8}))/.exec(message);
  expect(m, message).not.toBeNull();
  await page.goto(m![1]);
  await expect(page.locator("html")).toHaveAttribute("data-hydrated", "yes");
  await page.getByText("Break glass…").click();
  await page.getByLabel("What is the emergency?").fill("escrow payouts stuck: INC-7002");
  await page.getByRole("button", { name: "Break glass with your identity provider" }).click();
  const granted = page.getByRole("heading", { name: "Granted — run your command again" });
  const idpLogin = page.getByRole("heading", { name: "Test IdP sign-in" });
  await expect(granted.or(idpLogin)).toBeVisible();
  if (await idpLogin.isVisible()) await signInAtProvider(page, "Password and security key");
  await expect(granted).toBeVisible();
  await expect(page.locator("[data-break-glass]")).toContainText("Break glass");

  const retry = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "escrow", 4));
  expect(retry.json.response.allowed).toBe(true);
  expect(retry.json.response.auditAnnotations["break-glass"]).toBe(retry.json.response.auditAnnotations.grant);
  const again = await webhook(cs, "POST", "/k8s/admit", deploymentUpdate(USER, "escrow", 4));
  expect(again.json.response.allowed).toBe(false);
  await context.close();
});
