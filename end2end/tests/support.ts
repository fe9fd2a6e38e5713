// Starts a real Countersign on a fresh data dir and talks to its webhook over verified TLS.
import { spawn, ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { execFileSync } from "node:child_process";
import { expect } from "@playwright/test";
import type { Browser, BrowserContext, Page, CDPSession } from "@playwright/test";
import AxeBuilder from "@axe-core/playwright";

const root = resolve(__dirname, "..", "..");

export interface Countersign {
  publicUrl: string;
  webhookPort: number;
  setupLink: string | null;
  ca: string;
  dataDir: string;
  process: ChildProcess;
  output: () => string;
  stop: () => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => ok(port));
    });
    srv.on("error", fail);
  });
}

/**
 * Launch `countersign serve` with the test guardrails (and any extra flags) and wait until it is ready.
 * It gets a fresh data dir, removed when it stops, unless `dataDir` names one the caller keeps.
 */
export async function startCountersign(
  /** `null`: store mode (guardrail versions in the database, the library seeded as v1). */
  policies: string | null = join(__dirname, "..", "fixtures", "guardrails.yaml"),
  extraArgs: string[] = [],
  opts: { dataDir?: string } = {},
): Promise<Countersign> {
  const [port, webhookPort] = [await freePort(), await freePort()];
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), "countersign-e2e-"));
  const bin = process.env.COUNTERSIGN_BIN || join(root, "target", "release", "countersign");
  const publicUrl = `http://localhost:${port}`;
  const child = spawn(
    bin,
    [
      "serve",
      "--listen", `127.0.0.1:${port}`,
      "--webhook-listen", `127.0.0.1:${webhookPort}`,
      "--public-url", publicUrl,
      "--data-dir", dataDir,
      ...(policies === null ? [] : ["--policies", policies]),
      "--cluster", "e2e",
      "--site-root", join(root, "target", "site"),
      ...extraArgs,
    ],
    { cwd: root, env: { ...process.env, RUST_LOG: "info,sqlx=warn" } },
  );
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`countersign did not start:\n${out}`)), 30_000);
    child.on("exit", (code) => fail(new Error(`countersign exited ${code}:\n${out}`)));
    const poll = setInterval(() => {
      if (/^ready$/m.test(out)) {
        clearInterval(poll);
        clearTimeout(timer);
        ok();
      }
    }, 50);
  });
  const setup = out.match(/https?:\/\/\S+\/setup\/[A-Za-z0-9_-]+/);
  return {
    publicUrl,
    webhookPort,
    setupLink: setup ? setup[0] : null,
    ca: readFileSync(join(dataDir, "tls", "ca.crt"), "utf8"),
    dataDir,
    process: child,
    output: () => out,
    stop: async () => {
      child.kill("SIGINT");
      await new Promise((r) => setTimeout(r, 300));
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** HTTPS to the webhook listener, trusting only the CA Countersign made. */
export function webhook(cs: Countersign, method: string, path: string, body?: unknown): Promise<{ status: number; json: any; text: string }> {
  return new Promise((ok, fail) => {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = httpsRequest(
      {
        host: "127.0.0.1",
        servername: "localhost",
        port: cs.webhookPort,
        method,
        path,
        ca: cs.ca,
        headers: payload ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {},
      },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let json: any = null;
          try {
            json = JSON.parse(text);
          } catch {
            /* not JSON */
          }
          ok({ status: res.statusCode || 0, json, text });
        });
      },
    );
    req.on("error", fail);
    if (payload) req.write(payload);
    req.end();
  });
}

/** A Deployment UPDATE as the API server sends it, by `username`, in `namespace`. */
export function deploymentUpdate(username: string, namespace: string, replicas: number, resourceVersion = "4711") {
  const meta = (rv: string) => ({
    name: "api",
    namespace,
    uid: "9f1c2d4e-0000-4000-8000-00000000a001",
    resourceVersion: rv,
    generation: 7,
    creationTimestamp: "2026-11-01T10:00:00Z",
    labels: { app: "api" },
    managedFields: [{ manager: "kubectl-client-side-apply", operation: "Update", apiVersion: "apps/v1" }],
  });
  const spec = (n: number) => ({
    replicas: n,
    selector: { matchLabels: { app: "api" } },
    template: {
      metadata: { labels: { app: "api" } },
      spec: { containers: [{ name: "api", image: "registry.example.com/payments/api:1.42.0" }] },
    },
  });
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `e2e-${Math.random().toString(16).slice(2)}`,
      kind: { group: "apps", version: "v1", kind: "Deployment" },
      resource: { group: "apps", version: "v1", resource: "deployments" },
      requestKind: { group: "apps", version: "v1", kind: "Deployment" },
      requestResource: { group: "apps", version: "v1", resource: "deployments" },
      name: "api",
      namespace,
      operation: "UPDATE",
      userInfo: { username, uid: "u-1", groups: ["developers", "system:authenticated"] },
      object: { apiVersion: "apps/v1", kind: "Deployment", metadata: meta(resourceVersion), spec: spec(replicas), status: { replicas: 3 } },
      oldObject: { apiVersion: "apps/v1", kind: "Deployment", metadata: meta("4700"), spec: spec(3), status: { replicas: 3 } },
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "UpdateOptions", fieldManager: "kubectl-client-side-apply" },
    },
  };
}

