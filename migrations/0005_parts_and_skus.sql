-- Parts (printable files with what they need) and SKUs (sellable products made of parts).
-- Link tables reference through (store_id, id), so links never cross stores.

create table parts (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 200),
    -- stl | 3mf | gcode | step | obj
    part_type text not null,
    file_uris text[] not null default '{}',
    required_printer_tags text[] not null default '{}',
    estimated_seconds integer,
    estimated_grams double precision,
    description text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (store_id, id)
);

create index parts_store_created on parts (store_id, created_at, id);
create index parts_store_name on parts (store_id, name, id);

create table part_materials (
    store_id uuid not null,
    part_id uuid not null,
    position smallint not null,
    material_id uuid not null,
    grams double precision,
    primary key (part_id, position),
    foreign key (store_id, part_id) references parts (store_id, id) on delete cascade,
    foreign key (store_id, material_id) references materials (store_id, id) on delete restrict
);

create index part_materials_material on part_materials (store_id, material_id);

create table skus (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    sku text not null check (char_length(sku) between 1 and 100),
    name text not null check (char_length(name) between 1 and 200),
    description text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (store_id, sku),
    unique (store_id, id)
);

create index skus_store_created on skus (store_id, created_at, id);

create table sku_parts (
    store_id uuid not null,
    sku_id uuid not null,
    position smallint not null,
    part_id uuid not null,
    quantity integer not null check (quantity between 1 and 1000),
    primary key (sku_id, position),
    foreign key (store_id, sku_id) references skus (store_id, id) on delete cascade,
    foreign key (store_id, part_id) references parts (store_id, id) on delete restrict
);

create index sku_parts_part on sku_parts (store_id, part_id);
