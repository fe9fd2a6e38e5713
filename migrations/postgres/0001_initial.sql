-- Countersign schema, PostgreSQL flavour. Times are unix seconds (BIGINT) so both backends agree.

-- Local accounts: passkey-only, no passwords are ever stored.
create table users (
    user_id      text primary key,
    username     text not null unique,   -- equals the Kubernetes username it confirms for
    display_name text not null,
    role         text not null,          -- engineer | approver | admin | auditor
    created_at   bigint not null
);

-- WebAuthn credentials; `passkey` is webauthn-rs' serialised Passkey (public key, counter).
create table credentials (
    credential_id text primary key,      -- base64url
    user_id       text not null references users (user_id) on delete cascade,
    name          text not null,
    passkey       text not null,
    created_at    bigint not null,
    last_used_at  bigint
);
create index credentials_by_user on credentials (user_id);

-- One-time links that create the first admin; only a SHA-256 of the token is kept.
create table setup_tokens (
    token_hash text primary key,
    created_at bigint not null,
    expires_at bigint not null,
    used_at    bigint
);

-- Denied guarded requests waiting for a step-up. `body` holds the attempted request as JSON.
create table challenges (
    code       text primary key,
    digest     text not null,
    guardrail  text not null,
    username   text not null,
    status     text not null,            -- pending | granted | expired
    created_at bigint not null,
    expires_at bigint not null,
    grant_id   text,
    body       text not null
);
-- The same request twice must find the same challenge: at most one pending per digest and guardrail.
create unique index challenges_one_pending on challenges (digest, guardrail) where status = 'pending';
create index challenges_by_user on challenges (username, created_at);

create table grants (
    grant_id       text primary key,
    challenge_code text not null references challenges (code),
    username       text not null,
    guardrail      text not null,
    cluster        text not null,
    scope          text not null,        -- request | object | namespace
    digest         text not null,
    namespace      text not null,
    object_key     text not null,
    uses_left      bigint,              -- null: unlimited within expires_at
    created_at     bigint not null,
    expires_at     bigint not null,
    revoked_at     bigint,
    token          text not null,
    evidence       text not null
);
create index grants_by_subject on grants (username, guardrail, expires_at);

-- Append-only, hash-chained: each row's hash covers the previous row's hash.
create table audit_events (
    seq       bigserial primary key,
    at        bigint not null,
    kind      text not null,
    actor     text not null,
    subject   text not null,
    detail    text not null,
    prev_hash text not null,
    hash      text not null
);