/** `kubectl delete statefulset NAME -n NAMESPACE` as the API server sends it. */
export function statefulSetDelete(username: string, namespace: string, name: string) {
  const old = {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: { name, namespace, uid: "9f1c2d4e-0000-4000-8000-00000000b002", resourceVersion: "5120", labels: { app: name } },
    spec: { replicas: 3, serviceName: name, selector: { matchLabels: { app: name } } },
  };
  return {
    apiVersion: "admission.k8s.io/v1",
    kind: "AdmissionReview",
    request: {
      uid: `e2e-${Math.random().toString(16).slice(2)}`,
      kind: { group: "apps", version: "v1", kind: "StatefulSet" },
      resource: { group: "apps", version: "v1", resource: "statefulsets" },
      requestKind: { group: "apps", version: "v1", kind: "StatefulSet" },
      requestResource: { group: "apps", version: "v1", resource: "statefulsets" },
      name,
      namespace,
      operation: "DELETE",
      userInfo: { username, uid: "u-1", groups: ["developers", "system:authenticated"] },
      object: null,
      oldObject: old,
      dryRun: false,
      options: { apiVersion: "meta.k8s.io/v1", kind: "DeleteOptions", propagationPolicy: "Background" },
    },
  };
}

/** A platform authenticator with user verification, as Chrome's CDP virtual authenticator. */
export async function addAuthenticator(cdp: CDPSession, userVerification = true): Promise<string> {
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: userVerification,
      isUserVerified: userVerification,
      automaticPresenceSimulation: true,
    },
  });
  return authenticatorId;
}

/** A person with their own browser, passkey and local account (invited with the CLI). */
export interface Person {
  context: BrowserContext;
  page: Page;
  authenticator: string;
  cdp: CDPSession;
}

/** Invite `username` with a role and groups on `cs`'s store, and register their passkey in a fresh context. */
export async function invitedPerson(
  browser: Browser,
  cs: Countersign,
  username: string,
  role: string,
  groups: string[],
  errors: string[] = [],
): Promise<Person> {
  const bin = process.env.COUNTERSIGN_BIN || join(root, "target", "release", "countersign");
  const args = ["user", "invite", "--role", role, "--username", username, "--data-dir", cs.dataDir, "--public-url", cs.publicUrl];
  for (const g of groups) args.push("--group", g);
  const invite = execFileSync(bin, args, { encoding: "utf8" }).trim();
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`${username}: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`${username} console: ${m.text()}`));
  const cdp = await context.newCDPSession(page);
  const authenticator = await addAuthenticator(cdp, true);
  await page.goto(invite);
  await page.getByLabel("Display name").fill(username.split("@")[0]);
  await page.getByRole("button", { name: "Register passkey" }).click();
  await expect(page.getByRole("heading", { level: 1 })).toContainText("Hello");
  return { context, page, authenticator, cdp };
}

export async function cdpFor(context: BrowserContext, page: Page): Promise<CDPSession> {
  return context.newCDPSession(page);
}

export interface OpenIdProvider {
  issuer: string;
  /** The issuer of the mismatching front (see oidc/provider.mjs), when one was asked for. */
  frontIssuer: string | null;
  output: () => string;
  stop: () => Promise<void>;
}

/** Start the test OpenID Provider (oidc/provider.mjs) on `port`, its client redirecting to these URIs. */
export async function startProvider(port: number, redirectUris: string[], frontPort?: number): Promise<OpenIdProvider> {
  const script = join(__dirname, "..", "oidc", "provider.mjs");
  const child = spawn(process.execPath, [script, JSON.stringify({ port, redirectUris, frontPort })], {
    cwd: join(__dirname, ".."),
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const issuer = await new Promise<string>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the OpenID Provider did not start:\n${out}`)), 15_000);
    child.on("exit", (code) => fail(new Error(`the OpenID Provider exited ${code}:\n${out}`)));
    const poll = setInterval(() => {
      const m = /^ready (\S+)$/m.exec(out);
      if (m) {
        clearInterval(poll);
        clearTimeout(timer);
        ok(m[1]);
      }
    }, 50);
  });
  return {
    issuer,
    frontIssuer: frontPort ? `http://127.0.0.1:${frontPort}` : null,
    output: () => out,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 100));
    },
  };
}

/** Where the browser tests keep the docs' screenshots. */
export const SHOTS = join(root, "docs", "screenshots");
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/**
 * Each page (name, url, signed in as `context` or not) in both colour schemes on a desktop and a
 * phone: axe's serious and critical findings, returned as lines, and a screenshot
 * `NAME-SCHEME-DEVICE.png` for the docs.
 */
export async function axeAndScreenshots(
  browser: Browser,
  context: BrowserContext,
  pages: readonly (readonly [string, string, boolean])[],
): Promise<string[]> {
  const violations: string[] = [];
  for (const scheme of ["light", "dark"] as const) {
    for (const [name, url, auth] of pages) {
      const ctx = await browser.newContext({ colorScheme: scheme, ...(auth ? { storageState: await context.storageState() } : {}) });
      const q = await ctx.newPage();
      for (const [device, viewport] of [["desktop", DESKTOP], ["phone", PHONE]] as const) {
        await q.setViewportSize(viewport);
        await q.goto(url);
        await expect(q.locator("html")).toHaveAttribute("data-hydrated", "yes");
        const results = await new AxeBuilder({ page: q }).analyze();
        const bad = results.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
        violations.push(...bad.map((v) => `${name}/${scheme}/${device}: ${v.id} ${v.nodes.map((n) => n.target).join(" ")}`));
        await q.screenshot({ path: join(SHOTS, `${name}-${scheme}-${device}.png`), fullPage: true });
      }
      await ctx.close();
    }
  }
  return violations;
}
