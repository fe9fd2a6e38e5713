-- The guardrail version that decided each challenge, grant and decision (issue 16): history can
-- say which version was in force. Rows from before versions keep an empty one.
alter table challenges add column policy_version text not null default '';
alter table grants add column policy_version text not null default '';
alter table decisions add column policy_version text not null default '';
