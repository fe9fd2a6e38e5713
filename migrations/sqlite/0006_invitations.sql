-- Invitations: setup links for further local accounts, carrying the role an admin chose and, when
-- the admin fixed it, the Kubernetes username the account must have. The first-admin link is the
-- same thing with role admin and no fixed username.
alter table setup_tokens add column role text not null default 'admin';
alter table setup_tokens add column username text;
