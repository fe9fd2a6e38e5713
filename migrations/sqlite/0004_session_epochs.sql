-- "Sign out everywhere": sessions are kept by tower-sessions with no index by person, so each person
-- has a cut-off instead. A session whose sign-in is not later than it is refused.
create table session_epochs (
    user_key   text primary key,    -- account id, or oidc:ISSUER#SUBJECT
    not_before integer not null     -- unix seconds
);
