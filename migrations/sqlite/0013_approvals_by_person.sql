-- One decision per person, not per account name: a person signed in under two names (a local
-- account and an identity-provider sign-in) decides once. Each row carries the grant key's seal,
-- so a row a database writer inserted or edited never counts.
create table approvals_by_person (
    challenge_code text not null references challenges (code) on delete cascade,
    person         text not null,   -- the person behind the account (identity map)
    approver       text not null,   -- the account that decided
    decision       text not null,   -- approve | reject
    reason         text not null,
    groups         text not null,   -- JSON list: the approver's groups when they decided
    evidence       text not null,   -- JSON: their step-up
    decided_at     integer not null,
    seal           text not null default '',
    primary key (challenge_code, person)
);
insert into approvals_by_person (challenge_code, person, approver, decision, reason, groups, evidence, decided_at)
    select challenge_code, approver, approver, decision, reason, groups, evidence, decided_at from approvals;
drop table approvals;
alter table approvals_by_person rename to approvals;

-- What `serve` tells the other commands: the portal's public URL, for the links `user invite` prints.
create table settings (
    key   text primary key,
    value text not null
);
