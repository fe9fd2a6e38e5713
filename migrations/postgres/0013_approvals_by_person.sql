-- One decision per person, not per account name: a person signed in under two names (a local
-- account and an identity-provider sign-in) decides once. Each row carries the grant key's seal,
-- so a row a database writer inserted or edited never counts.
alter table approvals add column person text;
update approvals set person = approver;
alter table approvals alter column person set not null;
alter table approvals add column seal text not null default '';
alter table approvals drop constraint approvals_pkey;
alter table approvals add primary key (challenge_code, person);

-- What `serve` tells the other commands: the portal's public URL, for the links `user invite` prints.
create table settings (
    key   text primary key,
    value text not null
);
