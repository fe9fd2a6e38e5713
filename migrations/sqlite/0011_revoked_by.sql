-- Who revoked a grant, so the challenge page can say so (the audit log has it too).
alter table grants add column revoked_by text;
