-- The decision log: each review a guardrail matched, with every guardrail's explanation (JSON),
-- for history and for simulating guardrail changes against real traffic.
create table decisions (
    decision_id  integer primary key autoincrement,
    at           integer not null,
    uid          text not null,             -- the AdmissionReview uid
    cluster      text not null,
    username     text not null,
    operation    text not null,
    resource     text not null,             -- deployments.apps/scale
    namespace    text not null,
    name         text not null,
    dry_run      integer not null,          -- 0 | 1
    action       text not null,             -- strictest enforced action
    outcome      text not null,             -- allowed | denied | challenged | granted
    hits         text not null,             -- matched guardrails
    explanations text not null              -- every guardrail: matched or why not, CEL result
);
create index decisions_by_time on decisions (at);
create index decisions_by_user on decisions (username, at);
