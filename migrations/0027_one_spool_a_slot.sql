-- A printer's slot (AMS tray, tool) holds one spool, and a slot means nothing without a printer.
--
-- Of spools already sharing a slot, the one changed last keeps it (no load time is kept; the
-- last change is the likelier truth); the others are left in their printer without a slot. A
-- slot without a printer is cleared. Each spool changed here gets a new `updated_at`, so a
-- client syncing by `updatedAt` sees the change.
update material_instances set slot = null, updated_at = now()
 where printer_id is null and slot is not null;
update material_instances m set slot = null, updated_at = now()
  from (select id, row_number() over (partition by store_id, printer_id, slot
                                      order by updated_at desc, id desc) as rank
          from material_instances
         where printer_id is not null and slot is not null) ranked
 where ranked.id = m.id and ranked.rank > 1;

create unique index material_instances_printer_slot on material_instances (store_id, printer_id, slot)
    where printer_id is not null and slot is not null;

alter table material_instances add constraint material_instances_slot_needs_printer
    check (slot is null or printer_id is not null);

-- A spool leaving its printer (unloaded by a client without naming a slot, or its printer
-- deleted: the foreign key sets `printer_id` null) leaves its slot too.
create function material_instances_unslot() returns trigger language plpgsql as $$
begin
    if new.printer_id is null and old.printer_id is not null
       and new.slot is not distinct from old.slot then
        new.slot := null;
    end if;
    return new;
end $$;

create trigger material_instances_unslot before update of printer_id on material_instances
    for each row execute function material_instances_unslot();
