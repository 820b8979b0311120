-- Ids made in SQL are UUIDv7 like those the server makes (time-ordered; the API's ids are v7):
-- the first 48 bits are the Unix time in milliseconds, the version nibble is 7, and the rest is
-- `gen_random_uuid()`'s randomness, whose variant bits are already RFC 9562's. (PostgreSQL 18
-- has `uuidv7()`; this serves until the oldest supported server does.)
create function uuid_v7() returns uuid language sql volatile parallel safe as $$
    select encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint)
                                      from 3)
                    from 1 for 6),
            52, 1), 53, 1),
        'hex')::uuid
$$;
