-- Guardrails as versioned data (issue 17): in store mode every change is a new, numbered version.
-- The application never updates or deletes a row; each carries a seal by the grant key, which lives
-- outside the database, over its number, author, time, reason and the digest of its documents, so
-- a row written or edited in the database alone is refused when it is loaded.
create table guardrail_versions (
    number bigint primary key,
    created_at bigint not null,
    author text not null,
    reason text not null,
    documents text not null,
    digest text not null,
    seal text not null
);
