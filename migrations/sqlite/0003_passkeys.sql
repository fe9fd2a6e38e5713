-- Several named passkeys per account: the authenticator model (AAGUID, read from the attested
-- credential data at registration) and a block flag set when a signature counter goes backwards,
-- the sign of a cloned key. A blocked credential is never accepted again.
alter table credentials add column aaguid text;
alter table credentials add column blocked_at integer;
alter table credentials add column blocked_reason text;
