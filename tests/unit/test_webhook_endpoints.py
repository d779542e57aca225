"""The webhook endpoints file: what it takes, and a one-line error for what it does not."""

from __future__ import annotations

import base64
import re
import time

import pytest
import standardwebhooks

from lifecycle.contracts.webhooks import body, load_endpoints, signed_headers
from lifecycle.errors import ConfigurationError

SECRET = "whsec_" + base64.b64encode(b"a test secret of thirty-two byte").decode()


def endpoints(tmp_path, text: str, environ=None):
    path = tmp_path / "webhooks.toml"
    path.write_text(text)
    return load_endpoints(path, environ or {})


def test_an_endpoint_takes_every_type_by_default_and_keeps_its_secret_out_of_its_repr(tmp_path):
    [crm] = endpoints(
        tmp_path, f'[[endpoint]]\nname = "crm"\nurl = "https://crm.test/h"\nsecret = "{SECRET}"\n'
    )

    assert crm.wants("lifecycle.lead.StageChanged")
    assert crm.wants("lifecycle.lead.Merged")
    assert SECRET.removeprefix("whsec_") not in repr(crm)


def test_a_secret_may_come_from_the_environment(tmp_path):
    [crm] = endpoints(
        tmp_path,
        '[[endpoint]]\nname = "crm"\nurl = "http://crm.test/h"\nsecret_env = "CRM"\n',
        {"CRM": SECRET},
    )

    assert crm.key == b"a test secret of thirty-two byte"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('name = "crm"\nurl = "ftp://crm.test/h"\nsecret = "S"', "url must be an http(s) URL"),
        ('name = "crm"\nurl = "https://crm.test/h"\nsecret = "S"\ncolour = 1', "unknown key"),
        ('name = "crm"\nurl = "https://crm.test/h"\nsecret = "plain"', "whsec_ and base64"),
        ('name = "crm"\nurl = "https://crm.test/h"\nsecret = "whsec_!!"', "not base64"),
        ('name = "crm"\nurl = "https://crm.test/h"\nsecret = "S"\ntypes = ["Sneeze"]', "types"),
        ('name = "c r m"\nurl = "https://crm.test/h"\nsecret = "S"', "name must be"),
        ('name = "crm"\nurl = "https://crm.test/h"\nsecret_env = "NOPE"', "NOPE is not set"),
        ('name = "crm"\nurl = "https://crm.test/h"\nsecret = "S"\nmax_attempts = 0', "positive"),
    ],
)
def test_a_broken_endpoint_is_refused_saying_what_is_wrong(tmp_path, entry, message):
    text = "[[endpoint]]\n" + entry.replace('"S"', f'"{SECRET}"') + "\n"

    with pytest.raises(ConfigurationError, match=re.escape(message)):
        endpoints(tmp_path, text)


def test_two_endpoints_of_one_name_are_refused(tmp_path):
    one = f'[[endpoint]]\nname = "crm"\nurl = "https://crm.test/h"\nsecret = "{SECRET}"\n'

    with pytest.raises(ConfigurationError, match="names must differ"):
        endpoints(tmp_path, one + one)


def test_a_signed_delivery_is_verified_by_the_standard_webhooks_library():
    payload = body("lifecycle.lead.StageChanged", "2026-03-02T09:00:00Z", b'{"to":"mql"}')
    headers = signed_headers(
        base64.b64decode(SECRET.removeprefix("whsec_")), "change-1", 1_790_000_000, payload
    )

    with pytest.raises(standardwebhooks.WebhookVerificationError):  # too old a timestamp
        standardwebhooks.Webhook(SECRET).verify(payload, headers)
    fresh = signed_headers(
        base64.b64decode(SECRET.removeprefix("whsec_")), "change-1", int(time.time()), payload
    )
    assert standardwebhooks.Webhook(SECRET).verify(payload, fresh) == {
        "type": "lifecycle.lead.StageChanged",
        "timestamp": "2026-03-02T09:00:00Z",
        "data": {"to": "mql"},
    }
