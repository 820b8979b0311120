-- Materials (filament types) and spools (material instances). References between tenant rows
-- include store_id, so a spool can never point at another store's material or printer.

alter table printers add constraint printers_store_id_id unique (store_id, id);

create table materials (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    brand text,
    -- PLA, PETG, ABS, ASA, TPU, PA, PC, ... (free text, 1-30 characters)
    material_type text not null,
    -- #RRGGBBAA, upper case
    color text,
    tags text[] not null default '{}',
    price_per_1000g double precision,
    diameter_mm double precision,
    density_g_cm3 double precision,
    notes text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (store_id, id)
);

create index materials_store_created on materials (store_id, created_at, id);
create index materials_store_name on materials (store_id, name, id);

create table material_instances (
    id uuid primary key,
    store_id uuid not null references stores (id) on delete cascade,
    material_id uuid not null,
    initial_grams double precision not null,
    remaining_grams double precision not null,
    printer_id uuid,
    slot integer,
    location text,
    lot text,
    notes text,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (remaining_grams >= 0 and remaining_grams <= initial_grams),
    foreign key (store_id, material_id) references materials (store_id, id) on delete restrict,
    -- Removing a printer unloads its spools rather than deleting them.
    foreign key (store_id, printer_id) references printers (store_id, id) on delete set null (printer_id)
);

create index material_instances_store_created on material_instances (store_id, created_at, id);
create index material_instances_store_material on material_instances (store_id, material_id);
create index material_instances_store_printer on material_instances (store_id, printer_id);
