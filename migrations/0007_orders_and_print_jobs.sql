-- Orders (what customers bought), their items, and the print queue the items expand into.
-- Links reference through (store_id, id), so nothing ever points into another store.

create table orders (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    -- The shop's own reference, e.g. "#1001".
    order_number text,
    source text not null check (source in ('manual', 'shopify', 'etsy', 'woocommerce',
                                           'squarespace', 'ebay', 'amazon', 'api', 'other')),
    status text not null default 'open' check (status in ('open', 'cancelled', 'closed')),
    customer_name text,
    notes text,
    cancelled_at timestamptz,
    closed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (store_id, id)
);

create index orders_store_created on orders (store_id, created_at, id);
create index orders_store_updated on orders (store_id, updated_at, id);

create table order_items (
    id uuid primary key,
    store_id uuid not null,
    order_id uuid not null,
    position smallint not null,
    -- A SKU of this store, or the shop's SKU code, resolved against skus.sku when printed.
    sku_id uuid,
    external_sku text,
    quantity integer not null check (quantity between 1 and 10000),
    -- Set when orders/print expanded the item into jobs; never expanded twice.
    processed_at timestamptz,
    unique (order_id, position),
    unique (store_id, id),
    check (sku_id is not null or external_sku is not null),
    foreign key (store_id, order_id) references orders (store_id, id) on delete cascade,
    foreign key (store_id, sku_id) references skus (store_id, id) on delete restrict
);

create index order_items_sku on order_items (store_id, sku_id);
-- orders/print looks for the unprocessed items of open orders.
create index order_items_unprocessed on order_items (store_id, order_id) where processed_at is null;

create table print_jobs (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    part_id uuid not null,
    name text not null check (char_length(name) between 1 and 200),
    state text not null default 'queued' check (state in ('queued', 'assigned', 'printing',
                                                         'paused', 'completed', 'failed', 'cancelled')),
    -- Copies of the part this job prints: up to 10,000 when a client sets it; orders/print
    -- computes item quantity x part quantity, which may be more (at most 10,000 x 50,000).
    quantity integer not null check (quantity >= 1),
    priority integer not null check (priority between 0 and 100),
    -- Queue order: ascending, ties broken by id. Moving jobs to the front gives them positions
    -- below the store's smallest, so a move writes only the moved rows, never renumbers.
    queue_position bigint not null,
    required_printer_tags text[] not null default '{}',
    material_ids uuid[] not null default '{}',
    printer_id uuid,
    order_id uuid,
    order_item_id uuid,
    estimated_seconds integer,
    estimated_grams double precision,
    notes text,
    failure_reason text,
    -- The API key that created the job: job.edit.own / job.delete.own apply to these.
    created_by_key_id uuid,
    started_at timestamptz,
    finished_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (store_id, part_id) references parts (store_id, id) on delete restrict,
    foreign key (store_id, printer_id) references printers (store_id, id) on delete set null (printer_id),
    foreign key (store_id, order_id) references orders (store_id, id) on delete set null (order_id),
    foreign key (store_id, order_item_id) references order_items (store_id, id)
        on delete set null (order_item_id)
);

-- One job per (order item, part): a second orders/print can never duplicate one.
create unique index print_jobs_order_item_part on print_jobs (order_item_id, part_id)
    where order_item_id is not null;
create index print_jobs_store_queue on print_jobs (store_id, queue_position, id);
create index print_jobs_store_state_queue on print_jobs (store_id, state, queue_position, id);
create index print_jobs_store_created on print_jobs (store_id, created_at, id);
create index print_jobs_store_updated on print_jobs (store_id, updated_at, id);
create index print_jobs_store_priority on print_jobs (store_id, priority, id);
create index print_jobs_order on print_jobs (store_id, order_id) where order_id is not null;
create index print_jobs_printer on print_jobs (store_id, printer_id) where printer_id is not null;
