"""Uses the Python client that scripts/sdk_check.sh generates from openapi/openapi.json, as an
integrator would: authenticate with the bootstrap key, create a part, queue it, and list print
jobs filtered by state; make a store role and a key holding it beside a built-in role, and read
the key back. Exits non-zero with a message at the first surprise.

Usage: use_client.py BASE_URL '{"storeId": "...", "apiKey": "..."}'
"""
import json
import sys
from uuid import UUID

from printfarm_client import AuthenticatedClient
from printfarm_client.api.api_keys import create_api_key, get_api_key
from printfarm_client.api.parts import create_part
from printfarm_client.api.print_jobs import create_print_job, list_print_jobs
from printfarm_client.api.roles_and_permissions import create_role
from printfarm_client.models import (
    CreateApiKey,
    CreatePart,
    CreatePrintJob,
    CreateRole,
    JobState,
    PartType,
    Permission,
    Problem,
    Role,
)


def main() -> None:
    base_url, creds = sys.argv[1], json.loads(sys.argv[2])
    client = AuthenticatedClient(
        base_url=base_url,
        token=creds["apiKey"],
        prefix="ApiKey",
        headers={"x-printago-storeid": creds["storeId"]},
        raise_on_unexpected_status=True,
    )
    with client as c:
        part = create_part.sync(client=c, body=CreatePart(name="SDK part", type_=PartType.THREE_MF))
        expect(not isinstance(part, Problem), f"create_part: {part}")
        job = create_print_job.sync(client=c, body=CreatePrintJob(part_id=part.id, quantity=2))
        expect(not isinstance(job, Problem), f"create_print_job: {job}")
        expect(job.state == JobState.QUEUED, f"a new job is queued, not {job.state}")

        queued = list_print_jobs.sync(client=c, state_eq=JobState.QUEUED, part_id_eq=part.id)
        expect(isinstance(queued, list), f"list_print_jobs: {queued}")
        expect([j.id for j in queued] == [job.id], f"state.eq=queued lists the job: {queued}")
        printing = list_print_jobs.sync(client=c, state_eq=JobState.PRINTING)
        expect(printing == [], f"state.eq=printing lists nothing: {printing}")
        both = list_print_jobs.sync(client=c, state_in="queued,printing", limit=10)
        expect([j.id for j in both] == [job.id], f"state.in lists the job: {both}")

        # A state the enum does not have, sent past the client's types, is refused.
        refused = c.get_httpx_client().get("/v1/print-jobs", params={"state.eq": "done"})
        expect(refused.status_code == 400, f"an unknown state is refused: {refused.status_code}")

        # A key may hold the store's own roles (by id) beside the built-in ones (by name).
        role = create_role.sync(
            client=c, body=CreateRole(name="SDK night shift", permissions=[Permission.QUEUE_VIEW])
        )
        expect(not isinstance(role, Problem), f"create_role: {role}")
        # A store role's id is typed as the UUID it is (a built-in role's as the Role enum).
        expect(isinstance(role.id, UUID), f"a store role's id is a UUID: {role.id!r}")
        made = create_api_key.sync(
            client=c, body=CreateApiKey(name="SDK key", roles=[Role.VIEWER, role.id])
        )
        expect(not isinstance(made, Problem), f"create_api_key: {made}")
        key = get_api_key.sync(client=c, id=made.id)
        expect(not isinstance(key, Problem), f"get_api_key: {key}")
        expect(
            set(map(str, key.roles)) == {Role.VIEWER.value, str(role.id)},
            f"the key holds both roles: {key.roles}",
        )
    print(
        f"use_client: created part {part.id}, queued job {job.id}, filtered by state; "
        f"key {key.key_id} holds the store role {role.id}"
    )


def expect(condition: bool, message: str) -> None:
    if not condition:
        sys.exit(f"use_client: {message}")


if __name__ == "__main__":
    main()
