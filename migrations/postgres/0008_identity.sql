-- Identity hardening (issue 8, findings 2 and 13).
-- A disabled account cannot sign in, its sessions are refused and it confirms nothing.
alter table users add column disabled_at bigint;
-- The first-admin link is made once per store, not at every start: this row records that it was.
create table first_admin_link (
    singleton  integer primary key check (singleton = 1),
    username   text not null,
    created_at bigint not null
);
-- An admin now fixes the username of every setup link; unused links that let the person choose retire.
update setup_tokens set expires_at = created_at where username is null and used_at is null;
