// A real OpenID Provider (npm `oidc-provider`, certified) for the browser tests, on loopback.
//
//   node oidc/provider.mjs '{"port":4100,"redirectUris":["http://localhost:3000/auth/oidc/callback"]}'
//
// prints `ready ISSUER` once listening. One confidential client `countersign`; one user `alice`
// (password `wonderland`) who signs in with the password only (acr urn:countersign:pwd, amr [pwd])
// or with the password and a security key (acr urn:countersign:mfa, amr [pwd, hwk]) — chosen on a
// small login form that pre-selects what `acr_values` asked for and says what was asked.
// With `frontPort`, a second server on that port claims to be an issuer of its own and serves a
// discovery document whose `issuer` is itself but whose endpoints and keys are this provider's:
// ID tokens then carry an `iss` the relying party was not configured for.
import { createServer } from "node:http";
import { generateKeyPair, exportJWK } from "jose";
import Provider from "oidc-provider";

export const PWD = "urn:countersign:pwd";
export const MFA = "urn:countersign:mfa";
export const CLIENT = { id: "countersign", secret: "countersign-e2e-secret-not-for-production" };

const options = JSON.parse(process.argv[2] || "{}");
const port = options.port || 4100;
const issuer = `http://127.0.0.1:${port}`;

const accounts = {
  alice: {
    password: "wonderland",
    claims: {
      email: "alice@example.com",
      email_verified: true,
      name: "Alice Example",
      preferred_username: "alice",
      groups: ["developers", "payments-oncall"],
    },
  },
};

const { privateKey } = await generateKeyPair("RS256", { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), kid: "e2e-1", alg: "RS256", use: "sig" };

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uris: options.redirectUris || [],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      id_token_signed_response_alg: "RS256",
    },
  ],
  jwks: { keys: [jwk] },
  acrValues: [PWD, MFA],
  claims: {
    openid: ["sub", "acr", "amr", "auth_time"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  scopes: ["openid", "email", "profile", "groups"],
  pkce: { required: () => true, methods: ["S256"] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: ["countersign-e2e-cookie-key"] },
  // Put every claim of the granted scopes into the ID token (no userinfo round trip needed).
  conformIdTokenClaims: false,
  async findAccount(_ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
  },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
});

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function loginPage(uid, params, error) {
  const wanted = String(params.acr_values || "").split(" ").filter(Boolean);
  const mfa = wanted.includes(MFA);
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Test IdP sign-in</title></head>
<body>
<main>
<h1>Test IdP sign-in</h1>
<p data-asked>acr_values: <code data-acr-values>${escape(wanted.join(" ") || "(none)")}</code>;
max_age: <code data-max-age>${escape(params.max_age ?? "(none)")}</code>;
prompt: <code data-prompt>${escape(params.prompt ?? "(none)")}</code></p>
${error ? `<p role="alert">${escape(error)}</p>` : ""}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Username <input name="username" autocomplete="username" value="alice"></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <fieldset><legend>How do you confirm?</legend>
    <label><input type="radio" name="factor" value="pwd" ${mfa ? "" : "checked"}> Password only</label>
    <label><input type="radio" name="factor" value="mfa" ${mfa ? "checked" : ""}> Password and security key</label>
  </fieldset>
  <button type="submit">Sign in at the IdP</button>
</form>
</main>
</body></html>`;
}

async function readForm(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return Object.fromEntries(new URLSearchParams(body));
}

async function interaction(req, res, uid, isPost) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error("interaction mismatch");
  const { prompt, params } = details;
  if (prompt.name === "login") {
    if (!isPost) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(loginPage(uid, params));
    }
    const form = await readForm(req);
    const account = accounts[form.username];
    if (!account || account.password !== form.password) {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      return res.end(loginPage(uid, params, "Wrong username or password."));
    }
    const mfa = form.factor === "mfa";
    const login = { accountId: form.username, acr: mfa ? MFA : PWD, amr: mfa ? ["pwd", "hwk"] : ["pwd"] };
    return provider.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
  }
  if (prompt.name === "consent") {
    // First-party client: consent is implied.
    const missing = prompt.details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(" "));
      }
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  res.writeHead(400, { "content-type": "text/plain" });
  res.end(`unsupported prompt ${prompt.name}`);
}

const handle = provider.callback();
const server = createServer(async (req, res) => {
  const m = /^\/interaction\/([^/?]+)(\/login)?(?:\?.*)?$/.exec(req.url || "");
  if (!m) return handle(req, res);
  try {
    await interaction(req, res, m[1], req.method === "POST" && !!m[2]);
  } catch (err) {
    res.writeHead(400, { "content-type": "text/plain" });
    res.end(`interaction failed: ${err.message}`);
  }
});
await new Promise((ok) => server.listen(port, "127.0.0.1", ok));

if (options.frontPort) {
  const frontIssuer = `http://127.0.0.1:${options.frontPort}`;
  const front = createServer(async (req, res) => {
    if (req.url !== "/.well-known/openid-configuration") {
      res.writeHead(404);
      return res.end();
    }
    const real = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ ...real, issuer: frontIssuer }));
  });
  await new Promise((ok) => front.listen(options.frontPort, "127.0.0.1", ok));
}

process.on("SIGTERM", () => process.exit(0));
process.on("SIGINT", () => process.exit(0));
console.log(`ready ${issuer}`);
