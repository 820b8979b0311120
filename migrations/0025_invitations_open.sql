-- The invitations still open (not accepted, not revoked; expiry is checked by the reads), per
-- store: what counts towards a store's seats with every invitation made, and what
-- `GET /v1/invitations` lists. Invitations are kept after they end, so without this index each
-- count would read the store's whole history of invitations.
create index invitations_open on invitations (store_id, created_at desc, id desc)
    where accepted_at is null and revoked_at is null;
