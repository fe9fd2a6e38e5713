-- Signed checkpoints of the audit chain (finding 8): Ed25519 over the head record's seq and hash,
-- made by `serve` with a key from the data dir. The same lines go to the data dir's anchor file,
-- which catches a cut-off tail even when these rows were deleted with it.
create table audit_checkpoints (
    seq       bigint not null,            -- audit_events.seq of the head that was signed
    hash      text not null,              -- its chain hash
    at        bigint not null,            -- unix seconds
    kid       text not null,              -- RFC 7638 thumbprint of the signing key
    signature text not null,              -- base64url Ed25519 signature
    primary key (seq, kid)
);

-- The audit log is append-only for the application: updates, deletes and truncation are refused
-- for every role (a database owner can still disable the trigger; `countersign audit verify` then
-- still catches what was changed).
create function countersign_audit_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'countersign: % is append-only (% refused)', tg_table_name, tg_op;
end
$$;

create trigger audit_events_append_only before update or delete on audit_events
    for each row execute function countersign_audit_append_only();
create trigger audit_events_no_truncate before truncate on audit_events
    for each statement execute function countersign_audit_append_only();
create trigger audit_checkpoints_append_only before update or delete on audit_checkpoints
    for each row execute function countersign_audit_append_only();
create trigger audit_checkpoints_no_truncate before truncate on audit_checkpoints
    for each statement execute function countersign_audit_append_only();
