-- Signed checkpoints of the audit chain (finding 8): Ed25519 over the head record's seq and hash,
-- made by `serve` with a key from the data dir. The same lines go to the data dir's anchor file,
-- which catches a cut-off tail even when these rows were deleted with it.
create table audit_checkpoints (
    seq       integer not null,           -- audit_events.seq of the head that was signed
    hash      text not null,              -- its chain hash
    at        integer not null,           -- unix seconds
    kid       text not null,              -- RFC 7638 thumbprint of the signing key
    signature text not null,              -- base64url Ed25519 signature
    primary key (seq, kid)
);

-- Append-only against accidents: whoever can write the file can drop these triggers, and
-- `countersign audit verify` is what catches that.
create trigger audit_events_no_update before update on audit_events
begin
    select raise(abort, 'countersign: audit_events is append-only (UPDATE refused)');
end;
create trigger audit_events_no_delete before delete on audit_events
begin
    select raise(abort, 'countersign: audit_events is append-only (DELETE refused)');
end;
create trigger audit_checkpoints_no_update before update on audit_checkpoints
begin
    select raise(abort, 'countersign: audit_checkpoints is append-only (UPDATE refused)');
end;
create trigger audit_checkpoints_no_delete before delete on audit_checkpoints
begin
    select raise(abort, 'countersign: audit_checkpoints is append-only (DELETE refused)');
end;
