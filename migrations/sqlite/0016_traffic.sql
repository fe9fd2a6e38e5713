-- Recorded traffic (issue 17): each distinct request shape once, with how often it was seen and
-- one example with Secret values redacted, for the simulator to replay against a draft.
create table traffic_shapes (
    shape_id text primary key,
    operation text not null,
    api_group text not null,
    resource text not null,
    subresource text not null,
    namespace text not null,
    username text not null,
    count bigint not null,
    first_seen bigint not null,
    last_seen bigint not null,
    matched integer not null,
    request text
);
create index traffic_shapes_last_seen on traffic_shapes (last_seen);
