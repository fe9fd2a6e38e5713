-- Replicas and the webhook poll for grants revoked since a watermark (a few times a second).
create index if not exists grants_revoked_at on grants (revoked_at) where revoked_at is not null;
