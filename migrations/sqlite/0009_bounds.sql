-- Bounds on open challenges (anyone who reaches the webhook can make them): each row records the
-- size of its body, and a covering index answers "how many open challenges, how many bytes, for
-- this person and in total" without reading the bodies.
alter table challenges add column body_bytes bigint not null default 0;
create index challenges_open_usage on challenges (status, expires_at, username, body_bytes);

-- Retention deletes closed challenges, expired grants and old decisions by time.
create index grants_by_challenge on grants (challenge_code);
create index grants_by_expiry on grants (expires_at);
create index challenges_by_created on challenges (created_at);
