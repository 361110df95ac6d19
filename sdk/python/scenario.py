"""The SDK scenario with the Python client that openapi-python-client generates from the
committed document: what a new integrator does first. Usage: scenario.py BASE_URL
(the generated package `postier_client` on the path)."""
import io
import sys
import uuid
from http import HTTPStatus

from postier_client import AuthenticatedClient, Client
from postier_client.api.accounts import create_account
from postier_client.api.addresses import create_address, import_addresses, list_addresses
from postier_client.api.mail_services import create_mail_service
from postier_client.api.organizations import list_organizations
from postier_client.api.sessions import create_session
from postier_client.api.sharing import create_invitation
from postier_client.models import (
    AddressFor,
    CreateAddressRequest,
    CreateInvitationRequest,
    CreateMailServiceRequest,
    ErrorCode,
    ImportRefusal,
    ImportReport,
    ImportUpload,
    InviteeByEmail,
    LoginRequest,
    Pack,
    Problem,
    SignUpRequest,
)
from postier_client.types import File

base = sys.argv[1]
run = uuid.uuid4().hex[:8]
login = f"sdk-{run}@example.com"
password = "violet umbrella marching north"
domain = f"sdk-{run}.example"


def expect(response, status, kind):
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), (type(response.parsed), response.content)
    return response.parsed


anonymous = Client(base_url=base, raise_on_unexpected_status=True)
expect(create_account.sync_detailed(client=anonymous, body=SignUpRequest(login=login, password=password)), HTTPStatus.CREATED, object)
session = create_session.sync(client=anonymous, body=LoginRequest(login=login, password=password))
assert session.token_type == "Bearer", session
client = AuthenticatedClient(base_url=base, token=session.access_token, raise_on_unexpected_status=True)

organization = list_organizations.sync(client=client).items[0]
service = create_mail_service.sync(
    organization.id, client=client, body=CreateMailServiceRequest(domain=domain, pack=Pack.PREMIUM)
)
created = create_address.sync(
    service.id,
    client=client,
    body=CreateAddressRequest(local_part="compta", for_=AddressFor.SEVERAL_USERS, password=password),
)
address = created
assert address.address == f"compta@{domain}", address
invitation = create_invitation.sync(
    address.id, client=client, body=CreateInvitationRequest(invitee=InviteeByEmail(email="julie@elsewhere.example"))
)
assert str(invitation.status) == "pending", invitation

# A CSV file sent as multipart/form-data: the generated function takes it as a File.
csv = "local_part,password\n" + "".join(f"user{i},{password}\n" for i in range(5))
report = expect(
    import_addresses.sync_detailed(
        service.id, client=client, body=ImportUpload(file=File(payload=io.BytesIO(csv.encode()), file_name="addresses.csv", mime_type="text/csv"))
    ),
    HTTPStatus.CREATED,
    ImportReport,
)
assert report.summary.created == 5, report

# Page through the addresses two at a time, following next_cursor to the end.
seen, cursor = [], None
while True:
    page = list_addresses.sync(service.id, client=client, limit=2, **({"cursor": cursor} if cursor else {}))
    seen += [item.address for item in page.items]
    cursor = page.next_cursor
    if not cursor:
        break
assert len(seen) == 6 and len(set(seen)) == 6, seen

# Problems: a stable `code` to switch on, and a refused import's report in the same body.
again = expect(
    create_address.sync_detailed(
        service.id,
        client=client,
        body=CreateAddressRequest(local_part="compta", for_=AddressFor.SEVERAL_USERS, password=password),
    ),
    HTTPStatus.CONFLICT,
    Problem,
)
assert again.code == ErrorCode.ADDRESS_ALREADY_EXISTS, again
refused = expect(
    import_addresses.sync_detailed(
        service.id, client=client, body=ImportUpload(file=File(payload=io.BytesIO(b"local_part,password\nuser1,x\n"), file_name="a.csv"))
    ),
    HTTPStatus.UNPROCESSABLE_ENTITY,
    ImportRefusal,
)
assert refused.code == ErrorCode.VALIDATION_FAILED and refused.committed is False, refused
print(f"python scenario: ok ({len(seen)} addresses in {len(seen) // 2} pages, problem codes {again.code.value}, {refused.code.value})")
