-- Approvals. A challenge of an approval guardrail waits for its approvers after the requester's
-- step-up (`awaiting`); it is still open then, so a retry finds it rather than opening another.
drop index challenges_one_pending;
create unique index challenges_one_open on challenges (digest, guardrail) where status in ('pending', 'awaiting');

-- One row per approver and challenge: a second decision by the same person is refused.
create table approvals (
    challenge_code text not null references challenges (code) on delete cascade,
    approver       text not null,   -- the account that decided
    decision       text not null,   -- approve | reject
    reason         text not null,
    groups         text not null,   -- JSON list: the approver's groups when they decided
    evidence       text not null,   -- JSON: their step-up
    decided_at     integer not null,
    primary key (challenge_code, approver)
);

-- Groups of local accounts, for approvals (identity-provider accounts bring theirs in the token).
alter table users add column groups text not null default '[]';
alter table setup_tokens add column groups text not null default '[]';
